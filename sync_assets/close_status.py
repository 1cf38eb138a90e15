"""``close_status``: where is my month? One row per legal entity x accounting month.

Materialized after ``reconciliation`` in the same run (the billing_sync job, the demo's and
``billing-sync``'s ranged runs), from what that partition's steps stored; the row is built by
:func:`sync_core.status.status_row` and written to the warehouse table ``close_status``
(delete + insert of the run's months in one transaction). A month costs its own rows.
"""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from resources import WarehouseResource
from resources.erp import ErpResource
from resources.warehouse import split_partition_key
from sync_assets.partitions import entity_period_partitions
from sync_core.contracts import MODELS
from sync_core.status import COLUMNS, markdown, status_frame, status_row, write_status
from sync_core.warehouse.schema import TABLES

OWNERS = ["team:finance-systems"]
# the canonical tables the billing assets write per partition (legal_entities is reference data)
BILLING_TABLES = [name for name in MODELS if name != "legal_entities"]
CLOSE_LOG = "period_close_log"  # another team's audit of period closes, used when present
_SUMMARY = ["entity_id", "period", "stage", "waiting_on", "ingested_at", "records",
            "quarantined", "exceptions_finance", "exceptions_master_data",
            "exceptions_integration", "revenue_functional", "functional_currency",
            "proposed_journals", "posted_journals", "held_journals", "drift_functional",
            "drift_severity", "revenue_closed", "closed_by", "closed_at"]  # fmt: skip


COLUMN_DOCS = {
    "entity_id": ("string", "legal entity"),
    "period": ("date", "accounting month (first day)"),
    "stage": (
        "string",
        "furthest step reached cleanly: not_ingested, ingested, recognized, "
        "proposed, posting_held, posted, reconciled, close_incomplete (revenue closed, ERP "
        "period still open: run the close again), closed",
    ),
    "waiting_on": ("string", "who must act: open exceptions per owner, drift for finance"),
    "ingested_at": ("timestamp", "latest billing materialization of the partition"),
    "records": ("int", "canonical billing records of the month (all billing tables)"),
    "quarantined": ("int", "records refused at ingest (exceptions of stage ingest)"),
    "exceptions_finance": ("int", "open exception rows of the month owned by finance"),
    "exceptions_master_data": ("int", "open exception rows owned by master data"),
    "exceptions_integration": ("int", "open exception rows owned by integration"),
    "schedule_rows": ("int", "revenue schedule rows recognized in the month"),
    "functional_currency": ("string", "currency of the *_functional amounts"),
    "revenue_functional": ("int", "revenue recognized net of contra revenue, minor units"),
    "deferred_functional": ("int", "deferred revenue at month end, minor units"),
    "proposed_journals": ("int", "journals proposed for the month (stale reversals aside)"),
    "posted_journals": ("int", "proposed journals posted to the ERP"),
    "held_journals": ("int", "proposed journals held in the posting exception queue"),
    "reconciled": ("bool", "reconciliation ran and no account drifts"),
    "accounts_with_drift": ("int", "accounts whose GL differs from the subledger"),
    "drift_functional": ("int", "sum of absolute functional drift, minor units"),
    "drift_severity": ("string", "worst reconciliation severity: PASS, WARN, ERROR"),
    "revenue_closed": ("bool", "revenue closed through this month or later"),
    "erp_period_closed": ("bool", "the ERP period is closed or locked"),
    "closed_by": ("string", "who closed the month (period_close_log, else the revenue close)"),
    "closed_at": ("timestamp", "when it was closed"),
    "updated_at": ("timestamp", "when this row was computed"),
    "run_id": ("string", "the Dagster run that computed it"),
}
assert list(COLUMN_DOCS) == COLUMNS
COLUMN_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(c, t, d) for c, (t, d) in COLUMN_DOCS.items()]
)


def ingested_at(instance, key: str) -> pd.Timestamp | None:
    """When the partition's billing data was last materialized (the newest materialization
    of any billing asset for that partition, from the instance's event log)."""
    newest = None
    for name in BILLING_TABLES:
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[key]), limit=1
        ).records
        if found and (newest is None or found[0].timestamp > newest):
            newest = found[0].timestamp
    return pd.Timestamp(newest, unit="s", tz="UTC") if newest is not None else None


def _count(conn, name: str, entity: str, period: pd.Timestamp) -> int:
    t = TABLES[name]
    q = sa.select(sa.func.count()).select_from(t).where(
        t.c.entity_id == entity, t.c.period == period.date())  # fmt: skip
    return int(conn.execute(q).scalar() or 0)


