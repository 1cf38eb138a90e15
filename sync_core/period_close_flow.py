"""Period close and reopen of one legal entity x month: the gates, both locks and the audit.

A **close** of ``entity`` x ``YYYY-MM`` (``billing-sync close``, the ``period_close`` job):

1. refuses, listing every reason, when the month cannot be closed: a month before it is still
   revenue-open (months close in order; an entity's first close may be any month), the month is
   already closed on both sides, a reconciliation check of the month failed above materiality
   (``gl_equals_subledger`` at ERROR: drift beyond the entity's materiality; WARN, within it,
   does not block) or ``postings_complete`` failed, or a posting exception of the month is open;
2. closes the revenue through the month (``revenue_period_close``, see
   :mod:`sync_core.warehouse.period_close`), **then** the ERP period (``erp_periods`` status
   ``closed``; a ``locked`` period stays locked);
3. writes one ``period_close_log`` row (entity, period, action, by, at, reason, run id, and
   the state it left) in the warehouse.

A **reopen** needs a non-empty reason and undoes the two locks in the reverse order: the ERP
period first, then the revenue (closed through the month before). Only the last closed month
reopens (a later closed month is named: reopen it first); a locked ERP period is refused
(unlock it in the ERP).

Partial failure is **recoverable**, not impossible: the warehouse and the ledger may be two
databases (``SYNC_LEDGER_URL``), so there is no transaction over both. Both steps are
idempotent and ordered so that the only state between them is "revenue closed, ERP period
open" (a close that stopped after its first step, or a reopen that stopped after its first
step), in which the platform posts nothing into the month (a late change is a correction in the
first open month). Running the same close (or reopen) again completes it: a done step is
skipped, and the audit row is written once both are done. ``month_state`` shows the state.

Pure Python over SQLAlchemy: the gates' inputs (check outcomes, open exceptions) are given by
the caller (``sync_assets.close_jobs`` reads them from the month's run and the queue).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from sync_core.erp.periods import period_status, set_period_status
from sync_core.warehouse.period_close import (
    close_revenue,
    closed_through,
    month_start,
    reopen_revenue,
)
from sync_core.warehouse.store import Warehouse

CHECKS = ("gl_equals_subledger", "postings_complete")  # asset checks of ``reconciliation``
ACTIONS = ("close", "reopen")
LISTED = 20  # rows listed per reason in a refusal (the count is always given)

audit_metadata = sa.MetaData()
period_close_log = sa.Table(
    "period_close_log",
    audit_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("period", sa.Date, nullable=False),
    sa.Column("action", sa.Text, nullable=False),  # close | reopen
    sa.Column("by", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # required for a reopen
    sa.Column("run_id", sa.Text, nullable=True),  # the Dagster run, None from the CLI
    sa.Column("revenue_closed_through", sa.Date, nullable=True),  # after the action
    sa.Column("erp_status", sa.Text, nullable=False),  # after the action
)
sa.Index("ix_period_close_log_entity", period_close_log.c.entity_id, period_close_log.c.period)


class PeriodCloseRefused(Exception):
    """The close or reopen changed nothing; ``reasons`` says why, one line each."""

    def __init__(self, action: str, entity_id: str, period: str, reasons: list[str]):
        self.action, self.entity_id, self.period, self.reasons = action, entity_id, period, reasons
        lines = "\n".join(f"- {r}" for r in reasons)
        super().__init__(f"{action} of {entity_id} {period} refused:\n{lines}")


@dataclass(frozen=True)
class CheckOutcome:
    """The latest evaluation of a reconciliation check of the month: ``rows`` are what it
    lists (drift per account and currency, or incomplete documents), ``count`` how many."""

    name: str
    passed: bool
    severity: str  # WARN | ERROR
    rows: list[dict]
    count: int = 0


@dataclass(frozen=True)
class CloseRecord:
    """One ``period_close_log`` row: what was done, by whom, and the state it left."""

    entity_id: str
    period: str  # YYYY-MM
    action: str
    by: str
    at: datetime
    reason: str | None
    run_id: str | None
    revenue_closed_through: str | None  # YYYY-MM
    erp_status: str

    def as_dict(self) -> dict:
        return {**asdict(self), "at": self.at.isoformat()}


def parse_period(text: str) -> pd.Timestamp:
    """A ``YYYY-MM`` month as its UTC month start; ValueError naming the value otherwise."""
    text = str(text).strip()
    try:
        if len(text) != 7 or text[4] != "-":
            raise ValueError
        return month_start(pd.Timestamp(f"{text}-01"))
    except ValueError:
        raise ValueError(f"period must be a month as YYYY-MM, got {text!r}") from None


def month_state(wh: Warehouse, ledger: sa.Engine, entity_id: str, period) -> dict:
    """``revenue_closed`` (bool), ``revenue_closed_through`` (YYYY-MM or None) and
    ``erp_status`` of the entity's month."""
    month, through = month_start(period), closed_through(wh, entity_id)
    return {
        "revenue_closed": through is not None and through >= month,
        "revenue_closed_through": None if through is None else f"{through:%Y-%m}",
        "erp_status": period_status(ledger, entity_id, month),
    }


