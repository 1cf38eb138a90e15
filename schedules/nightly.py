"""Nightly sync of the open periods, and the period-close run of the month just ended."""

import dagster as dg
import pandas as pd

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


@dg.schedule(job=billing_sync_job, cron_schedule="0 2 * * *", execution_timezone="UTC")
def nightly_sync_schedule(context: dg.ScheduleEvaluationContext):
    """02:00 UTC: re-sync the current and the previous month of every legal entity."""
    now = context.scheduled_execution_time
    return period_requests(context, [_month(now, -1), _month(now)], "nightly")


@dg.schedule(job=billing_sync_job, cron_schedule="0 4 1 * *", execution_timezone="UTC")
def period_close_schedule(context: dg.ScheduleEvaluationContext):
    """04:00 UTC on the 1st: the month just ended, for every legal entity, before close."""
    return period_requests(context, [_month(context.scheduled_execution_time, -1)], "period-close")
