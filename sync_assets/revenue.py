"""Revenue schedules: the recognition engine over one legal entity, kept per accounting period.

A partition (entity, period) holds the schedule rows recognized in that month for every line,
credit note and void of the entity, with the cumulative, deferred and unbilled balances at the
month's end. The engine runs over the entity's whole history in the warehouse, so a document
billed later (a proration billed in May for April service) lands in the month it was earned.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.warehouse import split_partition_key
from sync_assets import billing
from sync_assets.metadata import frame_metadata, with_exceptions
from sync_assets.partitions import entity_period_partitions
from sync_core.contracts.derived import RevenueScheduleModel
from sync_core.revenue import recognize, rollforward

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _SCHEDULE_TYPE = pandera_schema_to_dagster_type(RevenueScheduleModel)

# every period of the same entity feeds a period's schedule
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    SAME_ENTITY_ALL_PERIODS = dg.MultiPartitionMapping(
        {"entity": dg.DimensionPartitionMapping("entity", dg.IdentityPartitionMapping())}
    )
_UPSTREAM = ["invoice_lines", "invoices", "credit_notes", "credit_note_lines", "usage_events"]


def entity_history(wh, entity: str) -> dict[str, pd.DataFrame]:
    """Every canonical document of one legal entity, as the engine takes them."""
    frames = {name: wh.read(name, entity) for name in _UPSTREAM}
    frames["legal_entities"] = wh.read("legal_entities").query("entity_id == @entity")
    return frames


@dg.asset(
    group_name="revenue",
    partitions_def=entity_period_partitions,
    dagster_type=_SCHEDULE_TYPE,
    io_manager_key="warehouse_io",
    deps=[dg.AssetDep(name, partition_mapping=SAME_ENTITY_ALL_PERIODS) for name in _UPSTREAM]
    + [billing.legal_entities],
    check_specs=[
        dg.AssetCheckSpec("rollforward_balances", asset="revenue_schedules", blocking=True)
    ],
    kinds={"pandas"},
)
def revenue_schedules(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Recognized revenue, cumulative, deferred and unbilled balances per line for the period."""
    entity, period = split_partition_key(context.partition_key)
    wh = warehouse.get()
    result = recognize(**entity_history(wh, entity))
    sched = result.schedule
    rows = sched[(sched["entity_id"] == entity) & (sched["period"] == period)].reset_index(
        drop=True
    )
    exc = result.quarantine
    exc = exc[(exc["entity_id"] == entity) & (exc["period"] == period)]
    roll = rollforward(sched)
    roll = roll[(roll["entity_id"] == entity) & (roll["period"] == period)]
    drift = (
        roll["opening_deferred"]
        + roll["billings"]
        - roll["recognized"]
        - roll["credits"]
        - roll["closing_deferred"]
    )
    yield dg.Output(
        with_exceptions(
            rows,
            exc,
            "recognition",
            ["invoice_lines", "credit_notes", "credit_note_lines", "invoices"],
        ),
        metadata=frame_metadata(
            rows,
            "recognized",
            quarantined=len(exc),
            rollforward=dg.MetadataValue.json(
                roll.drop(columns=["entity_id", "period"]).astype(str).to_dict("records")
            ),
        ),
    )
    yield dg.AssetCheckResult(
        check_name="rollforward_balances",
        passed=bool((drift == 0).all()),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "currencies": len(roll),
            "max_drift_minor": int(drift.abs().max() or 0) if len(roll) else 0,
        },
    )