def gate_reasons(checks: Mapping[str, CheckOutcome | None], open_exceptions: pd.DataFrame,
                 period) -> list[str]:  # fmt: skip
    """Why the month's reconciliation and exception queue forbid the close (empty: they do
    not). ``open_exceptions`` may hold other months: only the month's rows count."""
    out = []
    for name in CHECKS:
        c = checks.get(name)
        if c is None:
            out.append(f"reconciliation check {name} has no evaluation for the month")
        elif not c.passed and c.severity == "ERROR":
            what = "drift above materiality" if name == CHECKS[0] else "incomplete postings"
            rows = [r for r in c.rows if name != CHECKS[0] or r.get("severity") == "ERROR"]
            out.append(f"reconciliation check {name} fails ({what}, {c.count or len(rows)}): "
                       + "; ".join(_row_text(name, r) for r in rows[:LISTED]))  # fmt: skip
    month = month_start(period)
    if len(open_exceptions):
        mine = open_exceptions[[month_start(p) == month for p in open_exceptions["period"]]]
        for r in mine.head(LISTED).itertuples(index=False):
            out.append(f"open posting exception {r.journal_key} ({r.reason_code}, owner "
                       f"{r.owner}): {r.message}")  # fmt: skip
        if len(mine) > LISTED:
            out.append(f"... and {len(mine) - LISTED} more open posting exceptions")
    return out


def _row_text(check: str, r: dict) -> str:
    if check == CHECKS[0]:
        return f"{r.get('account')} {r.get('kind')} {r.get('currency')} drift {r.get('drift')}"
    return f"{r.get('document_type')} {r.get('document_id')} {r.get('event')}: {r.get('reason')}"


def close_refusals(wh: Warehouse, ledger: sa.Engine, entity_id: str, period, by: str) -> list[str]:
    """What forbids the close before any run: who, the months' order, already closed."""
    month, out = month_start(period), []
    if not str(by or "").strip():
        out.append("closed_by is empty: a close records who closed the month")
    through = closed_through(wh, entity_id)
    before = month - pd.DateOffset(months=1)
    if through is not None and through < before:
        first = through + pd.DateOffset(months=1)
        out.append(f"{entity_id} revenue is closed through {through:%Y-%m}: close "
                   f"{first:%Y-%m}..{before:%Y-%m} first (months close in order)")  # fmt: skip
    # the last close left revenue closed and the ERP period open: it did not finish
    last_open = through is not None and period_status(ledger, entity_id, through) == "open"
    if last_open and month > through:
        out.append(f"{entity_id} {through:%Y-%m}: revenue is closed but its ERP period is still "
                   "open (a close that did not finish): close it again first")  # fmt: skip
    state = month_state(wh, ledger, entity_id, month)
    if state["revenue_closed"] and state["erp_status"] != "open":
        out.append(f"{entity_id} {month:%Y-%m} is already closed (revenue closed through "
                   f"{state['revenue_closed_through']}, ERP period {state['erp_status']})")  # fmt: skip
    return out


