"""Adds a legal entity that appears in the billing source as a new dynamic partition."""

import hashlib

import dagster as dg

from resources import BillingSourceResource
from sync_assets.jobs import legal_entities_job
from sync_assets.partitions import entity_partitions


@dg.sensor(
    job=legal_entities_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New legal entities in the source become partitions; no code change needed.",
)
def legal_entity_sensor(context: dg.SensorEvaluationContext, billing_source: BillingSourceResource):
    entities = sorted(set(billing_source.read("legal_entities")["entity_id"].dropna()))
    known = set(context.instance.get_dynamic_partitions(entity_partitions.name))
    new = [e for e in entities if e not in known]
    if not new:
        return dg.SkipReason(f"{len(entities)} legal entities, none new")
    digest = hashlib.sha256(",".join(entities).encode()).hexdigest()[:16]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"legal-entities-{digest}")],
        dynamic_partitions_requests=[entity_partitions.build_add_request(new)],
    )
