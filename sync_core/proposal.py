"""Proposed journals: what would post for one entity x period, and its diff against the ERP.

The proposal is the "pending postings before close" view a finance lead reviews. Built from
the month's persisted accounting lines (recognition is never recomputed here), it holds every
journal of the period, each with:

- ``status``: ``ready`` to post, or ``held`` with a reason code, an owner and a message;
- ``action`` against what the ERP already holds: ``new`` (never posted), ``unchanged``
  (posted with the same content: nothing to do), ``repost`` (posted with other content: the
  posted version is reversed and a new version posted), ``reverse_stale`` (posted, but its
  document no longer yields the journal, e.g. a month's revenue netted to zero by a full
  refund: only the reversal posts; the lines shown are the reversal's);
- ``external_id`` (the version that would post, or is live) and ``posting_period``.

Held documents are held whole, across journals (the policy a controller would choose): when
an invoice's own journal cannot post (its customer has no ERP id, or the ERP refused it), its
payments, credit notes and voids wait with it, and its share of each month's revenue is taken
out of the month's revenue journal into a held journal of its own. The GL then never carries
half a document, and GL = subledger - the held journals, which ``reconciliation`` lists as
reconciling items.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from sync_core.posting import HOLD_COLUMNS, JOURNAL_COLUMNS, journal_lines
from sync_core.posting_plan import (
    content_hash,
    latest_versions,
    plan_documents,
    plan_postings,
    reversal_lines,
)

PROPOSAL_COLUMNS = JOURNAL_COLUMNS + HOLD_COLUMNS + [
    "action", "status", "external_id", "reverses", "posting_period",
]  # fmt: skip
# holds the posting plan derives again at posting time (the ledger may have moved on)
PLAN_REASONS = {"waiting_for_invoice", "period_closed"}


def held_invoices(
    lines: pd.DataFrame, customers: pd.DataFrame, open_exceptions: pd.DataFrame
) -> dict[str, tuple[str, str, str]]:
    """Invoices whose own journal cannot post: invoice id -> (reason, owner, message).

    An invoice is held when its customer has no ERP id (master data), or when its
    ``invoice_finalized`` journal, proposed in an earlier month, is open in the exception
    queue (a rule or an ERP refusal). An invoice finalized in this month is judged by this
    month's proposal instead (:func:`propose`).
    """
    out: dict[str, tuple[str, str, str]] = {}
    if len(lines) and "customer_id" in lines:
        erp = customers.set_index("customer_id")["erp_customer_id"] if len(customers) else None
        inv = lines[lines["invoice_id"].notna()].drop_duplicates("invoice_id")
        for i, c in zip(inv["invoice_id"], inv["customer_id"], strict=True):
            if erp is None or pd.isna(erp.get(c)):
                out[i] = ("customer_erp_id", "master_data", f"customer {c!r} has no ERP id")
    if len(open_exceptions):
        here = set(lines.loc[lines["event"] == "invoice_finalized", "document_id"]) if len(
            lines) else set()  # fmt: skip
        q = open_exceptions[
            (open_exceptions["event"] == "invoice_finalized")
            & ~open_exceptions["reason_code"].isin(PLAN_REASONS | {"document_held"})
            & ~open_exceptions["document_id"].isin(here)
        ]
        for doc, code, owner, msg in q[
            ["document_id", "reason_code", "owner", "message"]
        ].itertuples(index=False):
            out.setdefault(doc, (code, owner, msg))
    return out


def _held_here(every: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """Invoices of this month whose own journal the rules hold."""
    inv = every[(every["event"] == "invoice_finalized") & every["reason_code"].notna()]
    inv = inv.drop_duplicates("document_id")
    return {
        d: (r, o, m)
        for d, r, o, m in inv[["document_id", "reason_code", "owner", "message"]].itertuples(
            index=False
        )
    }


def propose(
    lines: pd.DataFrame,
    *,
    customers: pd.DataFrame,
    subsidiary: str | None,
    chart: dict[str, str],
    posted: pd.DataFrame | Callable[[set[str]], pd.DataFrame],
    ledger_lines,
    period: pd.Timestamp,
    closed_periods: set[pd.Timestamp],
    policy: str,
    open_exceptions: pd.DataFrame,
) -> pd.DataFrame:
    """The period's proposal (``PROPOSAL_COLUMNS``). ``lines``: the month's accounting lines
    (``accounting_lines``); ``customers``: at least the customers of those lines;
    ``posted``: the ledger's journal headers of the entity, or a function of the documents
    the plan looks at (:func:`sync_core.posting_plan.plan_documents`) that returns at least
    the journals :func:`sync_core.posting_plan.ledger_view` returns;
    ``ledger_lines(external_ids)``: the ledger's lines of those journals."""
    held_docs = held_invoices(lines, customers, open_exceptions)
    doc_customers = _document_customers(lines)
    every, _ = journal_lines(lines, doc_customers, customers, subsidiary, chart, held_docs)
    if extra := {k: v for k, v in _held_here(every).items() if k not in held_docs}:
        held_docs.update(extra)  # this month's held invoices hold their revenue too
        every, _ = journal_lines(lines, doc_customers, customers, subsidiary, chart, held_docs)
    if callable(posted):
        posted = posted(plan_documents(every))
    ready = every[every["reason_code"].isna()]
    plan = plan_postings(ready[JOURNAL_COLUMNS], posted, closed_periods, policy,
                         period=period, known_keys=set(every["journal_key"]))  # fmt: skip
    out = every.assign(action=_actions(every, posted), status="ready", external_id=None,
                       reverses=None, posting_period=pd.NaT)  # fmt: skip
    out["posting_period"] = pd.to_datetime(out["posting_period"], utc=True)
    _apply_plan(out, plan, posted)
    stale = _stale_lines(plan, every, ledger_lines, period)
    frames = [f for f in (out, stale) if len(f)]
    if not frames:
        return pd.DataFrame(columns=PROPOSAL_COLUMNS)
    result = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    result.loc[result["reason_code"].notna(), "status"] = "held"
    return result[PROPOSAL_COLUMNS].reset_index(drop=True)


