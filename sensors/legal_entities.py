"""Keeps legal entities in step with the billing source: a new entity becomes a dynamic
partition (no code change), and any change to the entities' rows refreshes the table.

Legal entities come only from ``legal_entities``: an entity partition the source does not name
(one added by hand in the UI's partition picker, a typo) is deleted again, unless something
was already materialized for it (then it stays, and the tick log names it)."""

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
    stray = sorted(known - set(entities))
    unused = [e for e in stray if not _materialized(context.instance, e)]
    for e in stray:
        if e not in unused:
            context.log.warning(f"entity partition {e!r} is not in legal_entities but has data")
    if not new and not unused and digest == context.cursor:
        return dg.SkipReason(f"{len(entities)} legal entities, unchanged")
    requests = [entity_partitions.build_add_request(new)] if new else []
    if unused:
        requests.append(entity_partitions.build_delete_request(unused))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"legal-entities-{digest}")]
        if digest != context.cursor or new
        else [],
        dynamic_partitions_requests=requests,
        cursor=digest,
    )


def _materialized(instance: dg.DagsterInstance, entity: str) -> bool:
    """Whether any billing asset has a materialized partition of ``entity``."""
    from sync_assets.runner import ingest_assets

    prefix = f"{entity}|"
    return any(
        any(str(k).startswith(prefix) for k in instance.get_materialized_partitions(dg.AssetKey(a)))
        for a in ingest_assets()
    )
