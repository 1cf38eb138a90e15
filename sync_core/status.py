"""Where is my month: the workflow state of one legal entity x accounting month.

One row per entity x month in the warehouse table ``close_status``, rebuilt by the
``close_status`` asset after reconciliation in the same run, from what that partition's steps
stored: ingested (the latest billing materialization), records and quarantined records,
exceptions by owner, revenue recognized, journals proposed, posted and held, drift left after
reconciliation, and the revenue close (``revenue_period_close``, ``period_close_log`` when
that table exists). ``stage`` names the furthest step the month has reached cleanly;
``waiting_on`` says who has to act for it to move on.

Pure pandas here (:func:`status_row`); the table and its one-transaction partition write
(:func:`write_status`) follow the exception queue and the ledger, which keep their own tables.
Money is in minor units of ``functional_currency``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
import sqlalchemy as sa

OWNERS = ("finance", "master_data", "integration")
STAGES = ("not_ingested", "ingested", "recognized", "proposed", "posting_held", "posted",
          "reconciled", "close_incomplete", "closed")  # fmt: skip

status_metadata = sa.MetaData()

close_status = sa.Table(
    "close_status",
    status_metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("stage", sa.Text, nullable=False),  # one of STAGES
    sa.Column("waiting_on", sa.Text, nullable=True),  # who must act, e.g. "master_data: 2"
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("records", sa.BigInteger, nullable=False),
    sa.Column("quarantined", sa.BigInteger, nullable=False),
    *[sa.Column(f"exceptions_{o}", sa.BigInteger, nullable=False) for o in OWNERS],
    sa.Column("schedule_rows", sa.BigInteger, nullable=False),
    sa.Column("functional_currency", sa.Text, nullable=True),
    sa.Column("revenue_functional", sa.BigInteger, nullable=False),
    sa.Column("deferred_functional", sa.BigInteger, nullable=False),
    sa.Column("proposed_journals", sa.BigInteger, nullable=False),
    sa.Column("posted_journals", sa.BigInteger, nullable=False),
    sa.Column("held_journals", sa.BigInteger, nullable=False),
    sa.Column("reconciled", sa.Boolean, nullable=False),
    sa.Column("accounts_with_drift", sa.BigInteger, nullable=False),
    sa.Column("drift_functional", sa.BigInteger, nullable=False),
    sa.Column("drift_severity", sa.Text, nullable=True),  # PASS | WARN | ERROR; null: not run
    sa.Column("revenue_closed", sa.Boolean, nullable=False),
    sa.Column("erp_period_closed", sa.Boolean, nullable=False),
    sa.Column("closed_by", sa.Text, nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),
)
sa.Index("ix_close_status_period", close_status.c.period, close_status.c.entity_id)
COLUMNS = [c.name for c in close_status.columns]
_SEVERITY = {"PASS": 0, "WARN": 1, "ERROR": 2}


def _keys(df: pd.DataFrame | None, status_col: str, value: str | None = None) -> int:
    """Distinct journal keys of ``df`` (whose ``status_col`` is ``value`` when given)."""
    if df is None or df.empty:
        return 0
    rows = df if value is None else df[df[status_col] == value]
    return int(rows["journal_key"].nunique())


def status_row(
    entity_id: str,
    period,
    *,
    ingested_at=None,
    records: Mapping[str, int] | None = None,
    exceptions: pd.DataFrame | None = None,
    schedule_rows: int = 0,
    schedule_totals: pd.DataFrame | None = None,
    proposed: pd.DataFrame | None = None,
    postings: pd.DataFrame | None = None,
    reconciliation: pd.DataFrame | None = None,
    closed_through=None,
    close: Mapping | None = None,
    erp_period_closed: bool = False,
    updated_at=None,
    run_id: str | None = None,
) -> dict:
    """The ``close_status`` row of one entity x month.

    ``records``: canonical rows per billing table; ``exceptions``: the partition's rows of the
    warehouse ``exceptions`` table (stage, owner); ``schedule_totals``: the month's
    ``revenue_schedule_totals`` rows; ``proposed``: ``proposed_journals`` (journal_key,
    action, status); ``postings``: ``erp_postings`` (journal_key, posting_status);
    ``reconciliation``: the month's ``reconciliation`` rows (kind, currency, drift, severity);
    ``closed_through``: the entity's last closed revenue month; ``close``: closed_by /
    closed_at of that close."""
    month = pd.Timestamp(period)
    month = month.tz_localize("UTC") if month.tzinfo is None else month.tz_convert("UTC")
    ex = exceptions if exceptions is not None else pd.DataFrame(columns=["stage", "owner"])
    by_owner = ex["owner"].value_counts().to_dict() if len(ex) else {}
    quarantined = int((ex["stage"] == "ingest").sum()) if len(ex) else 0

    totals = schedule_totals if schedule_totals is not None else pd.DataFrame()
    currency = None
    revenue = deferred = 0
    if len(totals):
        currency = str(totals["functional_currency"].iloc[0])
        revenue = int(totals["recognized_functional"].sum()
                      - totals["contra_revenue_functional"].sum())  # fmt: skip
        deferred = int(totals["deferred_balance_functional"].sum())

    live = proposed[proposed["action"] != "reverse_stale"] if proposed is not None and len(
        proposed) else proposed  # fmt: skip
    n_proposed = _keys(live, "status")
    posted = _keys(postings, "posting_status", "posted")
    held = _keys(postings, "posting_status", "held")

    rec = reconciliation if reconciliation is not None else pd.DataFrame()
    reconciled_run = len(rec) > 0
    off = rec[rec["drift"] != 0] if reconciled_run else rec
    functional = off[off["kind"] == "functional"] if len(off) else off
    drift = int(functional["drift"].abs().sum()) if len(functional) else 0
    severity = max(rec["severity"], key=_SEVERITY.__getitem__) if reconciled_run else None
    accounts_off = int(off["account"].nunique()) if len(off) else 0
    if currency is None and len(functional):
        currency = str(functional["currency"].iloc[0])

    closed = closed_through is not None and month <= _utc(closed_through)
    close = close or {}
    row = {
        "entity_id": entity_id,
        "period": month,
        "ingested_at": _utc(ingested_at) if ingested_at is not None else None,
        "records": int(sum((records or {}).values())),
        "quarantined": quarantined,
        **{f"exceptions_{o}": int(by_owner.get(o, 0)) for o in OWNERS},
        "schedule_rows": int(schedule_rows),
        "functional_currency": currency,
        "revenue_functional": revenue,
        "deferred_functional": deferred,
        "proposed_journals": n_proposed,
        "posted_journals": posted,
        "held_journals": held,
        "reconciled": bool(reconciled_run and accounts_off == 0),
        "accounts_with_drift": accounts_off,
        "drift_functional": drift,
        "drift_severity": severity,
        "revenue_closed": bool(closed),
        "erp_period_closed": bool(erp_period_closed),
        "closed_by": close.get("closed_by") if closed else None,
        "closed_at": _utc(close["closed_at"]) if closed and close.get("closed_at") else None,
        "updated_at": _utc(updated_at if updated_at is not None else pd.Timestamp.now("UTC")),
        "run_id": run_id,
    }
    row["stage"] = stage_of(row)
    row["waiting_on"] = waiting_on(row, by_owner)
    return {c: row[c] for c in COLUMNS}


def stage_of(row: Mapping) -> str:
    """The furthest step reached: a month is only ``posted`` with nothing held, only
    ``reconciled`` without drift, ``closed`` when its revenue close covers it and its ERP
    period is closed too; revenue closed with the ERP period still open is a close that did
    not finish (``close_incomplete``: run the close again, or reopen)."""
    if row["revenue_closed"]:
        return "closed" if row["erp_period_closed"] else "close_incomplete"
    if row["ingested_at"] is None and row["records"] == 0:
        return "not_ingested"
    if row["reconciled"] and row["held_journals"] == 0:
        return "reconciled"
    if row["held_journals"] > 0:
        return "posting_held"
    if row["proposed_journals"] > 0 and row["posted_journals"] >= row["proposed_journals"]:
        return "posted"
    if row["proposed_journals"] > 0:
        return "proposed"
    if row["schedule_rows"] > 0:
        return "recognized"
    return "ingested"


def waiting_on(row: Mapping, by_owner: Mapping[str, int]) -> str | None:
    """Who has to act, e.g. ``master_data: 1 exception; finance: drift on 2 accounts``."""
    parts = [f"{o}: {int(n)} exception{'s' * (int(n) != 1)}"
             for o, n in sorted(by_owner.items()) if n]  # fmt: skip
    if row["accounts_with_drift"]:
        n = row["accounts_with_drift"]
        parts.append(f"finance: drift on {n} account{'s' * (n != 1)}")
    if row["revenue_closed"] and not row["erp_period_closed"]:
        parts.append("finance: ERP period still open (run the close again, or reopen)")
    return "; ".join(parts) or None


def status_frame(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Rows as a frame in the table's column order."""
    return pd.DataFrame(list(rows), columns=COLUMNS)