def may_post(proposal: pd.DataFrame) -> pd.Series:
    """The journals a posting run hands to the posting plan: the ready ones, and those the
    plan itself held (waiting for their invoice, a closed period), which it judges again
    against the ledger as it is then. Stale reversals the plan derives again itself."""
    by_plan = proposal["reason_code"].isin(PLAN_REASONS)
    return ((proposal["status"] == "ready") | by_plan) & (proposal["action"] != "reverse_stale")


def ready_lines(proposal: pd.DataFrame) -> pd.DataFrame:
    """The journal lines that may post (:func:`may_post`)."""
    return proposal.loc[may_post(proposal), JOURNAL_COLUMNS].reset_index(drop=True)


def proposed_keys(proposal: pd.DataFrame) -> set[str]:
    """Keys the period still proposes (held ones included): a live journal of the period
    outside them is stale and gets reversed."""
    return set(proposal.loc[proposal["action"] != "reverse_stale", "journal_key"])


def awaiting_approval(
    proposal: pd.DataFrame, fingerprint: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lines that may post, queue rows) when the period waits for a person's approval:
    only what is already posted stays as it is; every change waits, owner finance."""
    unchanged = proposal[(proposal["status"] == "ready") & (proposal["action"] == "unchanged")]
    waiting = proposal[may_post(proposal) & (proposal["action"] != "unchanged")]
    waiting = waiting.drop_duplicates("journal_key").assign(
        reason_code="awaiting_approval", owner="finance",
        message=f"proposal {fingerprint} waits for approval (job approve_postings)",
    )  # fmt: skip
    holds = pd.concat([rule_holds(proposal), rule_holds(waiting)], ignore_index=True)
    return unchanged[JOURNAL_COLUMNS].reset_index(drop=True), holds


def rule_holds(proposal: pd.DataFrame) -> pd.DataFrame:
    """Queue rows for journals held by a posting rule (one per journal)."""
    h = proposal[proposal["reason_code"].notna() & ~proposal["reason_code"].isin(PLAN_REASONS)]
    h = h.drop_duplicates("journal_key")
    return h[["entity_id", "period", "journal_key", "document_id", "event", "reason_code",
              "message", "owner"]].reset_index(drop=True)  # fmt: skip


def _document_customers(lines: pd.DataFrame) -> pd.Series:
    if lines.empty or "customer_id" not in lines:
        return pd.Series(dtype=object)
    docs = lines[lines["customer_id"].notna()].drop_duplicates("document_id")
    return pd.Series(docs["customer_id"].to_numpy(), index=docs["document_id"].to_numpy())


def _actions(every: pd.DataFrame, posted: pd.DataFrame) -> pd.Series:
    """new / unchanged / repost per line, from the journal's content against the ledger."""
    if every.empty:
        return pd.Series(dtype=object)
    hashes = content_hash(every)
    latest = latest_versions(posted)
    reversed_ids = set(posted["reverses"].dropna()) if len(posted) else set()

    def action(key: str) -> str:
        prev = latest.get(key)
        if prev is None or prev["external_id"] in reversed_ids:
            return "new"
        return "unchanged" if prev["content_hash"] == hashes[key] else "repost"

    by_key = {k: action(k) for k in every["journal_key"].unique()}
    return every["journal_key"].map(by_key)


