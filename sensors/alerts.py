"""Alerts to the webhook (``resources/alerts.py``): failed runs, failed reconciliation checks,
exception backlogs. The payloads are built in ``sync_core.alerts``.

- ``run_failure_alert_sensor``: every failed run of this code location's jobs.
- ``check_failure_alert_sensor``: every failed ``gl_equals_subledger`` / ``postings_complete``
  evaluation, read from the event log after the storage id in its cursor, every 30 s: a
  failure reaches the webhook within one interval. A delivery that fails keeps the cursor
  before that evaluation, so it is sent on the next tick.
- ``exception_backlog_alert_sensor``: per owner, open exceptions above
  ``backlog_max_open`` or older than ``backlog_max_age_days``, or given up by the replay;
  told again when the count crosses another step, the age another week, the given-up count
  changes, or a day passed (cursor: ``{owner: [key, unix time]}``).

They run by default only where ``SYNC_ALERT_WEBHOOK_URL`` is set at load time; elsewhere they
are stopped, and a tick without a URL skips with that reason.
"""

import json
import os
import time
from datetime import UTC, datetime

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from resources.alerts import AlertDeliveryError, AlertWebhookResource
from resources.erp import ErpResource
from sync_core import alerts as payloads

DEFAULT_STATUS = (
    dg.DefaultSensorStatus.RUNNING
    if os.getenv("SYNC_ALERT_WEBHOOK_URL")
    else dg.DefaultSensorStatus.STOPPED
)
NO_URL = "SYNC_ALERT_WEBHOOK_URL is not set: alerts are off"
FIRST_LOOK_S = 24 * 3600  # a sensor without a cursor reports the last day's failures only
RE_ALERT_S = 24 * 3600


def _plain(metadata) -> dict:
    return {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=DEFAULT_STATUS,
    description="Posts every failed run of this code location to the alert webhook.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertWebhookResource):
    if not alerts.configured():
        return dg.SkipReason(NO_URL)
    run = context.dagster_run
    message = "\n".join(_step_failures(context)) or (
        context.failure_event.message if context.failure_event else None)  # fmt: skip
    alerts.send(payloads.run_failure_alert(run.job_name, run.run_id, message, dict(run.tags),
                                              alerts.ui_url))  # fmt: skip
    context.log.info(f"alerted the failure of run {run.run_id[:8]} ({run.job_name})")
    return None


def _step_failures(context: dg.RunFailureSensorContext) -> list[str]:
    """``step: message`` of each failed step: a ``dg.Failure``'s description, else the
    error's message."""
    out = []
    for ev in context.get_step_failure_events():
        data = ev.step_failure_data
        user = getattr(data, "user_failure_data", None)
        text = (user.description if user and user.description else None) or (
            data.error.message if data and data.error else ev.message)  # fmt: skip
        out.append(f"{ev.step_key}: {text}")
    return out


def _check_records(instance: dg.DagsterInstance, after: int | None, limit: int = 100):
    """Completed evaluations of the alerted checks with an id above ``after``, oldest first,
    and the id the cursor may move to: not past a still planned (running) evaluation, whose
    row gets its result later under the same id, unless it is older than a day (a dead run).
    Read through the check executions table (no run-sharded event cursor on SQLite)."""
    recs = []
    for name in payloads.ALERT_CHECKS:
        key = dg.AssetCheckKey(dg.AssetKey("reconciliation"), name)
        for rec in instance.event_log_storage.get_asset_check_execution_history(key, limit):
            if after is None or rec.id > after:
                recs.append(rec)
    recs.sort(key=lambda r: r.id)
    done, cursor, stale = [], after, time.time() - FIRST_LOOK_S
    for rec in recs:
        if rec.status == AssetCheckExecutionRecordStatus.PLANNED:
            if rec.create_timestamp > stale:
                break
        elif rec.event is not None:
            done.append(rec)
        cursor = rec.id
    return done, cursor


@dg.sensor(
    name="check_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=DEFAULT_STATUS,
    description="Posts failed gl_equals_subledger / postings_complete evaluations (entity, "
    "period, drift, link) to the alert webhook within 30 s.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertWebhookResource):
    if not alerts.configured():
        return dg.SkipReason(NO_URL)
    after = int(context.cursor) if context.cursor else None
    records, cursor = _check_records(context.instance, after)
    since, sent, moved = time.time() - FIRST_LOOK_S, 0, after
    for rec in records:
        ev = rec.event.dagster_event.event_specific_data
        if not ev.passed and (after is not None or rec.create_timestamp >= since):
            partition = ev.partition or rec.partition or (
                context.instance.get_run_by_id(rec.run_id).tags.get("dagster/partition"))  # fmt: skip
            message = payloads.check_failure_alert(
                list(ev.asset_key.path), ev.check_name, partition, ev.severity.value,
                _plain(ev.metadata), alerts.ui_url, rec.run_id)  # fmt: skip
            try:
                alerts.send(message)
            except AlertDeliveryError as e:  # this one again on the next tick
                return dg.SensorResult(skip_reason=f"{e}; retried next tick",
                                       cursor=None if moved is None else str(moved))  # fmt: skip
            sent += 1
        moved = rec.id
    cursor = cursor if cursor is not None else moved
    if not sent:
        return dg.SensorResult(skip_reason="no failed reconciliation check since the last tick",
                               cursor=str(cursor) if cursor is not None else None)  # fmt: skip
    context.log.info(f"alerted {sent} failed check evaluation(s)")
    return dg.SensorResult(cursor=str(cursor))


@dg.sensor(
    name="exception_backlog_alert_sensor",
    minimum_interval_seconds=900,
    default_status=DEFAULT_STATUS,
    description="Tells an owner when their open posting exceptions pile up, age, or are no "
    "longer retried automatically.",
)
def exception_backlog_alert_sensor(context: dg.SensorEvaluationContext, erp: ErpResource,
                                   alerts: AlertWebhookResource):  # fmt: skip
    if not alerts.configured():
        return dg.SkipReason(NO_URL)
    told = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    hook = alerts
    found = payloads.backlogs(erp.queue().open(), datetime.now(UTC), hook.backlog_max_open,
                            hook.backlog_max_age_days)  # fmt: skip
    sent = []
    for b in found:
        key = b.key(hook.backlog_max_open)
        last = told.get(b.owner)
        if last and last[0] == key and now - last[1] < RE_ALERT_S:
            continue
        hook.send(payloads.backlog_alert(b, hook.backlog_max_open, hook.backlog_max_age_days,
                                       hook.ui_url))  # fmt: skip
        told[b.owner] = [key, now]
        sent.append(b.owner)
    told = {o: v for o, v in told.items() if o in {b.owner for b in found}}
    if not sent:
        return dg.SensorResult(skip_reason="no owner's backlog to report", cursor=json.dumps(told))
    return dg.SensorResult(cursor=json.dumps(told))


ALERT_SENSORS = [run_failure_alert_sensor, check_failure_alert_sensor,
                 exception_backlog_alert_sensor]  # fmt: skip