def markdown(rows: pd.DataFrame, columns: list[str] | None = None) -> str:
    """The rows as a Markdown table (one line per entity x month)."""
    cols = columns or [c for c in COLUMNS if c not in ("run_id", "updated_at")]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(_cell(r[c]) for c in cols) + " |\n"
                   for r in rows.to_dict("records"))  # fmt: skip
    return head + body


def _cell(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m}" if value == value.normalize() and value.day == 1 else (
            f"{value:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    return str(value).replace("|", "/")


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def write_status(engine: sa.Engine, rows: pd.DataFrame) -> int:
    """Replace the rows' entity x months in ``close_status``: delete + insert in one
    transaction (the table is created on first use)."""
    status_metadata.create_all(engine, checkfirst=True)
    t = close_status
    records = []
    for r in rows.to_dict("records"):
        rec = {k: (None if not isinstance(v, str) and v is not None and pd.isna(v) else v)
               for k, v in r.items()}  # fmt: skip
        rec["period"] = _utc(r["period"]).date()
        for col in ("ingested_at", "closed_at", "updated_at"):
            if rec[col] is not None:
                rec[col] = _utc(rec[col]).to_pydatetime()
        records.append(rec)
    with engine.begin() as conn:
        for r in records:
            conn.execute(sa.delete(t).where(t.c.entity_id == r["entity_id"],
                                            t.c.period == r["period"]))  # fmt: skip
        if records:
            conn.execute(sa.insert(t), records)
    return len(records)


def read_status(engine: sa.Engine, entity_id: str | None = None) -> pd.DataFrame:
    """``close_status`` rows (of one entity), by entity and month; empty before the first
    run."""
    if not sa.inspect(engine).has_table(close_status.name):
        return status_frame([])
    q = sa.select(close_status).order_by(close_status.c.entity_id, close_status.c.period)
    if entity_id is not None:
        q = q.where(close_status.c.entity_id == entity_id)
    with engine.connect() as conn:
        res = conn.execute(q)
        df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    for col in ("period", "ingested_at", "closed_at", "updated_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df