def close_period(
    wh: Warehouse,
    ledger: sa.Engine,
    entity_id: str,
    period,
    closed_by: str,
    *,
    checks: Mapping[str, CheckOutcome | None],
    open_exceptions: pd.DataFrame,
    run_id: str | None = None,
) -> CloseRecord:
    """Close the month (module docstring) or raise :class:`PeriodCloseRefused` with every
    reason; ``checks`` are the month's latest reconciliation check outcomes."""
    month = month_start(period)
    reasons = close_refusals(wh, ledger, entity_id, month, closed_by)
    reasons += gate_reasons(checks, open_exceptions, month)
    if reasons:
        raise PeriodCloseRefused("close", entity_id, f"{month:%Y-%m}", reasons)
    close_revenue(wh, entity_id, month, closed_by)  # 1: revenue (idempotent)
    if period_status(ledger, entity_id, month) == "open":  # 2: ERP (a lock stays)
        set_period_status(ledger, entity_id, month, "closed")
    return _audit(wh, ledger, entity_id, month, "close", closed_by, None, run_id)


def reopen_period(
    wh: Warehouse,
    ledger: sa.Engine,
    entity_id: str,
    period,
    reopened_by: str,
    reason: str,
    *,
    run_id: str | None = None,
) -> CloseRecord:
    """Reopen the month, ERP period first, then revenue (module docstring), or raise
    :class:`PeriodCloseRefused` with every reason."""
    month, reasons = month_start(period), []
    if not str(reason or "").strip():
        reasons.append("reason is empty: a reopen records why the month is reopened")
    if not str(reopened_by or "").strip():
        reasons.append("reopened_by is empty: a reopen records who reopened the month")
    state = month_state(wh, ledger, entity_id, month)
    through = closed_through(wh, entity_id)
    if through is not None and through > month:
        reasons.append(f"{entity_id} revenue is closed through {through:%Y-%m}: reopen "
                       f"{through:%Y-%m} back to {month + pd.DateOffset(months=1):%Y-%m} "
                       "first (the last closed month reopens)")  # fmt: skip
    if state["erp_status"] == "locked":
        reasons.append(f"ERP period {entity_id} {month:%Y-%m} is locked: unlock it in the ERP")
    if not state["revenue_closed"] and state["erp_status"] == "open":
        reasons.append(f"{entity_id} {month:%Y-%m} is not closed (revenue and ERP period open)")
    if reasons:
        raise PeriodCloseRefused("reopen", entity_id, f"{month:%Y-%m}", reasons)
    if state["erp_status"] == "closed":  # 1: ERP
        set_period_status(ledger, entity_id, month, "open")
    reopen_revenue(wh, entity_id, month, reopened_by)  # 2: revenue (idempotent)
    return _audit(wh, ledger, entity_id, month, "reopen", reopened_by, reason.strip(), run_id)


def _audit(wh, ledger, entity_id, month, action, by, reason, run_id) -> CloseRecord:
    state = month_state(wh, ledger, entity_id, month)
    record = CloseRecord(
        entity_id=entity_id, period=f"{month:%Y-%m}", action=action, by=str(by).strip(),
        at=datetime.now(UTC), reason=reason, run_id=run_id,
        revenue_closed_through=state["revenue_closed_through"], erp_status=state["erp_status"],
    )  # fmt: skip
    audit_metadata.create_all(wh.engine, checkfirst=True)
    row = {k: v for k, v in asdict(record).items() if k not in ("period", "revenue_closed_through")}
    through = record.revenue_closed_through
    row |= {"period": month.date(),
            "revenue_closed_through": None if through is None else parse_period(through).date()}  # fmt: skip
    with wh.engine.begin() as conn:
        conn.execute(sa.insert(period_close_log).values(**row))
    return record


def close_log(wh: Warehouse, entity_id: str | None = None) -> pd.DataFrame:
    """The audit rows, oldest first (one entity's when given)."""
    audit_metadata.create_all(wh.engine, checkfirst=True)
    t = period_close_log
    q = sa.select(t).order_by(t.c.id)
    if entity_id is not None:
        q = q.where(t.c.entity_id == entity_id)
    with wh.engine.connect() as conn:
        res = conn.execute(q)
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))
