"""Legal entity x accounting period partitions shared by every partitioned asset."""

import dagster as dg
import pandas as pd

from resources.warehouse import split_partition_key

FIRST_PERIOD = "2025-01-01"
# a ranged run of several partitions (what a single-run backfill launches)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

# Legal entities are a dynamic dimension: a new entity is added at run time (by the
# legal_entities sensor or `dagster instance` tooling), never by a code change.
entity_partitions = dg.DynamicPartitionsDefinition(name="legal_entity")

# Calendar months; end_offset=1 includes the open current month for micro-batches.
period_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_PERIOD, end_offset=1)

entity_period_partitions = dg.MultiPartitionsDefinition(
    {"entity": entity_partitions, "period": period_partitions}
)


def partition_key(entity_id: str, period: str) -> dg.MultiPartitionKey:
    """The partition key of an entity and a period given as ``YYYY-MM-01``."""
    return dg.MultiPartitionKey({"entity": entity_id, "period": period})


def partitions_by_entity(keys) -> dict[str, list[pd.Timestamp]]:
    """The partition keys of a run (one, or a ranged backfill) as entity -> months."""
    out: dict[str, list[pd.Timestamp]] = {}
    for key in keys:
        entity, period = split_partition_key(key)
        out.setdefault(entity, []).append(period)
    return {e: sorted(ps) for e, ps in out.items()}


def combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames of a run's partitions as one (a one-partition run's frame as it is); empty
    frames are left out when others have rows, so the columns' dtypes survive."""
    rows = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(rows, ignore_index=True) if len(rows) > 1 else rows[0]
