"""Legal entity x accounting period partitions shared by every partitioned asset.

The first month is ``SYNC_FIRST_PERIOD`` (``YYYY-MM`` or ``YYYY-MM-01``; default
``2025-01``), read when the code location loads: set it to the first month with data. The
last month is the current one (``end_offset=1``). Partition keys stay ``YYYY-MM-01``. Moving
the first month later on a running deployment hides the months before it from the UI,
backfills and sensors (their rows and materializations are kept); moving it earlier adds
months.
"""

import os
import re

import dagster as dg
import pandas as pd

from resources.warehouse import split_partition_key

DEFAULT_FIRST_PERIOD = "2025-01-01"


def first_period(value: str | None, today: pd.Timestamp | None = None) -> str:
    """``SYNC_FIRST_PERIOD`` as the ``YYYY-MM-01`` start of the monthly partitions: a month
    from 2000 up to the current one, else ``ValueError`` naming the value."""
    if not value:
        return DEFAULT_FIRST_PERIOD
    m = re.fullmatch(r"(\d{4})-(\d{2})(-01)?", value.strip())
    now = (today or pd.Timestamp.now(tz="UTC")).strftime("%Y-%m")
    if m is None or not 1 <= int(m[2]) <= 12 or not "2000-01" <= f"{m[1]}-{m[2]}" <= now:
        raise ValueError(
            f"SYNC_FIRST_PERIOD={value!r}: expected a month YYYY-MM (or YYYY-MM-01) from "
            f"2000-01 to the current month {now}"
        )
    return f"{m[1]}-{m[2]}-01"


FIRST_PERIOD = first_period(os.getenv("SYNC_FIRST_PERIOD"))
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
