"""Exactly-once posting plan: what to post, reverse, hold or keep waiting (pure functions).

Given a period's proposed journals (``sync_core.proposal``) and what the ERP
already holds, the plan is:

- a journal never posted gets version 1;
- a journal posted with the same content is left alone (a retry or replay posts nothing);
- a journal posted with other content (a changed or voided document, a late revenue change)
  gets a reversing journal of the posted version and then the new version: never an edit or a
  delete of a posted journal;
- a journal posted for the period whose key is no longer proposed at all (a month's revenue
  that a full refund or cancellation netted to zero) is *stale*: it gets its reversing journal,
  so the GL never keeps what the subledger no longer has;
- a journal dated in a closed or locked ERP period either moves to the first open period as a
  marked correction or is held, by the entity's policy;
- a payment, refund, credit note or void waits until its invoice's journal is posted;
- journals that broke a posting rule are held whole, with reason and owner.

The plan reads of the ledger only what these rules look at (:func:`ledger_view`): the history
of the proposed keys, the period's journals and the invoices that payments wait for; never the
entity's other periods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sync_core.money import checked_sum

POLICIES = ("next_open", "hold")
# a held journal, as the exception queue takes it
HELD_COLUMNS = ["entity_id", "period", "journal_key", "document_id", "event", "reason_code",
                "message", "owner"]  # fmt: skip
HEADER_COLUMNS = ["external_id", "entity_id", "erp_subsidiary_id", "period", "source_period",
                  "event", "document_id", "version", "currency", "total_debit", "line_count",
                  "content_hash", "reverses", "correction", "run_id", "memo",
                  "transaction_date"]  # fmt: skip
WAITS_FOR_INVOICE = {"payment", "refund", "credit_note", "credit_note_void", "invoice_void",
                     "invoice_uncollectible", "dispute", "dispute_won"}  # fmt: skip
_HASH_COLS = ["account", "erp_account", "erp_customer_id", "debit", "credit", "currency",
              "debit_functional", "credit_functional"]  # fmt: skip


@dataclass(frozen=True)
class PostingPlan:
    headers: pd.DataFrame  # one row per journal to post (ledger header columns)
    lines: pd.DataFrame  # their lines
    held: pd.DataFrame  # exception rows: entity_id, period, journal_key, reason_code, ...
    unchanged: list[str]  # journal keys already posted with the same content


def content_hash(lines: pd.DataFrame) -> pd.Series:
    """A stable hash per journal key of its lines' accounting content."""
    cols = [c for c in _HASH_COLS if c in lines]
    ordered = lines.sort_values(["journal_key", "account", "currency", "debit", "credit"])
    values = ordered[cols].astype(object)
    # a null reads "nan" whether it came as None (from storage) or NaN (from pandas); the
    # line's text is its columns joined by "|", the journal's its lines joined by newlines
    text = values.where(values.notna(), "nan").astype(str)
    row = text[cols[0]]
    for c in cols[1:]:
        row = row + "|" + text[c]
    joined = row.groupby(ordered["journal_key"]).agg("\n".join)
    return pd.Series(
        [hashlib.sha256(t.encode()).hexdigest()[:32] for t in joined],
        index=joined.index,
        dtype=object,
    )


def plan_documents(proposed: pd.DataFrame) -> set[str]:
    """The documents whose ledger journals the plan of ``proposed`` looks at: the documents of
    its journals, and the invoices its payments, refunds, credits and voids wait for."""
    if proposed.empty:
        return set()
    docs = set(proposed["document_id"].dropna())
    if "invoice_id" in proposed:
        waits = proposed.loc[proposed["event"].isin(WAITS_FOR_INVOICE), "invoice_id"]
        docs |= {i for i in waits.dropna() if isinstance(i, str)}
    return docs


def ledger_view(ledger, entity_id: str, period, documents: Iterable[str]) -> pd.DataFrame:
    """The entity's ledger journals :func:`plan_postings` reads for one period: every journal
    of ``documents`` (:func:`plan_documents`) and of the documents with a journal whose events
    belong to ``period`` (``source_period``: the stale candidates, a correction posted to a
    later period included). A journal key is (entity, event, document), so each key in the
    view comes with its whole history (versions and reversals), and the plan over the view is
    the plan over the entity's whole ledger, read by the (entity, document) and
    (entity, source period) indexes instead of in full."""
    docs = set(documents)
    if period is not None:
        docs |= ledger.period_documents(entity_id, period)
    return ledger.journals(entity_id, documents=docs)


