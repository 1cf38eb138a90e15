"""Replays open posting exceptions through the same idempotent posting path."""

import hashlib

import dagster as dg

from resources.erp import ErpResource
from sync_assets.jobs import posting_replay_job
from sync_assets.partitions import partition_key


@dg.sensor(
    job=posting_replay_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: one erp_postings run per entity x period with open exceptions.",
)
def posting_replay_sensor(context: dg.SensorEvaluationContext, erp: ErpResource):
    open_rows = erp.queue().open()
    if open_rows.empty:
        return dg.SkipReason("the posting exception queue is empty")
    requests = []
    for (entity, period), grp in open_rows.groupby(["entity_id", "period"], sort=True):
        # a new run only when something changed since the last replay of this partition
        state = "|".join(
            f"{k}:{a}" for k, a in zip(grp["journal_key"], grp["attempts"], strict=True)
        )
        digest = hashlib.sha256(state.encode()).hexdigest()[:16]
        p = f"{period:%Y-%m}-01" if hasattr(period, "strftime") else f"{str(period)[:7]}-01"
        requests.append(
            dg.RunRequest(
                run_key=f"replay-{entity}-{p}-{digest}",
                partition_key=partition_key(entity, p),
                tags={"sync/trigger": "replay"},
            )
        )
    return requests
