"""Post one entity x period's journals exactly once, to the SQL ledger or a REST ERP.

The plan (``sync_core.posting_plan``) decides what to post, reverse, hold or leave alone by
comparing the proposed journals with the ledger. Posting then goes in batches:

- **SQL ledger**: each batch's journals, lines and exception-queue updates are written in one
  transaction, with ``ON CONFLICT (external_id) DO NOTHING``: a crash anywhere leaves whole
  batches, and a rerun posts exactly what is missing.
- **REST ERP**: each journal is PUT by external id (an upsert, so a retry or a rerun never
  duplicates it); the journals the ERP accepted are then recorded in the ledger tables, which
  serve as the posting log, in one transaction with the queue updates. A crash between the
  PUT and the log write only means the next run PUTs the same journal again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sync_core.erp.ledger import LINE_COLS, SqlLedger
from sync_core.erp.queue import ExceptionQueue
from sync_core.posting_plan import plan_postings, reversal_lines

OWNER_OF_ERP_CODE = {"PERIOD_CLOSED": "finance", "PERIOD_LOCKED": "finance"}


@dataclass
class PostingReport:
    posted: list[str] = field(default_factory=list)  # external ids posted now
    unchanged: list[str] = field(default_factory=list)  # journal keys already posted as-is
    held: pd.DataFrame = field(default_factory=pd.DataFrame)  # queue rows opened or refreshed
    external_ids: dict[str, str] = field(default_factory=dict)  # journal key -> posted id
    posting_periods: dict[str, pd.Timestamp] = field(default_factory=dict)


def rule_holds(held: pd.DataFrame) -> pd.DataFrame:
    """Exception rows from ``build_journals`` as queue rows (one per journal)."""
    if held.empty:
        return pd.DataFrame(
            columns=[
                "entity_id",
                "period",
                "journal_key",
                "document_id",
                "event",
                "reason_code",
                "message",
                "owner",
            ]
        )
    out = held.rename(columns={"source_id": "journal_key", "rule": "reason_code"})
    out = out.drop_duplicates("journal_key")
    return out[["entity_id", "period", "journal_key", "document_id", "event", "reason_code",
                "message", "owner"]]  # fmt: skip


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
) -> PostingReport:
    """Plan and post ``proposed`` journal lines (with ``journal_key``) for one partition."""
    posted = ledger.journals(entity_id)
    plan = plan_postings(proposed, posted, set(closed_periods), policy, run_id)
    lines = _final_lines(plan, ledger)
    held = (
        pd.concat([h for h in (held_by_rules, plan.held) if len(h)], ignore_index=True)
        if len(held_by_rules) or len(plan.held)
        else plan.held
    )
    report = PostingReport(unchanged=list(plan.unchanged), held=held)
    live = _latest(posted)
    for k in plan.unchanged:
        if k in live:
            report.external_ids[k], report.posting_periods[k] = live[k]
    # the held rows whose journal is not in this period's proposal (resolved elsewhere) stay
    headers = plan.headers
    batches = [headers.iloc[i : i + batch_size] for i in range(0, len(headers), batch_size)]
    pending_held = held
    for batch in batches or [headers.iloc[:0]]:
        batch_lines = (
            lines[lines["external_id"].isin(set(batch["external_id"]))] if len(lines) else lines
        )
        ok, refused = batch, pd.DataFrame()
        if rest is not None and len(batch):
            ok, refused = _put_batch(rest, batch, batch_lines)
            batch_lines = batch_lines[batch_lines["external_id"].isin(set(ok["external_id"]))]
        keys = [_key(e) for e in ok["external_id"]]
        with ledger.engine.begin() as conn:
            ledger.post(ok, batch_lines, conn=conn)
            queue_rows = (
                pd.concat([pending_held, refused], ignore_index=True)
                if len(refused)
                else pending_held
            )
            queue.record(conn, entity_id, period, queue_rows, keys + report.unchanged, run_id)
        pending_held = pending_held.iloc[:0]
        report.posted.extend(ok["external_id"])
        for eid, p in zip(ok["external_id"], ok["period"], strict=True):
            if not eid.endswith("-REV"):
                report.external_ids[_key(eid)] = eid
                report.posting_periods[_key(eid)] = p
        if len(refused):
            report.held = pd.concat([report.held, refused], ignore_index=True)
    return report


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
        parts.append(new[[c for c in LINE_COLS if c in new]])
    out = pd.concat(parts, ignore_index=True)
    period_of = plan.headers.set_index("external_id")["period"]
    out["period"] = out["external_id"].map(period_of)
    return out


def _put_batch(rest, headers: pd.DataFrame, lines: pd.DataFrame):
    """PUT a batch to the REST ERP; return (accepted headers, queue rows for the refused)."""
    from sync_core.erp.rest import journal_payload

    payloads = []
    for eid in headers["external_id"]:
        jl = lines[lines["external_id"] == eid].copy()
        h = headers[headers["external_id"] == eid].iloc[0]
        jl["erp_subsidiary_id"] = h["erp_subsidiary_id"]
        jl["event"], jl["document_id"] = h["event"], h["document_id"]
        payloads.append(journal_payload(jl))
    outcomes = rest.post_many(payloads)
    ok_ids = {o.external_id for o in outcomes if o.status == "posted"}
    refused = []
    by_id = headers.set_index("external_id")
    for o in outcomes:
        if o.status == "posted":
            continue
        h = by_id.loc[o.external_id]
        code = o.error_code or ("erp_unavailable" if o.status == "failed" else "erp_rejected")
        refused.append({
            "entity_id": h["entity_id"], "period": h["source_period"],
            "journal_key": _key(o.external_id), "document_id": h["document_id"],
            "event": h["event"], "reason_code": code, "stage": "erp",
            "message": f"ERP {o.status} after {o.attempts} attempt(s): {o.message}",
            "owner": OWNER_OF_ERP_CODE.get(code, "integration"),
        })  # fmt: skip
    return headers[headers["external_id"].isin(ok_ids)], pd.DataFrame(refused)