def first_open_period(period: pd.Timestamp, closed: set[pd.Timestamp]) -> pd.Timestamp:
    p = period
    while p in closed:
        p = p + pd.offsets.MonthBegin(1)
    return p


def plan_postings(
    proposed: pd.DataFrame,
    posted: pd.DataFrame,
    closed_periods: set[pd.Timestamp],
    policy: str = "next_open",
    run_id: str | None = None,
    *,
    period: pd.Timestamp | None = None,
    known_keys: set[str] | frozenset = frozenset(),
) -> PostingPlan:
    """Plan one entity's postings. ``proposed``: journal lines with ``journal_key``;
    ``posted``: the ledger's journal headers of the entity (may be empty).

    With ``period``, live journals of that period (by ``source_period``) whose key is neither
    in ``proposed`` nor in ``known_keys`` (journals proposed but held) are reversed as stale.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown period policy {policy!r}; expected one of {POLICIES}")
    empty_held = pd.DataFrame(columns=HELD_COLUMNS)
    stale = _stale_reversals(posted, period, set(known_keys) | set(proposed.get("journal_key",
                             [])), closed_periods, policy, run_id)  # fmt: skip
    if proposed.empty:
        return PostingPlan(
            pd.DataFrame(stale[0], columns=HEADER_COLUMNS),
            _assemble_lines(stale[1]),
            pd.DataFrame(stale[2]) if stale[2] else empty_held,
            [],
        )
    hashes = content_hash(proposed)
    first = proposed.drop_duplicates("journal_key").set_index("journal_key")
    latest = latest_versions(posted)
    reversed_ids = set(posted["reverses"].dropna()) if len(posted) else set()
    held_rows, headers, line_parts, unchanged = [], [], [], []
    posted_invoices = (
        set(posted.loc[posted["event"] == "invoice_finalized", "document_id"])
        if len(posted)
        else set()
    )
    posting_now_invoices = set(first.loc[first["event"] == "invoice_finalized", "document_id"])

    rows_of = proposed.groupby("journal_key", sort=False).indices  # key -> line positions
    debits = proposed["debit"].to_numpy()
    for key, head in first.iterrows():
        h = hashes[key]
        prev = latest.get(key)
        # a version already reversed (a change half posted) is not in the ERP's books any more
        live = prev is not None and prev["external_id"] not in reversed_ids
        if live and prev["content_hash"] == h:
            unchanged.append(key)
            continue
        period = head["period"]
        if head["event"] in WAITS_FOR_INVOICE:
            invoice = head.get("invoice_id")
            if (
                isinstance(invoice, str)
                and invoice not in posted_invoices
                and invoice not in posting_now_invoices
            ):
                held_rows.append(
                    _held(
                        head,
                        key,
                        "waiting_for_invoice",
                        "integration",
                        f"invoice {invoice} has no posted journal yet",
                    )
                )
                continue
        correction = False
        if period in closed_periods:
            if policy == "hold":
                held_rows.append(
                    _held(
                        head,
                        key,
                        "period_closed",
                        "finance",
                        f"ERP period {period:%Y-%m} is closed",
                    )
                )
                continue
            period, correction = first_open_period(period, closed_periods), True
        rows = rows_of[key]
        version = 1 if prev is None else int(prev["version"]) + 1
        if live:  # reverse what the ERP holds before posting the new version
            rev_key = f"{prev['external_id']}-REV"
            headers.append(
                _header(
                    head,
                    rev_key,
                    version=int(prev["version"]),
                    period=period,
                    source_period=head["period"],
                    reverses=prev["external_id"],
                    correction=correction,
                    h="reversal",
                    run_id=run_id,
                    total=int(prev["total_debit"]),
                    n=int(prev["line_count"]),
                )
            )
            line_parts.append(("reverse", prev["external_id"], rev_key))
        eid = f"{key}-v{version}"
        headers.append(
            _header(
                head,
                eid,
                version=version,
                period=period,
                source_period=head["period"],
                reverses=None,
                correction=correction,
                h=h,
                run_id=run_id,
                total=checked_sum(debits[rows], f"total debit of {eid}"),
                n=len(rows),
            )
        )
        line_parts.append(("new", rows_of[key], eid))
    headers += stale[0]
    line_parts += stale[1]
    held_rows += stale[2]
    held = pd.DataFrame(held_rows) if held_rows else empty_held
    return PostingPlan(
        headers=pd.DataFrame(headers, columns=HEADER_COLUMNS),
        lines=_assemble_lines(line_parts, proposed),
        held=held,
        unchanged=unchanged,
    )


def _stale_reversals(posted, period, keep: set[str], closed_periods, policy, run_id):
    """(headers, line parts, held rows) reversing the live journals of ``period`` whose key
    is not in ``keep``."""
    if period is None or posted is None or posted.empty:
        return [], [], []
    reversed_ids = set(posted["reverses"].dropna())
    headers, parts, held = [], [], []
    for key, prev in sorted(latest_versions(posted).items()):
        if key in keep or prev["external_id"] in reversed_ids:
            continue
        source = _utc(prev["source_period"])
        if source != period:
            continue
        when, correction = source, False
        if when in closed_periods:
            if policy == "hold":
                held.append(_held({**prev, "period": source}, key, "period_closed", "finance",
                                  f"ERP period {source:%Y-%m} is closed; the stale journal "
                                  f"{prev['external_id']} waits for its reversal"))  # fmt: skip
                continue
            when, correction = first_open_period(when, closed_periods), True
        rev_key = f"{prev['external_id']}-REV"
        headers.append(_header(prev, rev_key, version=int(prev["version"]), period=when,
                               source_period=source, reverses=prev["external_id"],
                               correction=correction, h="reversal", run_id=run_id,
                               total=int(prev["total_debit"]), n=int(prev["line_count"])))  # fmt: skip
        parts.append(("reverse", prev["external_id"], rev_key))
    return headers, parts, held


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def latest_versions(posted: pd.DataFrame) -> dict[str, dict]:
    """journal key -> the newest non-reversal version in the ledger."""
    if posted is None or posted.empty:
        return {}
    live = posted[posted["reverses"].isna()].copy()
    live["journal_key"] = live["external_id"].str.replace(r"-v\d+$", "", regex=True)
    newest = live.sort_values("version").drop_duplicates("journal_key", keep="last")
    return {r["journal_key"]: r for r in newest.to_dict("records")}


def _held(head, key, code, owner, message) -> dict:
    return {
        "entity_id": head["entity_id"],
        "period": head["period"],
        "journal_key": key,
        "document_id": head["document_id"],
        "event": head["event"],
        "reason_code": code,
        "message": message,
        "owner": owner,
    }


def _header(
    head, eid, *, version, period, source_period, reverses, correction, h, run_id, total, n
) -> dict:
    return {
        "external_id": eid,
        "entity_id": head["entity_id"],
        "erp_subsidiary_id": head.get("erp_subsidiary_id"),
        "period": period,
        "source_period": source_period,
        "event": head["event"],
        "document_id": head["document_id"],
        "version": version,
        "currency": head["currency"],
        "total_debit": total,
        "line_count": n,
        "content_hash": h,
        "reverses": reverses,
        "correction": correction,
        "run_id": run_id,
        "memo": f"Reversal of {reverses}" if reverses else head.get("memo"),
        "transaction_date": _transaction_date(
            None if reverses else head.get("transaction_date"), period
        ),
    }


def _transaction_date(date, period: pd.Timestamp) -> pd.Timestamp:
    """The event's day when it falls in the posting period, else the posting period's last day
    (a reversal, or a correction moved out of a closed period)."""
    end = (_utc(period) + pd.offsets.MonthEnd(0)).normalize()
    if date is None or pd.isna(date):
        return end
    d = _utc(date)
    return d if _utc(period) <= d <= end else end


def _assemble_lines(parts, proposed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Lines of new journals (``("new", positions in proposed, external id)``), and
    placeholders for reversals that the caller fills from the ledger (``reversal_lines``),
    in the order of ``parts``; consecutive new journals are taken from ``proposed`` at once."""
    frames, run = [], []

    def flush():
        if run:
            pos = np.concatenate([rows for rows, _ in run])
            ids = np.repeat([eid for _, eid in run], [len(rows) for rows, _ in run])
            frames.append(proposed.iloc[pos].assign(external_id=ids))
            run.clear()

    for kind, src, eid in parts:
        if kind == "new":
            run.append((src, eid))
        else:
            flush()
            frames.append(pd.DataFrame({"external_id": [eid], "reverses": [src]}))
    flush()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def reversal_lines(original_lines: pd.DataFrame, reversal_id: str) -> pd.DataFrame:
    """The lines of a reversing journal: debits and credits swapped, same accounts."""
    r = original_lines.copy()
    r["external_id"] = reversal_id
    r[["debit", "credit"]] = original_lines[["credit", "debit"]].to_numpy()
    r[["debit_functional", "credit_functional"]] = original_lines[
        ["credit_functional", "debit_functional"]
    ].to_numpy()
    return r
