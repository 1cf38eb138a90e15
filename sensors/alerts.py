"""Alerts to the webhook (``resources/alerts.py``): failed runs, failed reconciliation checks,
exception backlogs. The payloads are built in ``sync_core.alerts``.

- ``run_failure_alert_sensor``: every failed run of this code location's jobs.
- ``check_failure_alert_sensor``: every new failure of ``gl_equals_subledger`` /
  ``postings_complete`` (a partition that starts failing, or whose drift changes), read from
  the check history after the id in its cursor, every 30 s: a failure reaches the webhook
  within one interval, once (the cursor keeps a fingerprint per failing asset, check and
  partition). At most 20 messages a tick, the rest folded into one summary. A delivery that
  fails keeps the cursor before that evaluation, so it is sent on the next tick.
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


PAGE = 200  # evaluations read per history query
MAX_MESSAGES = 20  # per tick; the rest are folded into one "and N more" message
MAX_REMEMBERED = 1000  # failing evaluations remembered in the cursor
TICK_BUDGET_S = 30.0  # no send starts later in a tick (the sensor timeout is 60 s)


def _check_records(instance: dg.DagsterInstance, after: int | None):
    """Completed evaluations of the alerted checks with an id above ``after`` (without a
    cursor: of the last day), oldest first, and the id the cursor may move to: not past a
    still planned (running) evaluation, whose row gets its result later under the same id,
    unless it is older than a day (a dead run). The history is read newest first, so it is
    paged backwards until ``after`` (a backfill leaves more than a page). Read through the
    check executions table (no run-sharded event cursor on SQLite)."""
    recs, stale = [], time.time() - FIRST_LOOK_S
    for name in payloads.ALERT_CHECKS:
        key = dg.AssetCheckKey(dg.AssetKey("reconciliation"), name)
        before = None
        while True:
            page = instance.event_log_storage.get_asset_check_execution_history(
                key, PAGE, cursor=before)  # fmt: skip
            for rec in page:
                if after is None and rec.create_timestamp < stale:
                    break
                if after is not None and rec.id <= after:
                    break
                recs.append(rec)
            else:
                if len(page) == PAGE:
                    before = page[-1].id
                    continue
            break
    recs.sort(key=lambda r: r.id)
    done, cursor = [], after
    for rec in recs:
        if rec.status == AssetCheckExecutionRecordStatus.PLANNED:
            if rec.create_timestamp > stale:
                break
        elif rec.event is not None:
            done.append(rec)
        cursor = rec.id
    return done, cursor


def _load_cursor(raw: str | None) -> tuple[int | None, dict[str, str]]:
    """(high-water id, {``asset|check|partition``: fingerprint of its last alerted
    failure}); an old cursor is the id alone."""
    if not raw:
        return None, {}
    if raw.lstrip("-").isdigit():
        return int(raw), {}
    data = json.loads(raw)
    return data.get("id"), dict(data.get("failing") or {})


def _dump_cursor(after: int | None, failing: dict[str, str]) -> str:
    failing = dict(list(failing.items())[-MAX_REMEMBERED:])  # the oldest are forgotten
    return json.dumps({"id": after, "failing": failing}, separators=(",", ":"))


@dg.sensor(
    name="check_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=DEFAULT_STATUS,
    description="Posts failed gl_equals_subledger / postings_complete evaluations (entity, "
    "period, drift, link) to the alert webhook within 30 s, once per failure.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertWebhookResource):
    """A failing evaluation is alerted when its fingerprint (passed, severity, drift /
    incomplete documents) differs from the one remembered for its asset, check and partition:
    a new failure or a changed drift; the same failure re-evaluated by a later refresh is not
    sent again. A passing evaluation forgets its entry. At most ``MAX_MESSAGES`` messages a
    tick, the rest in one summary; no send starts after ``TICK_BUDGET_S`` (the rest next tick).
    A delivery that fails keeps the cursor before that evaluation, so it is sent next tick."""
    if not alerts.configured():
        return dg.SkipReason(NO_URL)
    start = time.monotonic()
    after, failing = _load_cursor(context.cursor)
    records, cursor = _check_records(context.instance, after)
    since, runs = time.time() - FIRST_LOOK_S, {}
    news = []  # (record id, key, fingerprint, message, (asset path, check, partition, severity))
    for rec in records:
        ev = rec.event.dagster_event.event_specific_data
        partition = ev.partition or rec.partition
        if partition is None and rec.run_id:
            if rec.run_id not in runs:
                run = context.instance.get_run_by_id(rec.run_id)
                runs[rec.run_id] = run.tags.get("dagster/partition") if run else None
            partition = runs[rec.run_id]
        key = payloads.check_key(list(ev.asset_key.path), ev.check_name, partition)
        metadata = _plain(ev.metadata)
        if ev.passed:
            failing.pop(key, None)
            news = [n for n in news if n[1] != key]  # passed since: no longer news
            continue
        if after is None and rec.create_timestamp < since:
            continue
        fp = payloads.check_fingerprint(False, ev.severity.value, metadata)
        known = next((n[2] for n in reversed(news) if n[1] == key), failing.get(key))
        if known == fp:
            continue
        news.append((rec.id, key, fp, payloads.check_failure_alert(
            list(ev.asset_key.path), ev.check_name, partition, ev.severity.value, metadata,
            alerts.ui_url, rec.run_id), (list(ev.asset_key.path), ev.check_name, partition,
                                          ev.severity.value)))  # fmt: skip

    def told(items):
        for _, key, fp, _, _ in items:
            failing.pop(key, None)
            failing[key] = fp  # the newest last: the oldest are forgotten first

    def stop(reason: str, upto: int):
        """The cursor before evaluation ``news[upto]``: it and the rest next tick."""
        moved = news[upto][0] - 1
        told(news[:upto])
        return dg.SensorResult(skip_reason=f"{reason}; the rest next tick",
                               cursor=_dump_cursor(moved, failing))  # fmt: skip

    single, rest = news[:MAX_MESSAGES], news[MAX_MESSAGES:]
    for i, (*_, message, _) in enumerate(single):
        if time.monotonic() - start > TICK_BUDGET_S:
            return stop(f"sent {i} alert(s) in {TICK_BUDGET_S:.0f} s", i)
        try:
            alerts.send(message)
        except AlertDeliveryError as e:
            return stop(str(e), i)
    if rest:
        try:
            alerts.send(payloads.more_failures_alert([n[4] for n in rest], alerts.ui_url))
        except AlertDeliveryError as e:
            return stop(str(e), len(single))
    told(news)
    cursor = _dump_cursor(cursor, failing)
    if not news:
        return dg.SensorResult(skip_reason="no new failed reconciliation check since the last "
                               "tick", cursor=cursor)  # fmt: skip
    context.log.info(f"alerted {len(news)} failed check evaluation(s) in "
                     f"{len(single) + bool(rest)} message(s)")  # fmt: skip
    return dg.SensorResult(cursor=cursor)


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
