"""The demo at scale, as a user runs it: wall seconds and peak memory (opt-in: long).

``python -m sync_assets.demo_run --subscriptions 100000 --entities 10 --months 24
--no-late-changes`` in a subprocess, with every piece of state in a temporary folder through
the settings (``DAGSTER_HOME`` with the project's ``dagster_sqlite.yaml``,
``SYNC_WAREHOUSE_URL``, ``SYNC_SOURCE_KIND=demo`` and ``SYNC_SOURCE_PATH``: the demo
generates its platform there and the ledger lives in the warehouse), so nothing is written
under the project's ``.local/``. The child's wall time is measured from the parent, its peak
resident set from ``os.wait4`` (``ru_maxrss`` of that child alone, not of every child this
process ever had).

Rows, no peer (ceilings): ``demo_100k_wall`` (s, target 600) and ``demo_100k_peak_rss``
(GiB, target 2.0). A demo that fails is an error with the tail of its output; one that runs
past ``timeout_s`` is stopped (its process group) and reported with the time it had run,
a lower bound, and says so.

Opt-in: ``make bench BENCH_ARGS=--demo-100k`` (with the others) or
``python -m benchmarks.run --only demo_100k``; alone:
``python -m benchmarks.bench_demo_100k [--subscriptions N --entities E --months M]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(argv: list[str], env: dict[str, str], log: Path, timeout_s: float) -> dict:
    """Run ``argv`` in its own process group; wall seconds, peak RSS (bytes), exit code and
    whether it timed out. Output goes to ``log``."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            stop()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    try:  # anything the child left in its group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return {
        "wall_s": wall,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "returncode": proc.returncode,
        "timed_out": timed_out.is_set(),
    }


def demo_env(tmp: Path) -> dict[str, str]:
    home = tmp / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster_sqlite.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SYNC_WAREHOUSE_URL": f"sqlite:///{tmp / 'warehouse.sqlite'}",
        "SYNC_SOURCE_KIND": "demo",
        "SYNC_SOURCE_PATH": str(tmp / "demo_source"),
        "PYTHONUNBUFFERED": "1",
    }
    for k in ("SYNC_LEDGER_URL", "SYNC_ERP_TARGET", "SYNC_ERP_URL", "SYNC_ERP_CONFIG"):
        env.pop(k, None)
    return env


def main(
    subscriptions: int = 100_000, entities: int = 10, months: int = 24, timeout_s: float = 7200
) -> list[dict]:
    argv = [sys.executable, "-m", "sync_assets.demo_run", "--subscriptions", str(subscriptions),
            "--entities", str(entities), "--months", str(months), "--no-late-changes"]  # fmt: skip
    print(f"# {' '.join(argv[1:])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as d:
        tmp = Path(d)
        log = tmp / "demo.log"
        m = measure(argv, demo_env(tmp), log, timeout_s)
        tail = log.read_text(errors="replace").splitlines()[-12:]
    print("\n".join(f"#   {line}" for line in tail))
    if m["returncode"] != 0 and not m["timed_out"]:
        raise RuntimeError(f"demo_run exited with {m['returncode']}:\n" + "\n".join(tail))
    gib = m["peak_rss_bytes"] / 2**30
    state = (
        f"STOPPED after {timeout_s:.0f}s (not finished: the wall time is a lower bound)"
        if m["timed_out"]
        else "finished"
    )
    print(f"demo {state}: wall {m['wall_s']:.1f} s (target 600), peak RSS {gib:.2f} GiB (2.0)")
    return [
        {
            "name": "demo_100k_wall",
            "ours": round(m["wall_s"], 1),
            "peer": None,
            "unit": "s",
            "ratio": None,
            "target": 600,
        },
        {
            "name": "demo_100k_peak_rss",
            "ours": round(gib, 3),
            "peer": None,
            "unit": "GiB",
            "ratio": None,
            "target": 2.0,
        },
    ]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subscriptions", type=int, default=100_000)
    p.add_argument("--entities", type=int, default=10)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--timeout", type=float, default=7200)
    a = p.parse_args()
    for row in main(a.subscriptions, a.entities, a.months, a.timeout):
        print(row)
