"""``ops_metrics``: how the sync is doing for one legal entity x month, as numeric metadata the
UI plots over time (event -> posted lag, invoice finalized -> posted latency, failed posting
rate, open exceptions and their age per owner, period-close backlog). The figures are
computed by :mod:`sync_core.ops_metrics` from the month's documents, the posting log's
journals of those documents and the month's posting exceptions; the backlog from the
entity's ``close_status`` rows and its revenue close."""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from resources import WarehouseResource
from resources.erp import ErpResource
from resources.warehouse import split_partition_key
from sync_assets.partitions import entity_period_partitions
from sync_core import ops_metrics as om
from sync_core.erp.queue import posting_exceptions
from sync_core.status import OWNERS, markdown, read_status

_DOCUMENTS = {
    "invoices": ["invoice_id", "finalized_at", "voided_at", "uncollectible_at"],
    "credit_notes": ["credit_note_id", "issued_at", "voided_at"],
    "payments": ["payment_id", "kind", "created_at"],
    "disputes": ["dispute_id", "created_at", "closed_at"],
}


def _queue_rows(erp: ErpResource, entity: str, period: pd.Timestamp) -> pd.DataFrame:
    """The month's posting exceptions, open and resolved (the queue's own table)."""
    t = posting_exceptions
    q = sa.select(t).where(t.c.entity_id == entity, t.c.period == period.date())
    with erp.engine().connect() as conn:
        res = conn.execute(q)
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def month_metrics(wh, erp: ErpResource, key, backlog: int, now: pd.Timestamp) -> dict:
    """The figures of one entity x month (flat: name -> number, None when not measurable)."""
    entity, period = split_partition_key(key)
    docs = {name: wh.read(name, entity, period, columns=cols) for name, cols in _DOCUMENTS.items()}
    events = om.event_times(docs)
    journals = erp.ledger().journals(entity, documents=set(events["document_id"]))
    lags = om.posting_lags(journals, events)
    every, invoices = om.lag_stats(lags), om.lag_stats(lags, "invoice_finalized")
    queue = _queue_rows(erp, entity, period)
    failed = om.failed_posting_rate(journals, queue)
    owners = om.by_owner(om.open_exceptions(queue, now))
    out = {
        "entity_id": entity,
        "period": period,
        "events_posted": every["n"],
        "event_lag_p50_s": every["p50_s"],
        "event_lag_p95_s": every["p95_s"],
        "invoices_posted": invoices["n"],
        "invoice_post_latency_p50_s": invoices["p50_s"],
        "invoice_post_latency_p95_s": invoices["p95_s"],
        "failed_postings": failed["failed"],
        "attempted_postings": failed["attempted"],
        "failed_posting_rate": failed["rate"],
        "open_exceptions": sum(v["open"] for v in owners.values()),
        "close_backlog_months": backlog,
    }
    for o in OWNERS:
        out[f"open_exceptions_{o}"] = owners.get(o, {}).get("open", 0)
        out[f"oldest_open_days_{o}"] = owners.get(o, {}).get("oldest_days", 0.0)
    return out


def _backlogs(wh, entities, now) -> dict[str, int]:
    """entity -> months before the current one with a close_status row and no revenue close."""
    closed = wh.closed_through()
    out = {}
    for entity in entities:
        months = read_status(wh.engine, entity)["period"]
        out[entity] = len(om.close_backlog(months, closed.get(entity), now))
    return out


def _numeric(m: dict) -> dict:
    meta = {}
    for k, v in m.items():
        if k in ("entity_id", "period") or v is None:
            continue  # a percentile of nothing is not plotted as a zero
        meta[k] = dg.MetadataValue.float(float(v)) if isinstance(v, float) else (
            dg.MetadataValue.int(int(v)))  # fmt: skip
    return meta


@dg.asset(
    name="ops_metrics",
    group_name="reconciliation",
    partitions_def=entity_period_partitions,
    deps=[dg.AssetDep("close_status"), dg.AssetDep("erp_postings")],
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Operations metrics of one legal entity x month, plotted over time: event -> "
    "posted lag and invoice finalized -> posted latency (p50 / p95 seconds), failed posting "
    "rate (ERP refusals / attempts), open posting exceptions and the age of the oldest per "
    "owner, period-close backlog (months before the current one not closed).",
    owners=["team:finance-systems"],
    kinds={"pandas"},
    tags={"domain": "operations"},
)
def ops_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource
) -> dg.MaterializeResult:
    wh = warehouse.get()
    now = pd.Timestamp.now("UTC")
    keys = sorted(context.partition_keys, key=lambda k: split_partition_key(k))
    backlog = _backlogs(wh, {split_partition_key(k)[0] for k in keys}, now)
    rows = [month_metrics(wh, erp, k, backlog[split_partition_key(k)[0]], now) for k in keys]
    for key, m in zip(keys, rows, strict=True):
        # each month its own figures (a ranged run materializes its months at once)
        one = markdown(pd.DataFrame([m]).round(1), list(m))
        context.add_asset_metadata(
            {"metrics": dg.MetadataValue.md(one), **_numeric(m)}, partition_key=key
        )
    return dg.MaterializeResult(metadata={"months_in_run": dg.MetadataValue.int(len(rows))})
