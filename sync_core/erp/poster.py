"""Post one entity x period's journals exactly once, to the SQL ledger or a REST ERP.

The plan (``sync_core.posting_plan``) decides what to post, reverse, hold or leave alone by
comparing the proposed journals with the ledger. Posting then goes in batches:

- **SQL ledger**: each batch's journals, lines and exception-queue updates are written in one
  transaction, with ``ON CONFLICT (external_id) DO NOTHING``: a crash anywhere leaves whole
  batches, and a rerun posts exactly what is missing.
- **REST ERP**: each journal is PUT by external id with ``replace=line`` (an upsert that
  replaces the lines, so a retry or a rerun never duplicates it or its lines); the journals
  the ERP accepted are then recorded in the ledger tables, which serve as the posting log, in
  one transaction with the queue updates. A crash between the PUT and the log write only
  means the next run PUTs the same journal again. A journal whose NetSuite references cannot
  be resolved is not sent and queued with what is missing (owner master_data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sync_core.erp.ledger import LINE_COLS, SqlLedger
from sync_core.erp.queue import ExceptionQueue
from sync_core.posting import line_sources
from sync_core.posting_plan import (
    WAITS_FOR_INVOICE,
    ledger_view,
    plan_documents,
    plan_postings,
    reversal_lines,
)

# owners of the reasons a REST refusal may carry when its outcome names none
# (sync_core.erp.netsuite_errors maps NetSuite's codes)
OWNER_OF_ERP_CODE = {"period_closed": "finance", "period_locked": "finance",
                     "invalid_reference": "master_data"}  # fmt: skip


@dataclass
class PostingReport:
    posted: list[str] = field(default_factory=list)  # external ids posted now
    unchanged: list[str] = field(default_factory=list)  # journal keys already posted as-is
    held: pd.DataFrame = field(default_factory=pd.DataFrame)  # queue rows opened or refreshed
    external_ids: dict[str, str] = field(default_factory=dict)  # journal key -> posted id
    posting_periods: dict[str, pd.Timestamp] = field(default_factory=dict)


def post_period(
    proposed: pd.DataFrame,
    held_by_rules: pd.DataFrame,
    *,
    entity_id: str,
    period: pd.Timestamp,
    ledger: SqlLedger,
    queue: ExceptionQueue,
    closed_periods: set[pd.Timestamp] = frozenset(),
    policy: str = "next_open",
    rest=None,
    run_id: str | None = None,
    batch_size: int = 500,
    known_keys: set[str] | frozenset = frozenset(),
    accounting_lines: pd.DataFrame | None = None,
) -> PostingReport:
    """Plan and post ``proposed`` journal lines (with ``journal_key``) for one partition.

    ``known_keys``: every journal key of the period's proposal, held ones included; a live
    journal of the period outside them and ``proposed`` is stale and gets reversed.
    ``accounting_lines``: the month's lines, to record what each summarized line is made of.
    Of the ledger it reads only what the plan needs (``posting_plan.ledger_view``).
    """
    posted = ledger_view(ledger, entity_id, period, plan_documents(proposed))
    plan = plan_postings(proposed, posted, set(closed_periods), policy, run_id,
                         period=period, known_keys=set(known_keys))  # fmt: skip
    lines = _final_lines(plan, ledger)
    sources = (
        line_sources(accounting_lines, lines, plan.headers)
        if accounting_lines is not None
        else None
    )
    held = _stack(plan.held, held_by_rules)
    report = PostingReport(unchanged=list(plan.unchanged), held=held)
    # open rows of journals the period no longer proposes at all are settled: nothing to post
    live_keys = set(known_keys) | set(proposed.get("journal_key", [])) | set(
        held.get("journal_key", []))  # fmt: skip
    obsolete = _obsolete_exceptions(queue, entity_id, period, live_keys)
    live = _latest(posted)
    for k in plan.unchanged:
        if k in live:
            report.external_ids[k], report.posting_periods[k] = live[k]
    # the held rows whose journal is not in this period's proposal (resolved elsewhere) stay
    headers = plan.headers
    batches = [headers.iloc[i : i + batch_size] for i in range(0, len(headers), batch_size)]
    pending_held = held
    invoice_of = (
        proposed.drop_duplicates("journal_key").set_index("journal_key")["invoice_id"]
        if "invoice_id" in proposed
        else pd.Series(dtype=object)
    )
    blocked: set[str] = set()  # keys and invoice documents the ERP refused in this run
    for batch in batches or [headers.iloc[:0]]:
        batch_lines = (
            lines[lines["external_id"].isin(set(batch["external_id"]))] if len(lines) else lines
        )
        ok, refused = batch, pd.DataFrame()
        if rest is not None and len(batch):
            ok, refused = _put_batch(rest, batch, batch_lines, invoice_of, blocked)
            batch_lines = batch_lines[batch_lines["external_id"].isin(set(ok["external_id"]))]
        keys = [_key(e) for e in ok["external_id"]]
        with ledger.engine.begin() as conn:
            ledger.post(ok, batch_lines, conn=conn, sources=sources)
            queue_rows = _stack(pending_held, refused)
            queue.record(conn, entity_id, period, queue_rows, keys + report.unchanged + obsolete,
                         run_id)  # fmt: skip
        obsolete = []
        pending_held = pending_held.iloc[:0]
        report.posted.extend(ok["external_id"])
        for eid, p in zip(ok["external_id"], ok["period"], strict=True):
            if not eid.endswith("-REV"):
                report.external_ids[_key(eid)] = eid
                report.posting_periods[_key(eid)] = p
        if len(refused):
            report.held = _stack(report.held, refused)
    return report


def _obsolete_exceptions(queue: ExceptionQueue, entity_id, period, keys: set[str]) -> list[str]:
    """Open queue rows of ``period`` whose journal key is not proposed any more."""
    rows = queue.open(entity_id)
    if rows.empty:
        return []
    same = pd.to_datetime(rows["period"]).dt.tz_localize("UTC") == period
    return sorted(set(rows.loc[same, "journal_key"]) - keys)


def _stack(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty frames (the first one when all are empty)."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0]
    return full[0] if len(full) == 1 else pd.concat(full, ignore_index=True)


def _key(external_id: str) -> str:
    base = external_id[:-4] if external_id.endswith("-REV") else external_id
    return base.rsplit("-v", 1)[0]


def _latest(posted: pd.DataFrame) -> dict[str, tuple[str, pd.Timestamp]]:
    """journal key -> (external id, posting period) of its newest posted version."""
    if posted.empty:
        return {}
    live = posted[posted["reverses"].isna()].sort_values("version")
    return {
        _key(e): (
            e,
            pd.Timestamp(p).tz_localize("UTC")
            if pd.Timestamp(p).tzinfo is None
            else pd.Timestamp(p),
        )
        for e, p in zip(live["external_id"], live["period"], strict=True)
    }


def _final_lines(plan, ledger: SqlLedger) -> pd.DataFrame:
    """Lines of the planned journals; reversal lines come from the ledger's original."""
    if plan.lines.empty:
        return pd.DataFrame(columns=LINE_COLS + ["period"])
    parts = []
    if "reverses" in plan.lines:
        rev = plan.lines[plan.lines["reverses"].notna()]
        new = plan.lines[plan.lines["reverses"].isna()]
    else:
        rev, new = plan.lines.iloc[:0], plan.lines
    if len(rev):
        originals = ledger.lines(list(rev["reverses"]))
        for orig_id, rev_id in zip(rev["reverses"], rev["external_id"], strict=True):
            parts.append(reversal_lines(originals[originals["external_id"] == orig_id], rev_id))
    if len(new):
        # concatenated with the reversal placeholders, the amounts came back as floats
        new = new[[c for c in LINE_COLS if c in new]]
        ints = ["line_no", "debit", "credit", "debit_functional", "credit_functional"]
        parts.append(new.astype({c: "int64" for c in ints if c in new}))
    out = pd.concat(parts, ignore_index=True)
    period_of = plan.headers.set_index("external_id")["period"]
    out["period"] = out["external_id"].map(period_of)
    return out