def _close_log(wh, entity: str, period: pd.Timestamp) -> dict | None:
    """Who closed the month and when, from the newest ``period_close_log`` row of the month
    (``sync_core.period_close_flow``: entity_id, period, action, by, at) when that table
    exists and that row is a close; None otherwise (the revenue close's own record is used:
    a month closed through a later one has no row of its own)."""
    inspector = sa.inspect(wh.engine)
    if not inspector.has_table(CLOSE_LOG):
        return None
    if not {"entity_id", "period", "action", "by", "at"} <= {
        c["name"] for c in inspector.get_columns(CLOSE_LOG)
    }:
        return None
    log = wh.query(
        f'SELECT action, "by", "at" FROM "{CLOSE_LOG}" WHERE entity_id = :e AND period = :p',
        e=entity, p=period.date(),
    )  # fmt: skip
    if log.empty:
        return None
    last = log.assign(at=pd.to_datetime(log["at"], utc=True)).sort_values("at").iloc[-1]
    return {"closed_by": last["by"], "closed_at": last["at"]} if last["action"] == "close" else None


def month_row(context, wh, key, closes: dict, now: pd.Timestamp) -> dict:
    entity, period = split_partition_key(key)
    with wh.engine.connect() as conn:
        records = {name: _count(conn, name, entity, period) for name in BILLING_TABLES}
        schedule_rows = _count(conn, "revenue_schedules", entity, period)
    read = lambda name, cols: wh.read(name, entity, period, columns=cols)  # noqa: E731
    through, close, erp_closed = closes[entity]
    return status_row(
        entity,
        period,
        ingested_at=ingested_at(context.instance, str(key)),
        records=records,
        exceptions=read("exceptions", ["stage", "owner"]),
        schedule_rows=schedule_rows,
        schedule_totals=wh.totals("revenue_schedules", entity, periods=(period, period)),
        proposed=read("proposed_journals", ["journal_key", "action", "status"]),
        postings=read("erp_postings", ["journal_key", "posting_status"]),
        reconciliation=read(
            "reconciliation", ["account", "kind", "currency", "drift", "severity"]
        ),  # fmt: skip
        closed_through=through,
        close=_close_log(wh, entity, period) or close,
        erp_period_closed=period in erp_closed,
        updated_at=now,
        run_id=context.run_id,
    )


def _closes(wh, erp: ErpResource, entities) -> dict:
    """entity -> (revenue closed through, {closed_by, closed_at} of that close, the ERP's
    closed or locked periods)."""
    out = {}
    for entity in entities:
        rows = wh.read("revenue_period_close", entity)
        through, close = None, None
        if len(rows):
            r = rows.iloc[0]
            through, close = r["closed_through"], {"closed_by": r["closed_by"],
                                                   "closed_at": r["closed_at"]}  # fmt: skip
        out[entity] = (through, close, erp.closed_periods(entity))
    return out


def _numeric(row: dict) -> dict:
    ints = ["records", "quarantined", "exceptions_finance", "exceptions_master_data",
            "exceptions_integration", "schedule_rows", "revenue_functional",
            "deferred_functional", "proposed_journals", "posted_journals", "held_journals",
            "accounts_with_drift", "drift_functional"]  # fmt: skip
    meta = {k: dg.MetadataValue.int(int(row[k])) for k in ints}
    meta["stage"] = dg.MetadataValue.text(row["stage"])
    meta["reconciled"] = dg.MetadataValue.bool(bool(row["reconciled"]))
    meta["revenue_closed"] = dg.MetadataValue.bool(bool(row["revenue_closed"]))
    return meta


@dg.asset(
    name="close_status",
    group_name="reconciliation",
    partitions_def=entity_period_partitions,
    deps=[dg.AssetDep("reconciliation"), dg.AssetDep("erp_postings")],
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Where is my month: one row per legal entity x accounting month (table "
    "close_status) with its stage (ingested, recognized, proposed, posted, reconciled, "
    "closed), what waits and on whom, records and exceptions by owner, revenue, journals "
    "proposed / posted / held, drift and who closed it when.",
    owners=OWNERS,
    kinds={"sql", "pandas"},
    tags={"domain": "operations"},
    metadata={"table": "close_status", "dagster/column_schema": COLUMN_SCHEMA},
)
def close_status(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource
) -> dg.MaterializeResult:
    wh = warehouse.get()
    keys = sorted(context.partition_keys, key=lambda k: split_partition_key(k))
    closes = _closes(wh, erp, {split_partition_key(k)[0] for k in keys})
    now = pd.Timestamp.now("UTC")
    rows = status_frame(month_row(context, wh, k, closes, now) for k in keys)
    write_status(wh.engine, rows)
    for key, row in zip(keys, rows.to_dict("records"), strict=True):
        # each month its own row and figures (a ranged run materializes its months at once)
        one = markdown(pd.DataFrame([row], columns=COLUMNS), _SUMMARY)
        context.add_asset_metadata(
            {"status": dg.MetadataValue.md(one), **_numeric(row)}, partition_key=key
        )
    run = {"dagster/row_count": dg.MetadataValue.int(1)}
    if len(rows) > 1:
        run["months_in_run"] = dg.MetadataValue.md(markdown(rows, _SUMMARY))
    return dg.MaterializeResult(metadata=run)
