"""Both instance files load, and their run queue dequeues an operator's run before queued
replays, never lets replays / micro-batches / backfills take every slot, and runs one replay
at a time. The dequeue decision is the daemon's own (QueuedRunCoordinatorDaemon)."""

import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from sensors.posting_replay import REPLAY_PRIORITY

ROOT = Path(__file__).resolve().parents[1]


def load(tmp_path: Path, name: str) -> dg.DagsterInstance:
    """The instance file as DAGSTER_HOME/dagster.yaml; PostgreSQL storage swapped for the
    SQLite default (the run queue settings are what is tested)."""
    cfg = yaml.safe_load((ROOT / name).read_text())
    cfg.pop("storage", None)
    home = tmp_path / name.replace(".", "_")
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(cfg))
    return dg.DagsterInstance.from_config(str(home))


ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("sync_assets"), "__repository__"),
    "billing_sync",
)


def queue(instance, tags: dict, status=DagsterRunStatus.QUEUED) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="billing_sync", run_id=run_id, status=status, tags=tags,
                                remote_job_origin=ORIGIN))  # fmt: skip
    return run_id


def to_dequeue(instance) -> list[str]:
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    return [r.run_id for r in
            daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)]  # fmt: skip


REPLAY = {"sync/trigger": "replay", "dagster/priority": REPLAY_PRIORITY}


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster_sqlite.yaml"])
def test_the_instance_file_loads_with_the_queued_run_coordinator(tmp_path, name):
    shutil.copy(ROOT / name, tmp_path / name)
    instance = load(tmp_path, name)
    try:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        q = instance.get_concurrency_config().run_queue_config
        limits = {(t["key"], t.get("value")): t["limit"] for t in q.tag_concurrency_limits}
        assert limits[("sync/trigger", "replay")] == 1
        # machine-launched runs together leave at least one slot to an operator's run
        machine = limits[("sync/trigger", None)] + limits[("dagster/backfill", None)]
        assert machine < q.max_concurrent_runs
    finally:
        instance.dispose()


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster_sqlite.yaml"])
def test_an_operator_run_goes_before_queued_replays_and_replays_go_one_at_a_time(tmp_path, name):
    instance = load(tmp_path, name)
    try:
        replays = [queue(instance, REPLAY) for _ in range(20)]  # queued first
        # a backfill launched with the recommended priority (README, "Run queue")
        [queue(instance, {"dagster/backfill": "b1", "dagster/priority": "-5"}) for _ in range(5)]
        operator = queue(instance, {})
        first = to_dequeue(instance)
        assert first[0] == operator  # priority 0 before the replays and backfills queued earlier
        assert sum(r in replays for r in first) == 1  # one replay at a time
    finally:
        instance.dispose()


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster_sqlite.yaml"])
def test_machine_runs_never_take_the_last_slot(tmp_path, name):
    instance = load(tmp_path, name)
    try:
        q = instance.get_concurrency_config().run_queue_config
        limits = {(t["key"], t.get("value")): t["limit"] for t in q.tag_concurrency_limits}
        # in progress: as many sensor / schedule runs and backfill runs as the limits allow
        queue(instance, REPLAY, DagsterRunStatus.STARTED)
        for _ in range(limits[("sync/trigger", None)] - 1):
            queue(instance, {"sync/trigger": "stripe_events"}, DagsterRunStatus.STARTED)
        for _ in range(limits[("dagster/backfill", None)]):
            queue(instance, {"dagster/backfill": "b1"}, DagsterRunStatus.STARTED)
        for _ in range(10):
            for tags in (REPLAY, {"sync/trigger": "stripe_events"}, {"sync/trigger": "nightly"},
                         {"dagster/backfill": "b1"}):  # fmt: skip
                queue(instance, tags)
        assert to_dequeue(instance) == []  # no machine run takes the free slot
        operator = queue(instance, {})
        assert to_dequeue(instance) == [operator]
    finally:
        instance.dispose()
