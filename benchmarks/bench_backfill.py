"""A one-month backfill through the daemon: how many runs, and what else it touches (opt-in).

What a finance user does in the UI to redo one period: select every partitioned asset (the
``billing_sync`` job's assets) and backfill one partition, ``US01|2025-03-01``.

1. The demo platform (1,000 subscriptions, seed 7) is ingested into a temporary SQLite
   warehouse and a temporary SQLite Dagster instance (``benchmarks.deployment``, the project's
   ``dagster_sqlite.yaml``), every entity x month of 2025, and US01's year is closed once with
   ``run_stages`` (in process, not timed).
2. ``dagster-daemon run`` and ``dagster-webserver`` start on that instance
   (``workspace.yaml``, the project's own sensors and schedules included, each in its own
   process group). Once the code location has loaded, the GraphQL mutation
   ``launchPartitionBackfill`` asks for ``assetSelection`` = the job's assets and
   ``partitionNames = ["US01|2025-03-01"]``, as the UI does.
3. The benchmark waits for the backfill to finish (status no longer requested / canceling,
   no run of it still going), then counts the runs tagged ``dagster/backfill = <id>``, the
   partitions their materializations were for, and the ledger journals that appeared, by
   posting period. The daemon and the webserver are stopped in ``finally`` (their process
   groups: SIGTERM, then SIGKILL).

Rows, no peer (ceilings): ``backfill_one_month_runs`` (runs, target <= 2),
``backfill_one_month_outside_partitions`` (partitions other than the requested one that got
a materialization, target 0), ``backfill_one_month_outside_journal_periods`` (posting periods
other than March that got new ledger journals, target 0) and ``backfill_one_month_wall``
(seconds from the mutation to the end of its last run, informational). Whatever happens is
reported: a backfill that does not finish within ``timeout_s`` is canceled and its rows say
what it had done by then.

Opt-in (a daemon, a webserver and a few minutes): ``make bench BENCH_ARGS=--backfill`` or
``python -m benchmarks.run --only backfill``; alone: ``python -m benchmarks.bench_backfill``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

from benchmarks.deployment import demo_source, deployment, periods, settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENTITY, MONTH = "US01", "2025-03-01"
PARTITION = f"{ENTITY}|{MONTH}"

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
CANCEL = """
mutation Cancel($id: String!) {
  cancelPartitionBackfill(backfillId: $id) { __typename ... on Error { message } }
}
"""
LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace {
    locationEntries { name loadStatus locationOrLoadError { __typename
      ... on PythonError { message } } } } } }
"""


def job_assets() -> list[str]:
    """The ``billing_sync`` job's assets (every partitioned asset), in dependency order."""
    from sync_assets.runner import derived_assets, ingest_assets

    return ingest_assets() + derived_assets()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it; closed by the OS on exit
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen | None) -> None:
    """Stop a process and everything in its process group."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group: code servers, run workers
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    r = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    r.raise_for_status()
    body = r.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def _wait_loaded(url: str, procs: dict, timeout_s: float) -> None:
    """Until the webserver answers and the code location has loaded."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}")
        try:
            data = _graphql(url, LOCATIONS)["workspaceOrError"]
            entries = data.get("locationEntries") or []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [
                    e
                    for e in entries
                    if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
                ]
                if errors:
                    raise RuntimeError(f"code location failed to load: {errors}")
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"webserver not ready after {timeout_s:.0f}s")


def _runs(instance, backfill_id: str):
    import dagster as dg

    return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))


def _finished(instance, backfill_id: str) -> bool:
    from dagster._core.execution.backfill import BulkActionStatus

    backfill = instance.get_backfill(backfill_id)
    if backfill is None or backfill.status in (
        BulkActionStatus.REQUESTED,
        BulkActionStatus.CANCELING,
        getattr(BulkActionStatus, "FAILING", BulkActionStatus.REQUESTED),
    ):
        return False
    return all(r.is_finished for r in _runs(instance, backfill_id))


def materialized_partitions(instance, run_ids: list[str]) -> Counter:
    """Materializations per partition key in these runs."""
    import dagster as dg

    out: Counter = Counter()
    for run_id in run_ids:
        for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            out[event.dagster_event.partition or "(unpartitioned)"] += 1
    return out


def _ledger_keys(erp) -> set[str]:
    journals = erp.ledger().journals()
    return set(journals["external_id"]) if len(journals) else set()