def _apply_plan(out: pd.DataFrame, plan, posted: pd.DataFrame) -> None:
    """External id, posting period and plan holds (waiting, closed period) onto the lines."""
    heads = plan.headers[plan.headers["reverses"].isna()]
    key_of = heads["external_id"].str.replace(r"-v\d+$", "", regex=True)
    eid = dict(zip(key_of, heads["external_id"], strict=True))
    when = dict(zip(key_of, pd.to_datetime(heads["period"], utc=True), strict=True))
    live = latest_versions(posted)
    for key in plan.unchanged:  # (a dict: enlarging a Series key by key is quadratic)
        if key in live:
            eid[key] = live[key]["external_id"]
            when[key] = pd.Timestamp(live[key]["period"]).tz_localize("UTC")
    out["external_id"] = out["journal_key"].map(pd.Series(list(eid.values()), index=list(eid),
                                                          dtype=object))  # fmt: skip
    when_s = pd.Series(list(when.values()), index=list(when), dtype=object)
    out["posting_period"] = pd.to_datetime(out["journal_key"].map(when_s), utc=True)
    revs = plan.headers[plan.headers["reverses"].notna()]
    rev_of = pd.Series(revs["reverses"].to_numpy(),
                       index=revs["reverses"].str.replace(r"-v\d+$", "", regex=True).to_numpy())  # fmt: skip
    out["reverses"] = out["journal_key"].map(rev_of[~rev_of.index.duplicated()])
    if len(plan.held):
        h = plan.held.drop_duplicates("journal_key").set_index("journal_key")
        sel = out["journal_key"].isin(h.index) & out["reason_code"].isna()
        for col in HOLD_COLUMNS:
            src = "reason_code" if col == "reason_code" else col
            out.loc[sel, col] = out.loc[sel, "journal_key"].map(h[src])


def _stale_lines(plan, every: pd.DataFrame, ledger_lines, period) -> pd.DataFrame:
    """The lines of the reversals of stale journals, as the proposal shows them."""
    known = set(every["journal_key"]) if len(every) else set()
    heads = plan.headers[plan.headers["reverses"].notna()]
    heads = heads[~heads["reverses"].str.replace(r"-v\d+$", "", regex=True).isin(known)]
    if heads.empty:
        return pd.DataFrame(columns=PROPOSAL_COLUMNS)
    parts = []
    originals = ledger_lines(list(heads["reverses"]))
    for h in heads.to_dict("records"):
        rev = reversal_lines(originals[originals["external_id"] == h["reverses"]],
                             h["external_id"])  # fmt: skip
        key = h["reverses"].rsplit("-v", 1)[0]
        parts.append(rev.assign(
            entity_id=h["entity_id"], period=period, journal_key=key, event=h["event"],
            document_id=h["document_id"], erp_subsidiary_id=h["erp_subsidiary_id"],
            memo=h["memo"], transaction_date=h["transaction_date"], invoice_id=None,
            reason_code=None, owner=None, message=None, action="reverse_stale",
            status="ready", reverses=h["reverses"], posting_period=h["period"],
        ))  # fmt: skip
    out = pd.concat(parts, ignore_index=True)
    out["posting_period"] = pd.to_datetime(out["posting_period"], utc=True)
    out["transaction_date"] = pd.to_datetime(out["transaction_date"], utc=True)
    return out
