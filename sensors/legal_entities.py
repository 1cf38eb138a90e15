"""Keeps legal entities in step with the billing source: a new entity becomes a dynamic
partition (no code change), and any change to the entities' rows refreshes the table."""

import hashlib

import dagster as dg

from resources import BillingSourceResource
from sync_assets.jobs import legal_entities_job
from sync_assets.partitions import entity_partitions


@dg.sensor(
    job=legal_entities_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New legal entities become partitions; changed entity rows refresh the table.",
)
def legal_entity_sensor(context: dg.SensorEvaluationContext, billing_source: BillingSourceResource):
    frame = billing_source.read("legal_entities")
    rows = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
    digest = hashlib.sha256(rows.sort_values("entity_id").to_csv(index=False).encode()).hexdigest()[
        :16
    ]
    entities = sorted(set(rows["entity_id"].dropna()))
    known = set(context.instance.get_dynamic_partitions(entity_partitions.name))
    new = [e for e in entities if e not in known]
    if not new and digest == context.cursor:
        return dg.SkipReason(f"{len(entities)} legal entities, unchanged")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"legal-entities-{digest}")],
        dynamic_partitions_requests=[entity_partitions.build_add_request(new)] if new else [],
        cursor=digest,
    )
