"""Alerts reach a (local) Slack-compatible webhook: a failed reconciliation check with entity,
period, check, drift and a link to the asset; a run that failed because the ERP refused the
login, with the auth scheme and the settings to check; an owner's exception backlog. No
secret (the webhook URL, ERP credentials) is ever in a payload."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.utils import make_new_run_id

from resources.alerts import AlertDeliveryError, AlertWebhookResource
from sandboxes.erp_server import ErpSandbox
from sensors.alerts import (
    check_failure_alert_sensor,
    exception_backlog_alert_sensor,
    run_failure_alert_sensor,
)
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions, partition_key
from sync_assets.runner import ALL_ASSETS
from sync_core.demo.generator import generate
from tests.helpers import QUIET, make_resources, materialize

MONTH = "2025-02-01"
CANARY = "canary-7f3c9a1e5b2d"  # in the webhook URL's path and in a secret setting
UI = "http://dagster.example:3000"


class Receiver:
    """A webhook on a free local port that keeps every JSON body it gets."""

    def __init__(self, status: int = 200):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(json.loads(raw))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/{CANARY}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch):
    receiver = Receiver()
    monkeypatch.setenv("SYNC_ALERT_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("SYNC_ERP_TOKEN_SECRET", CANARY + "-token-secret")
    yield receiver
    receiver.close()


def alerts_resource(receiver) -> AlertWebhookResource:
    return AlertWebhookResource(url=dg.EnvVar("SYNC_ALERT_WEBHOOK_URL"), ui_url=UI,
                                backlog_max_open=2, backlog_max_age_days=7)  # fmt: skip


def assert_no_secret(bodies):
    text = json.dumps(bodies)
    assert CANARY not in text and "/hook/" not in text, text  # the webhook URL, the secret


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    generate(folder, subscriptions=40, seed=11, year=2025, bad_rows=0)
    return folder


def ingest(instance, resources):
    assert materialize(instance, resources, ["legal_entities"]).success
    instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
    assert materialize(instance, resources, INGEST, partition_key("US01", MONTH)).success


def test_a_failed_reconciliation_check_reaches_the_webhook(demo_source, sqlite_url, hook):
    resources = make_resources(demo_source, sqlite_url)
    with dg.instance_for_test() as instance:
        ingest(instance, resources)
        assert materialize(instance, resources, DERIVED, partition_key("US01", MONTH)).success
        ctx = dg.build_sensor_context(
            instance=instance, resources={"alerts": alerts_resource(hook)}
        )
        clean = check_failure_alert_sensor(ctx)  # everything reconciled: nothing to say
        assert hook.bodies == [] and clean.skip_reason
        with sa.create_engine(sqlite_url).begin() as conn:  # the GL loses a revenue line
            conn.execute(sa.text(
                "delete from ledger_journal_lines where account = 'Revenue' and external_id in "
                "(select external_id from ledger_journals where event = 'revenue')"))  # fmt: skip
        key = partition_key("US01", MONTH)
        assert materialize(instance, resources, ["reconciliation", "reconciliation_items"], key)
        ctx = dg.build_sensor_context(instance=instance, cursor=clean.cursor,
                                      resources={"alerts": alerts_resource(hook)})  # fmt: skip
        result = check_failure_alert_sensor(ctx)
        ctx = dg.build_sensor_context(instance=instance, cursor=result.cursor,
                                      resources={"alerts": alerts_resource(hook)})  # fmt: skip
        assert check_failure_alert_sensor(ctx).skip_reason  # sent once
    (body,) = hook.bodies
    text = json.dumps(body)
    assert body["text"].startswith("Check failed: reconciliation gl_equals_subledger")
    for field in ("*entity*: US01", "*period*: 2025-02", "*check*: gl_equals_subledger",
                  "*severity*: ERROR", "Revenue -", f"<{UI}/assets/reconciliation|"):  # fmt: skip
        assert field in text, field
    assert {b["type"] for b in body["blocks"]} == {"section", "context"}
    assert_no_secret(hook.bodies)


def test_an_erp_refusing_the_login_fails_the_run_and_the_failure_is_alerted(
    demo_source, sqlite_url, tmp_path, hook
):
    with ErpSandbox(tmp_path / "erp.sqlite", filedrop=demo_source) as erp:
        c = erp.credentials
        resources = make_resources(
            demo_source, sqlite_url, target="rest", rest_base_url=erp.url, rest_auth="tba",
            netsuite_account=c.account, tba_consumer_key=c.consumer_key,
            tba_consumer_secret=c.consumer_secret, tba_token_id=c.token_id,
            tba_token_secret=dg.EnvVar("SYNC_ERP_TOKEN_SECRET"),  # the wrong one: the canary
        )  # fmt: skip
        with dg.instance_for_test() as instance:
            ingest(instance, resources)
            result = dg.materialize(ALL_ASSETS, selection=DERIVED,
                                    partition_key=partition_key("US01", MONTH),
                                    instance=instance, resources=resources,
                                    raise_on_error=False, run_config=QUIET)  # fmt: skip
            assert not result.success
            (failure,) = [e for e in result.all_events if e.is_step_failure]
            description = failure.step_failure_data.user_failure_data.description
            assert "refused the login (HTTP 401, invalid_login)" in description
            assert "SYNC_ERP_AUTH=tba" in description and "SYNC_ERP_TOKEN_SECRET" in description
            assert erp.journals() == []  # nothing posted
            held = resources["erp"].queue().open()  # what was attempted is recorded
            login = held[held["reason_code"] == "invalid_login"]
            assert len(login) == 3 and set(login["owner"]) == {"integration"}
            assert set(login["replay"]) == {"erp_config"}  # not retried on a timer
            run = instance.get_run_by_id(result.run_id)
            (event,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            ctx = dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert_sensor", dagster_event=event.dagster_event,
                dagster_instance=instance, dagster_run=run,
                resources={"alerts": alerts_resource(hook)},
            ).for_run_failure()  # fmt: skip
            run_failure_alert_sensor(ctx)
    (body,) = hook.bodies
    text = json.dumps(body)
    assert body["text"].startswith("Run failed: __ephemeral_asset_job__")
    assert "*trigger*: operator" in text
    assert "erp_postings: The ERP at" in text and "SYNC_ERP_AUTH=tba" in text
    assert f"{UI}/runs/{result.run_id}" in text and "*partition*: US01|2025-02-01" in text
    assert_no_secret(hook.bodies)
    assert c.consumer_secret not in text and c.token_secret not in text


def test_an_owner_backlog_is_told_once_and_delivery_failures_name_no_url(tmp_path, hook):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    resources = make_resources(tmp_path, url)
    queue = resources["erp"].queue()
    rows = pd.DataFrame([{
        "entity_id": "US01", "period": pd.Timestamp("2025-03-01", tz="UTC"),
        "journal_key": f"US01-INV-in_{i}", "document_id": f"in_{i}",
        "event": "invoice_finalized", "reason_code": "customer_erp_id", "owner": "master_data",
        "message": f"customer 'cus_{i}' of in_{i} has no ERP customer id"} for i in range(3)])  # fmt: skip
    with resources["erp"].engine().begin() as conn:
        queue.record(conn, "US01", "2025-03-01", rows, [], "r1")
    with dg.instance_for_test() as instance:
        res = {"erp": resources["erp"], "alerts": alerts_resource(hook)}
        first = exception_backlog_alert_sensor(dg.build_sensor_context(instance=instance,
                                                                       resources=res))  # fmt: skip
        again = exception_backlog_alert_sensor(dg.build_sensor_context(
            instance=instance, cursor=first.cursor, resources=res))  # fmt: skip
        assert again.skip_reason  # told already
        off = exception_backlog_alert_sensor(dg.build_sensor_context(
            instance=instance, resources={"erp": resources["erp"],
                                          "alerts": AlertWebhookResource()}))  # fmt: skip
        assert "SYNC_ALERT_WEBHOOK_URL is not set" in str(off.skip_message)
    (body,) = hook.bodies
    assert body["text"].startswith("Exception backlog for master_data: 3 open")
    assert "customer_erp_id: 3" in json.dumps(body)
    assert_no_secret(hook.bodies)
    down = Receiver(status=500)
    try:
        with pytest.raises(AlertDeliveryError) as err:
            AlertWebhookResource(url=down.url).send({"text": "x", "blocks": []})
    finally:
        down.close()
    assert "HTTP 500" in str(err.value) and CANARY not in str(err.value)


def evaluate(instance, partition: str, revenue_minor: int | None, check="gl_equals_subledger"):
    """A (runless) evaluation of a reconciliation check: failing with a Revenue drift of
    ``revenue_minor``, or passing (None)."""
    drift = {} if revenue_minor is None else {
        "drift_Revenue": dg.MetadataValue.float(revenue_minor / 100),
        "max_abs_drift_minor": dg.MetadataValue.int(abs(revenue_minor)),
        "accounts_with_drift": dg.MetadataValue.int(1),
        "drift_rows": dg.MetadataValue.json([{"account": "Revenue",
                                              "drift": str(revenue_minor)}]),
    }  # fmt: skip
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("reconciliation"), check_name=check,
        passed=revenue_minor is None, severity=dg.AssetCheckSeverity.ERROR,
        metadata=drift, partition=partition)  # fmt: skip
    event = DagsterEvent(DagsterEventType.ASSET_CHECK_EVALUATION.value, "reconcile_job",
                         event_specific_data=evaluation)  # fmt: skip
    instance.store_event(EventLogEntry(error_info=None, level="INFO", user_message="",
                                       run_id=make_new_run_id(), timestamp=time.time(),
                                       dagster_event=event))  # fmt: skip


def tick(instance, hook, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"alerts": alerts_resource(hook)})  # fmt: skip
    return check_failure_alert_sensor(ctx)


def test_a_failure_is_alerted_once_and_again_when_its_drift_changes(hook):
    key = partition_key("US01", MONTH)
    with dg.instance_for_test() as instance:
        first = tick(instance, hook)
        evaluate(instance, key, -12_345)
        second = tick(instance, hook, first.cursor)
        assert len(hook.bodies) == 1 and not second.skip_reason
        evaluate(instance, key, -12_345)  # a later refresh: the same failure
        third = tick(instance, hook, second.cursor)
        assert third.skip_reason and len(hook.bodies) == 1  # not sent again
        evaluate(instance, key, -20_000)  # the drift changed: news
        fourth = tick(instance, hook, third.cursor)
        assert len(hook.bodies) == 2 and "Revenue -200.00" in json.dumps(hook.bodies[1])
        evaluate(instance, key, None)  # fixed: forgotten
        fifth = tick(instance, hook, fourth.cursor)
        assert json.loads(fifth.cursor)["failing"] == {}
        evaluate(instance, key, -20_000)  # failing again: a new failure
        tick(instance, hook, fifth.cursor)
    assert len(hook.bodies) == 3
    assert "*entity*: US01" in json.dumps(hook.bodies[0])
    assert_no_secret(hook.bodies)


def test_a_backfill_of_many_failing_partitions_is_paged_and_capped(hook, monkeypatch):
    monkeypatch.setattr("sensors.alerts.PAGE", 7)  # several pages of history
    keys = [partition_key(f"E{i:02d}", MONTH) for i in range(25)]
    with dg.instance_for_test() as instance:
        start = tick(instance, hook)
        for i, key in enumerate(keys):
            evaluate(instance, key, -(i + 1) * 100)
        result = tick(instance, hook, start.cursor)
        assert len(hook.bodies) == 21  # 20 messages and one summary
        again = tick(instance, hook, result.cursor)
        assert again.skip_reason
        for i, key in enumerate(keys):  # a nightly refresh: every month unchanged but E00
            evaluate(instance, key, -(i + 1) * 100 if i else -999)
        tick(instance, hook, again.cursor)  # E00 is 4 pages back: still read
    singles, summary = hook.bodies[:20], hook.bodies[20]
    assert [b["text"].startswith("Check failed:") for b in singles] == [True] * 20
    assert {f"*entity*: E{i:02d}" in json.dumps(b) for i, b in enumerate(singles)} == {True}
    assert summary["text"].startswith("and 5 more failing checks: ")
    assert all(f"E{i:02d}|{MONTH}" in summary["text"] for i in range(20, 25))
    (changed,) = hook.bodies[21:]
    assert "*entity*: E00" in json.dumps(changed) and "Revenue -9.99" in json.dumps(changed)
    assert_no_secret(hook.bodies)