def _put_batch(rest, headers, lines, invoice_of, blocked: set[str]):
    """PUT a batch to the REST ERP in order: reversals, then new versions whose reversal was
    accepted, then payments and refunds whose invoice was not refused. Returns (accepted
    headers, queue rows for the refused and the held back); ``blocked`` collects the keys and
    invoice documents refused, across the batches of one run."""
    eids = headers["external_id"]
    keys = eids.map(_key)
    is_rev = eids.str.endswith("-REV")
    pays = headers["event"].isin(WAITS_FOR_INVOICE) & ~is_rev
    oks, refused = [], []
    for phase in (is_rev, ~is_rev & ~pays, pays):
        part = headers[phase]
        wait = keys[phase].isin(blocked) | (
            part["event"].isin(WAITS_FOR_INVOICE) & keys[phase].map(invoice_of).isin(blocked)
        )
        for h in part[wait].to_dict("records"):
            if _key(h["external_id"]) not in blocked:  # (else its reversal's row says why)
                refused.append(_refused_row(h, "waiting_for_invoice", "ordering",
                               f"invoice {invoice_of.get(_key(h['external_id']))} was refused "
                               "by the ERP in this run"))  # fmt: skip
        ok, bad = _put(rest, part[~wait], lines)
        for r in bad.to_dict("records"):
            blocked.add(r["journal_key"])
            if r["event"] == "invoice_finalized":
                blocked.add(r["document_id"])
        oks.append(ok)
        refused.extend(bad.to_dict("records"))
    return pd.concat(oks), pd.DataFrame(refused)


