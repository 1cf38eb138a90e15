"""Legal entity x accounting period partitions shared by every partitioned asset."""

import dagster as dg

FIRST_PERIOD = "2025-01-01"

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