def main(subscriptions: int = 1_000, timeout_s: float = 1800.0) -> list[dict]:
    import dagster as dg

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as d:
        tmp = Path(d)
        source = tmp / "source"
        demo_source(source, subscriptions)
        year = periods(12)
        with deployment(tmp / "platform", source) as dep:
            ingest = [(e, p) for e in dep.entities for p in year]
            took = dep.run(ingest, [(ENTITY, p) for p in year])
            print(
                f"# ingested {len(ingest)} partitions, closed {ENTITY} 2025: {took:.1f}s",
                flush=True,
            )
            erp = dep.erp()
            before = _ledger_keys(erp)
            env = {**os.environ, **dep.env, "PYTHONUNBUFFERED": "1"}
        for k in ("SYNC_LEDGER_URL", "SYNC_ERP_URL", "SYNC_ERP_TOKEN", "SYNC_ERP_CONFIG"):
            env.pop(k, None)
        home = settings(tmp / "platform", source)["DAGSTER_HOME"]
        port = _free_port()
        url = f"http://127.0.0.1:{port}/graphql"
        procs: dict[str, subprocess.Popen] = {}
        backfill_id, timed_out, wall = None, False, 0.0
        try:
            procs["dagster-daemon"] = _start(
                [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                env,
                tmp / "daemon.log",
            )
            procs["dagster-webserver"] = _start(
                [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                 "-p", str(port)], env, tmp / "webserver.log",
            )  # fmt: skip
            _wait_loaded(url, procs, 300)
            params = {
                "assetSelection": [{"path": [name]} for name in job_assets()],
                "partitionNames": [PARTITION],
                "title": "bench: one month",
            }
            t0 = time.monotonic()
            res = _graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
            if res["__typename"] != "LaunchBackfillSuccess":
                raise RuntimeError(f"launchPartitionBackfill: {res}")
            backfill_id = res["backfillId"]
            print(
                f"# backfill {backfill_id} of {len(params['assetSelection'])} assets x {PARTITION}",
                flush=True,
            )
            with dg.DagsterInstance.from_config(home) as inst:
                seen = -1
                while not _finished(inst, backfill_id):
                    for name, p in procs.items():
                        if p.poll() is not None:
                            raise RuntimeError(f"{name} exited with {p.returncode}")
                    n = len(_runs(inst, backfill_id))
                    if n != seen:
                        print(f"#   {time.monotonic() - t0:6.0f}s: {n} runs", flush=True)
                        seen = n
                    if time.monotonic() - t0 > timeout_s:
                        timed_out = True
                        _graphql(url, CANCEL, {"id": backfill_id})
                        break
                    time.sleep(2)
                wall = time.monotonic() - t0
        except BaseException:
            for name in procs:
                log = tmp / ("daemon.log" if name == "dagster-daemon" else "webserver.log")
                text = log.read_text(errors="replace") if log.exists() else ""
                print(f"# {name} log tail:\n{text[-2000:]}", file=sys.stderr)
            raise
        finally:
            for p in procs.values():
                _stop(p)

        with dg.DagsterInstance.from_config(home) as inst:
            runs = _runs(inst, backfill_id)
            status = inst.get_backfill(backfill_id).status.value
            by_status = Counter(r.status.value for r in runs)
            parts = materialized_partitions(inst, [r.run_id for r in runs])
            others = [r for r in inst.get_runs() if r.tags.get("dagster/backfill") != backfill_id]
        journals = erp.ledger().journals()  # the resolved resource: the same ledger
    new = journals[~journals["external_id"].isin(before)] if len(journals) else journals
    new_periods = Counter(str(p)[:7] for p in new["period"]) if len(new) else Counter()
    outside_parts = {k: v for k, v in parts.items() if k != PARTITION}
    outside_journals = {k: v for k, v in new_periods.items() if k != MONTH[:7]}
    other_triggers = Counter(r.tags.get("sync/trigger", r.job_name) for r in others)
    print(
        f"backfill {status}{' (STOPPED at the timeout: not finished)' if timed_out else ''} "
        f"after {wall:.0f}s: {len(runs)} runs ({dict(by_status)})"
    )
    print(f"partitions materialized: {len(parts)} ({sum(parts.values())} materializations); "
          f"outside {PARTITION}: {len(outside_parts)}"
          + (f", e.g. {sorted(outside_parts)[:6]}" if outside_parts else ""))  # fmt: skip
    print(
        f"new ledger journals: {len(new)} by posting period {dict(sorted(new_periods.items()))};"
        f" periods other than {MONTH[:7]}: {len(outside_journals)}"
    )
    print(f"other runs on the instance (prepare stage, sensors): {dict(other_triggers)}")
    return [
        {"name": "backfill_one_month_runs", "ours": len(runs), "peer": None, "unit": "runs",
         "ratio": None, "target": 2},
        {"name": "backfill_one_month_outside_partitions", "ours": len(outside_parts),
         "peer": None, "unit": "partitions", "ratio": None, "target": 0},
        {"name": "backfill_one_month_outside_journal_periods", "ours": len(outside_journals),
         "peer": None, "unit": "periods", "ratio": None, "target": 0},
        {"name": "backfill_one_month_wall", "ours": round(wall, 1), "peer": None, "unit": "s",
         "ratio": None, "target": None},
    ]  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subscriptions", type=int, default=1_000)
    p.add_argument("--timeout", type=float, default=1800.0)
    a = p.parse_args()
    for row in main(a.subscriptions, a.timeout):
        print(row)
