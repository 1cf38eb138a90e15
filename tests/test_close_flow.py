"""Period close and reopen as an operator flow: the ``period_close`` / ``period_reopen`` jobs,
the schedule and ``billing-sync close|reopen|periods|replay|export`` on a tiny file drop
(tests/fixtures/filedrop/stripe_examples: US01 and CA01, January and February 2025).

A close re-runs the month's derived assets, refuses while an exception is open or the GL
drifts from the subledger above materiality, and otherwise closes the revenue and the ERP
period and records who and when; a reopen needs a reason and reopens both.
"""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from schedules.nightly import nightly_sync_schedule, period_close_schedule
from sync_assets import cli
from sync_assets.close_jobs import close_run_config, period_close, period_reopen
from sync_core import period_close_flow as flow
from sync_core.erp.periods import period_status
from sync_core.warehouse import Warehouse
from tests.helpers import make_resources

CASE = Path(__file__).parent / "fixtures" / "filedrop" / "stripe_examples"
ROOT = Path(__file__).resolve().parents[1]
ENV = ("DAGSTER_HOME", "SYNC_WAREHOUSE_URL", "SYNC_SOURCE_KIND", "SYNC_SOURCE_PATH")


def _run_drop(folder: Path, source: Path) -> None:
    """``billing-sync run`` of ``source`` into ``folder`` (instance + SQLite warehouse)."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("SYNC_WAREHOUSE_URL", f"sqlite:///{folder / 'warehouse.sqlite'}")
        for name in ("SYNC_LEDGER_URL", "SYNC_ERP_TARGET", "SYNC_ERP_URL", "SYNC_ERP_CONFIG"):
            mp.delenv(name, raising=False)
        assert cli.main(["run", "--source", str(source), "--quiet"]) == 0


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """The drop run once; each test gets a copy (instance and warehouse)."""
    base = tmp_path_factory.mktemp("synced")
    _run_drop(base / "clean", CASE)
    held = base / "held_source"  # US01's customer without an ERP id: its journals are held
    shutil.copytree(CASE, held)
    customers = held / "customers.csv"
    customers.write_text(customers.read_text().replace(",C-1001,", ",,"))
    _run_drop(base / "held", held)
    return {"clean": base / "clean", "held": base / "held", "held_source": held}


def _configure(synced, kind, tmp_path, monkeypatch) -> dict:
    """A copy of a synced state as the configured instance and warehouse (what
    ``billing-sync`` and the jobs' resources use)."""
    folder = tmp_path / kind
    shutil.copytree(synced[kind], folder)
    url = f"sqlite:///{folder / 'warehouse.sqlite'}"
    source = synced["held_source"] if kind == "held" else CASE
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
    monkeypatch.setenv("SYNC_WAREHOUSE_URL", url)
    monkeypatch.setenv("SYNC_SOURCE_KIND", "file_drop")
    monkeypatch.setenv("SYNC_SOURCE_PATH", str(source))
    for name in ("SYNC_LEDGER_URL", "SYNC_ERP_TARGET", "SYNC_ERP_URL", "SYNC_ERP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return {"url": url, "resources": make_resources(source, url), "wh": Warehouse(url)}


@pytest.fixture
def env(synced, tmp_path, monkeypatch):
    return _configure(synced, "clean", tmp_path, monkeypatch)


@pytest.fixture
def held_env(synced, tmp_path, monkeypatch):
    """US01's January journals held (``customer_erp_id``), its exceptions open."""
    return _configure(synced, "held", tmp_path, monkeypatch)


def launch(job, env, config: dict):
    """The job as the Launchpad runs it: one op's config, on the configured instance."""
    op = "close_period" if job is period_close else "reopen_period"
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            run_config={"ops": {op: {"config": config}}},
            instance=instance,
            resources=env["resources"],
            raise_on_error=False,
        )


def failure(result) -> str:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.step_failure_data.error.message


def state(env, entity="US01", period="2025-01"):
    return flow.month_state(env["wh"], sa.create_engine(env["url"]), entity, period)


def test_a_clean_month_closes_revenue_then_erp_and_records_who_and_when(env):
    before = datetime.now(UTC) - timedelta(seconds=1)
    cfg = {"entity_id": "US01", "period": "2025-01", "closed_by": "alice"}
    result = launch(period_close, env, cfg)
    assert result.success, failure(result)
    assert env["wh"].closed_through()["US01"] == pd.Timestamp("2025-01-01", tz="UTC")
    assert period_status(sa.create_engine(env["url"]), "US01", "2025-01-01") == "closed"
    assert "CA01" not in env["wh"].closed_through()  # one entity only
    log = flow.close_log(env["wh"])
    assert log[["entity_id", "action", "by", "run_id", "erp_status"]].values.tolist() == [
        ["US01", "close", "alice", result.run_id, "closed"]
    ]
    assert pd.Timestamp(log["at"].iloc[0]).tz_localize(UTC) >= before
    (mat,) = result.asset_materializations_for_node("close_period")
    assert mat.asset_key == dg.AssetKey("period_close_log")
    assert mat.metadata["by"].value == "alice" and mat.metadata["period"].value == "2025-01"
    with dg.DagsterInstance.get() as instance:  # the month's derived run, made by the close
        runs = instance.get_runs(dg.RunsFilter(tags={"sync/trigger": "period_close"}))
        refresh = [r for r in runs if r.run_id != result.run_id]
        assert [r.tags.get("dagster/partition") for r in refresh] == ["US01|2025-01-01"]


def test_an_open_posting_exception_refuses_the_close_and_lists_it(held_env):
    env = held_env
    result = launch(period_close, env, {"entity_id": "US01", "period": "2025-01",
                                        "closed_by": "alice"})  # fmt: skip
    assert not result.success
    message = failure(result)
    assert "close of US01 2025-01 refused" in message
    assert "open posting exception US01-" in message and "(customer_erp_id, owner" in message
    assert state(env) == {"revenue_closed": False, "revenue_closed_through": None,
                          "erp_status": "open"}  # fmt: skip
    assert flow.close_log(env["wh"]).empty


def _delete_revenue_line(url: str, period: str) -> int:
    """Delete a Revenue line of the month from the SQL ledger behind the platform's back."""
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        row = conn.execute(sa.text(
            "select l.external_id, l.line_no, l.credit_functional from ledger_journal_lines l "
            "join ledger_journals j on j.external_id = l.external_id where j.entity_id = "
            "'US01' and j.period = :p and l.account = 'Revenue' and l.credit_functional > 0 "
            "order by l.credit_functional desc limit 1"), {"p": period}).one()  # fmt: skip
        conn.execute(sa.text("delete from ledger_journal_lines where external_id = :e and "
                             "line_no = :n"), {"e": row[0], "n": row[1]})  # fmt: skip
    eng.dispose()
    return int(row[2])


def test_drift_above_materiality_refuses_the_close_and_lists_the_account(env, capsys):
    credit = _delete_revenue_line(env["url"], "2025-01-01")
    assert credit > 100  # above the 1.00 USD materiality of config/erp.yaml
    result = launch(period_close, env, {"entity_id": "US01", "period": "2025-01",
                                        "closed_by": "alice"})  # fmt: skip
    assert not result.success
    message = failure(result)
    assert "reconciliation check gl_equals_subledger fails (drift above materiality" in message
    assert "Revenue functional USD drift" in message
    assert not state(env)["revenue_closed"] and state(env)["erp_status"] == "open"
    # the CLI refuses the same way, exit code 1 and the reasons on stderr
    assert cli.main(["close", "US01", "2025-01", "--by", "bob"]) == 1
    assert "gl_equals_subledger fails" in capsys.readouterr().err
    assert flow.close_log(env["wh"]).empty


def test_reopen_needs_a_reason_then_reopens_both_and_is_audited(env):
    cfg = {"entity_id": "US01", "period": "2025-01", "closed_by": "alice"}
    assert launch(period_close, env, cfg).success
    reopen = {"entity_id": "US01", "period": "2025-01", "reopened_by": "carol"}
    refused = launch(period_reopen, env, {**reopen, "reason": "  "})
    assert not refused.success and "reason is empty" in failure(refused)
    assert state(env)["revenue_closed"] and state(env)["erp_status"] == "closed"
    result = launch(period_reopen, env, {**reopen, "reason": "late credit note"})
    assert result.success, failure(result)
    assert state(env) == {"revenue_closed": False, "revenue_closed_through": "2024-12",
                          "erp_status": "open"}  # fmt: skip
    log = flow.close_log(env["wh"])
    assert log[["action", "by", "reason"]].values.tolist() == [
        ["close", "alice", None], ["reopen", "carol", "late credit note"]
    ]  # fmt: skip
    assert launch(period_reopen, env, {**reopen, "reason": "again"}).success is False


def test_a_half_done_close_is_completed_by_running_it_again(env, capsys):
    wh, ledger = env["wh"], sa.create_engine(env["url"])
    wh.close_period("US01", "2025-01-01", "alice")  # revenue closed, the ERP step never ran
    assert state(env)["erp_status"] == "open"
    # the next month cannot close over it
    assert cli.main(["close", "US01", "2025-02", "--by", "alice"]) == 1
    assert "2025-01: revenue is closed but its ERP period is still open" in capsys.readouterr().err
    assert cli.main(["close", "US01", "2025-01", "--by", "alice"]) == 0
    assert period_status(ledger, "US01", "2025-01-01") == "closed"
    assert cli.main(["close", "US01", "2025-01", "--by", "alice"]) == 1  # already closed


def test_a_bad_period_is_refused_by_name(env):
    result = launch(period_close, env, {"entity_id": "US01", "period": "2025-1",
                                        "closed_by": "alice"})  # fmt: skip
    assert not result.success
    assert "period must be a month as YYYY-MM, got '2025-1'" in failure(result)


def test_the_schedule_closes_the_month_just_ended_for_every_entity():
    assert period_close_schedule.job_name == "period_close"
    assert "Stopped by default" in period_close_schedule.description
    assert "Stopped by default" in nightly_sync_schedule.description
    tick = datetime(2025, 3, 1, 4, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("legal_entity", ["US01", "CA01"])
        # entered and exited: the context sets the instance's state storage for its duration
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as ctx:
            requests = period_close_schedule.evaluate_tick(ctx).run_requests
    assert [r.run_config for r in requests] == [
        close_run_config("CA01", "2025-02", "schedule"),
        close_run_config("US01", "2025-02", "schedule"),
    ]
    assert len({r.run_key for r in requests}) == 2
    for r in requests:  # the Launchpad's config, valid for the job
        dg.validate_run_config(period_close, r.run_config)


def test_cli_close_periods_replay_export_and_reopen(env, tmp_path, capsys):
    assert cli.main(["close", "US01", "2025-01", "--by", "dave"]) == 0
    assert "US01 2025-01 close by dave" in capsys.readouterr().out
    assert cli.main(["close", "US01", "2025-03", "--by", "dave"]) == 1  # February first
    assert "close 2025-02..2025-02 first" in capsys.readouterr().err
    assert cli.main(["periods"]) == 0
    out = capsys.readouterr().out
    assert "US01: revenue closed through 2025-01; ERP periods: 2025-01 closed" in out
    assert cli.main(["periods", "CA01", "2025-02", "locked"]) == 0
    assert period_status(sa.create_engine(env["url"]), "CA01", "2025-02-01") == "locked"
    assert cli.main(["replay", "US01", "2025-02"]) == 0
    assert "0 open posting exceptions replayed" in capsys.readouterr().out
    assert cli.main(["export", "close-log", "--out", str(tmp_path / "log.csv")]) == 0
    assert pd.read_csv(tmp_path / "log.csv")["by"].tolist() == ["dave"]
    assert cli.main(["export", "ledger", "--entity", "US01", "--out", str(tmp_path / "l.csv")]) == 0
    ledger = pd.read_csv(tmp_path / "l.csv")
    assert len(ledger) and set(ledger["entity_id"]) == {"US01"} and "account" in ledger
    assert cli.main(["reopen", "US01", "2025-01", "--by", "erin", "--reason", ""]) == 1
    assert "reason is empty" in capsys.readouterr().err
    assert cli.main(["reopen", "US01", "2025-01", "--by", "erin", "--reason", "audit"]) == 0
    assert state(env)["erp_status"] == "open" and not state(env)["revenue_closed"]
    assert flow.close_log(env["wh"])["action"].tolist() == ["close", "reopen"]


def test_cli_replay_retries_the_months_open_exceptions(held_env, capsys):
    assert cli.main(["replay", "US01", "2025-01"]) == 0
    out = capsys.readouterr().out
    assert "open posting exceptions replayed, 0 posted," in out and "still open" in out
    assert not out.startswith("US01 2025-01: 0 ")


def test_the_module_commands_run_as_the_readme_writes_them(tmp_path):
    env = {**os.environ, "SYNC_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'w.sqlite'}"}
    env.pop("SYNC_LEDGER_URL", None)
    for argv in (["sync_core.erp.periods", "US01", "2025-03", "closed"],
                 ["sync_core.warehouse.period_close", "US01", "2025-02", "--by", "ops"]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
    url = env["SYNC_WAREHOUSE_URL"]
    assert period_status(sa.create_engine(url), "US01", "2025-03-01") == "closed"
    assert Warehouse(url).closed_through()["US01"] == pd.Timestamp("2025-02-01", tz="UTC")