def _refused_row(h, code, stage, message) -> dict:
    return {
        "entity_id": h["entity_id"], "period": h["source_period"],
        "journal_key": _key(h["external_id"]), "document_id": h["document_id"],
        "event": h["event"], "reason_code": code, "stage": stage, "message": message,
        "owner": OWNER_OF_ERP_CODE.get(code, "integration"),
    }  # fmt: skip


def _put(rest, headers: pd.DataFrame, lines: pd.DataFrame):
    """PUT journals to the REST ERP; return (accepted headers, queue rows for the refused).
    A journal whose references the client cannot resolve is not sent: its row names what is
    missing (``invalid_reference``, owner master_data)."""
    from sync_core.erp.rest import unresolved_outcome

    if headers.empty:
        return headers, pd.DataFrame(columns=["journal_key", "event", "document_id"])
    by_id = headers.set_index("external_id")
    jl = lines[lines["external_id"].isin(set(headers["external_id"]))].copy()
    for col in ("erp_subsidiary_id", "event", "document_id", "memo", "transaction_date"):
        jl[col] = jl["external_id"].map(by_id[col]) if col in by_id else None
    bodies = rest.journal_bodies(str(headers["entity_id"].iloc[0]), jl)
    sent = iter(rest.post_many([b for b in bodies if isinstance(b, dict)]))
    outcomes = [next(sent) if isinstance(b, dict) else unresolved_outcome(b) for b in bodies]
    ok_ids = {o.external_id for o in outcomes if o.status == "posted"}
    refused = []
    for o in outcomes:
        if o.status == "posted":
            continue
        h = by_id.loc[o.external_id]
        code = o.reason or o.error_code or (
            "erp_unavailable" if o.status == "failed" else "erp_rejected")  # fmt: skip
        message = (o.message if o.attempts == 0  # not sent: says why
                   else f"ERP {o.status} after {o.attempts} attempt(s): {o.message}")  # fmt: skip
        refused.append({
            "entity_id": h["entity_id"], "period": h["source_period"],
            "journal_key": _key(o.external_id), "document_id": h["document_id"],
            "event": h["event"], "reason_code": code, "stage": "erp", "message": message,
            "owner": o.owner or OWNER_OF_ERP_CODE.get(code, "integration"),
        })  # fmt: skip
    return headers[headers["external_id"].isin(ok_ids)], pd.DataFrame(refused)
