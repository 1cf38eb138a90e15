"""Revenue: recognition per document, kept per legal entity x accounting period.

A run for one or more months of an entity first refreshes the entity's document store
(``sync_core.recognition.refresh``): every invoice with its lines, credit notes, payments,
disputes and usage is a document with a content hash, and only the documents that are new or
changed since the last run are recognized again. It then derives each month from the stored
rows of that month: the schedule rows recognized in it, the balances at its end, its
rollforward and waterfall rows, and its accounting lines (the subledger's journal view that
``proposed_journals`` turns into ERP journals: recognition runs once, here). A document billed
later (a proration billed in May for April service) lands in the month it was earned, unless
that month is closed: then it lands in the first open month as a marked correction, and the
closed months are never rewritten.

A month depends on the canonical partitions of the same month (identity mapping): that is what
a backfill or a sensor request for the month materializes, and nothing else. Documents of
earlier months that are still open are read from the document store, which every run keeps
current. A backfill runs as one ranged run per entity (``BackfillPolicy.single_run``) that
refreshes once and writes each month.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from sync_assets import billing
from sync_assets.metadata import (
    FINANCE,
    TABLE_KINDS,
    check_result,
    frame_metadata,
    table_metadata,
    with_exceptions,
)
from sync_assets.partitions import combined, entity_period_partitions, partitions_by_entity
from sync_core.contracts.derived import DERIVED_MODELS
from sync_core.proposal_checks import rollforward_balances
from sync_core.recognition import UPSTREAM, derive, refresh

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _TYPES = {
        name: pandera_schema_to_dagster_type(DERIVED_MODELS[name])
        for name in (
            "revenue_schedules",
            "revenue_rollforward",
            "deferred_revenue_waterfall",
            "accounting_lines",
        )
    }
_EMPTY_EXC = pd.DataFrame(columns=["entity_id", "period", "object_type", "source_id", "rule",
                                   "message", "owner"])  # fmt: skip


_DESCRIPTIONS = {
    "revenue_schedules": "One row per source (invoice line, credit note, void, refund, "
    "dispute, uncollectible) and recognition month: revenue recognized, billed, deferred and "
    "unbilled balances, in the transaction and the functional currency. A late document for "
    "a closed month lands in the first open month as a marked correction.",
    "revenue_rollforward": "Deferred revenue rollforward per currency and month: opening + "
    "billings - recognized - credits = closing deferred, and unbilled AR; the "
    "rollforward_balances check stops posting when it does not hold.",
    "deferred_revenue_waterfall": "Deferred revenue waterfall: revenue recognized in the "
    "month by the month it was billed, per currency.",
    "accounting_lines": "The month's accounting lines per business event (debit / credit per "
    "account, transaction and functional currency): the subledger's journal view that "
    "proposed_journals groups into ERP journals.",
}


def _outs() -> dict[str, dg.AssetOut]:
    return {
        name: dg.AssetOut(
            dagster_type=_TYPES[name],
            io_manager_key="warehouse_io",
            group_name="revenue",
            description=_DESCRIPTIONS[name],
            owners=FINANCE,
            kinds=TABLE_KINDS,
            tags={"domain": "revenue"},
            metadata=table_metadata(name),
        )
        for name in _TYPES
    }


@dg.multi_asset(
    outs=_outs(),
    partitions_def=entity_period_partitions,
    deps=[dg.AssetDep(name) for name in UPSTREAM] + [billing.legal_entities],
    check_specs=[
        dg.AssetCheckSpec(
            "rollforward_balances",
            asset="revenue_rollforward",
            blocking=True,
            description="opening deferred + billings - recognized - credits = closing deferred, "
            "per currency; a failure stops posting",
        )
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def revenue(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Revenue schedule rows, the deferred revenue rollforward, the waterfall and the
    accounting lines of each month of the run."""
    wh = warehouse.get()
    frames, exc, status, stats = month_outputs(wh, partitions_by_entity(context.partition_keys))
    rows, roll = frames["revenue_schedules"], frames["revenue_rollforward"]
    # the check comes first: a rollforward that does not hold also fails its type check, and
    # the check result must say so before the step fails
    yield _rollforward_check(roll)
    yield dg.Output(
        with_exceptions(rows, exc, "recognition", UPSTREAM),
        output_name="revenue_schedules",
        metadata=frame_metadata(
            rows,
            "recognized",
            quarantined=len(exc),
            period_status=next(iter(status.values()))
            if len(status) == 1
            else dg.MetadataValue.json(status),
            corrections=int(rows["correction"].sum()) if len(rows) else 0,
            **stats,
        ),
    )
    yield dg.Output(
        roll, output_name="revenue_rollforward", metadata=frame_metadata(roll, "closing_deferred")
    )
    waterfall = frames["deferred_revenue_waterfall"]
    yield dg.Output(
        waterfall,
        output_name="deferred_revenue_waterfall",
        metadata=frame_metadata(waterfall, "recognized"),
    )
    lines = frames["accounting_lines"]
    yield dg.Output(
        lines,
        output_name="accounting_lines",
        metadata=frame_metadata(lines, "debit_functional", events=int(lines["event"].nunique())),
    )


def month_outputs(wh, months: dict[str, list[pd.Timestamp]]):
    """(outputs, quarantine, status per month, refresh figures) of the entities' months:
    closed months as booked, open months derived from the refreshed document store."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in _TYPES}
    exc, status = [], {}
    stats = {"documents": 0, "documents_recognized": 0, "documents_reused": 0}
    closed = wh.closed_through()
    for entity, periods in months.items():
        through = closed.get(entity)
        shut = [p for p in periods if through is not None and p <= through]
        open_ = [p for p in periods if p not in shut]
        for p in shut:  # a closed month is kept exactly as it was booked
            for name in _TYPES:
                parts[name].append(wh.read(name, entity, p))
            status[f"{entity}|{p:%Y-%m}"] = f"closed through {through:%Y-%m}: kept as booked"
        if open_:
            done = refresh(wh, entity)
            stats["documents"] += done.documents
            stats["documents_recognized"] += done.recognized
            stats["documents_reused"] += done.reused
            derived = derive(wh, entity, open_)
            for name in _TYPES:
                parts[name].append(derived[name])
            exc.append(derived["quarantine"])
            status.update({f"{entity}|{p:%Y-%m}": "open" for p in open_})
    frames = {name: combined(dfs) for name, dfs in parts.items()}
    return frames, combined(exc) if exc else _EMPTY_EXC.copy(), status, stats


def _rollforward_check(roll: pd.DataFrame) -> dg.AssetCheckResult:
    return check_result(rollforward_balances(roll), "revenue_rollforward")
