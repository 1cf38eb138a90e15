"""Nightly sync of the open periods, and the period close of the month just ended.

Both are stopped by default (Dagster's default for a schedule): an operator starts them in the
UI (Automation) once the deployment's source and ERP are configured.
"""

import dagster as dg
import pandas as pd

from sync_assets.close_jobs import close_run_config, period_close
from sync_assets.jobs import billing_sync_job
from sync_assets.partitions import (
    FIRST_PERIOD,
    RANGE_END,
    RANGE_START,
    entity_partitions,
    partition_key,
)


def period_requests(
    context: dg.ScheduleEvaluationContext, periods: list[pd.Timestamp], tag: str
) -> list[dg.RunRequest]:
    """One run per entity over the given consecutive months: a ranged run (the partition
    range tags, what a single-run backfill launches; a schedule cannot launch a backfill in
    Dagster 1.13) when there are several, a partition run for one. The run key makes a
    re-evaluated tick launch nothing new."""
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H%M")
    entities = context.instance.get_dynamic_partitions(entity_partitions.name)
    months = sorted(p for p in periods if p >= pd.Timestamp(FIRST_PERIOD))
    if not months:
        return []
    first, last = f"{months[0]:%Y-%m-%d}", f"{months[-1]:%Y-%m-%d}"
    out = []
    for entity in sorted(entities):
        start, end = partition_key(entity, first), partition_key(entity, last)
        tags = {"sync/trigger": tag}
        ranged = len(months) > 1
        if ranged:
            tags |= {RANGE_START: str(start), RANGE_END: str(end)}
        out.append(
            dg.RunRequest(
                run_key=f"{tag}-{tick}-{entity}-{months[0]:%Y-%m}-{months[-1]:%Y-%m}",
                partition_key=None if ranged else start,
                tags=tags,
            )
        )
    return out


def _month(ts, offset: int = 0) -> pd.Timestamp:
    return (pd.Timestamp(ts).tz_localize(None).to_period("M") + offset).to_timestamp()


@dg.schedule(
    job=billing_sync_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="02:00 UTC: re-sync the current and the previous month of every legal entity "
    "(one billing_sync run per entity, ranged over both months). Stopped by default: start it "
    "in Automation once the source and the ERP are configured.",
)
def nightly_sync_schedule(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time
    return period_requests(context, [_month(now, -1), _month(now)], "nightly")


def close_requests(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """One ``period_close`` run per legal entity for the month before the tick, closed by
    ``schedule``; the run key (entity and month) launches each close once."""
    month = _month(context.scheduled_execution_time, -1)
    if month < pd.Timestamp(FIRST_PERIOD):
        return []
    entities = sorted(context.instance.get_dynamic_partitions(entity_partitions.name))
    return [
        dg.RunRequest(
            run_key=f"period-close-{entity}-{month:%Y-%m}",
            run_config=close_run_config(entity, f"{month:%Y-%m}", "schedule"),
            tags={
                "sync/trigger": "period-close",
                "sync/entity": entity,
                "sync/period": f"{month:%Y-%m}",
            },  # fmt: skip
        )
        for entity in entities
    ]


@dg.schedule(
    job=period_close,
    cron_schedule="0 4 1 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="04:00 UTC on the 1st: close the month just ended for every legal entity (one "
    "period_close run each, closed_by 'schedule'); a month whose reconciliation fails or has "
    "open posting exceptions is refused and stays open. Stopped by default: start it in "
    "Automation when the close should not wait for an operator.",
)
def period_close_schedule(context: dg.ScheduleEvaluationContext):
    return close_requests(context)
