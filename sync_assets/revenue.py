"""Revenue: the recognition engine over one legal entity, kept per accounting period.

A partition (entity, month) holds the schedule rows recognized in that month for every line,
credit note and void of the entity, with the balances at the month's end, the month's
rollforward and waterfall rows, and the month's accounting lines (the subledger's journal
view that ``proposed_journals`` turns into ERP journals: recognition runs once, here). The engine runs over the entity's whole history in the
warehouse, so a document billed later (a proration billed in May for April service) lands in
the month it was earned, unless that month is closed: then it lands in the first open month
as a marked correction, and the closed months are never rewritten.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.warehouse import split_partition_key
from sync_assets import billing
from sync_assets.metadata import check_result, frame_metadata, with_exceptions
from sync_assets.partitions import entity_period_partitions
from sync_core.contracts.derived import DERIVED_MODELS
from sync_core.proposal_checks import rollforward_balances
from sync_core.revenue import deferred_waterfall, recognize, rollforward
from sync_core.subledger import with_sources

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
    # every period of the same entity feeds a period's schedule
    SAME_ENTITY_ALL_PERIODS = dg.MultiPartitionMapping(
        {"entity": dg.DimensionPartitionMapping("entity", dg.IdentityPartitionMapping())}
    )
_UPSTREAM = ["invoice_lines", "invoices", "credit_notes", "credit_note_lines", "usage_events",
             "payments", "disputes"]  # fmt: skip
_RECOGNITION_OBJECTS = ["invoices", "invoice_lines", "credit_notes", "credit_note_lines",
                        "usage_events", "payments", "disputes"]  # fmt: skip


def entity_history(wh, entity: str) -> dict[str, pd.DataFrame]:
    """Every canonical document of one legal entity, as the engine takes them."""
    frames = {name: wh.read(name, entity) for name in _UPSTREAM}
    frames["legal_entities"] = wh.read("legal_entities").query("entity_id == @entity")
    return frames


def recognize_entity(wh, entity: str, frames: dict[str, pd.DataFrame] | None = None):
    """The engine over an entity's history (payments included), honouring its revenue close."""
    closed = {k: v for k, v in wh.closed_through().items() if k == entity}
    booked = None
    if closed:
        sched = wh.read("revenue_schedules", entity)
        booked = sched[sched["period"] <= closed[entity]]
    return recognize(
        **(frames if frames is not None else entity_history(wh, entity)),
        closed_through=closed or None,
        booked=booked,
    )


def _outs() -> dict[str, dg.AssetOut]:
    return {
        name: dg.AssetOut(
            dagster_type=_TYPES[name], io_manager_key="warehouse_io", group_name="revenue"
        )
        for name in _TYPES
    }


@dg.multi_asset(
    outs=_outs(),
    partitions_def=entity_period_partitions,
    deps=[dg.AssetDep(name, partition_mapping=SAME_ENTITY_ALL_PERIODS) for name in _UPSTREAM]
    + [billing.legal_entities],
    check_specs=[
        dg.AssetCheckSpec(
            "rollforward_balances",
            asset="revenue_rollforward",
            blocking=True,
            description="opening deferred + billings - recognized - credits = closing deferred, "
            "per currency; a failure stops posting",
        )
    ],
    can_subset=False,
)
def revenue(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Revenue schedule rows, the deferred revenue rollforward, the waterfall and the
    accounting lines of a month."""
    entity, period = split_partition_key(context.partition_key)
    wh = warehouse.get()
    closed_through = wh.closed_through().get(entity)
    if closed_through is not None and period <= closed_through:
        # a closed month is kept exactly as it was booked
        frames = {name: wh.read(name, entity, period) for name in _TYPES}
        exc = pd.DataFrame(columns=["object_type", "source_id", "rule", "message", "owner"])
        note = f"closed through {closed_through:%Y-%m}: kept as booked"
    else:
        history = entity_history(wh, entity)
        result = recognize_entity(wh, entity, history)
        sched = result.schedule
        frames = {
            "revenue_schedules": sched,
            "revenue_rollforward": rollforward(sched),
            "deferred_revenue_waterfall": deferred_waterfall(sched),
            "accounting_lines": with_sources(result.accounting_lines, history),
        }
        frames = {k: _month(v, entity, period) for k, v in frames.items()}
        exc = _month(result.quarantine, entity, period)
        note = "open"
    rows, roll = frames["revenue_schedules"], frames["revenue_rollforward"]
    # the check comes first: a rollforward that does not hold also fails its type check, and
    # the check result must say so before the step fails
    yield _rollforward_check(roll)
    yield dg.Output(
        with_exceptions(rows, exc, "recognition", _RECOGNITION_OBJECTS),
        output_name="revenue_schedules",
        metadata=frame_metadata(
            rows,
            "recognized",
            quarantined=len(exc),
            period_status=note,
            corrections=int(rows["correction"].sum()) if len(rows) else 0,
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


def _rollforward_check(roll: pd.DataFrame) -> dg.AssetCheckResult:
    return check_result(rollforward_balances(roll), "revenue_rollforward")


def _month(df: pd.DataFrame, entity: str, period: pd.Timestamp) -> pd.DataFrame:
    if df.empty:
        return df
    return df[(df["entity_id"] == entity) & (df["period"] == period)].reset_index(drop=True)
