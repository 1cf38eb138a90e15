"""A temporary deployment for the Dagster benchmarks: demo source, SQLite warehouse, instance.

:func:`demo_source` writes the seeded demo platform's file drop into a folder;
:func:`deployment` points the settings (``SYNC_*``, ``DAGSTER_HOME``) of this process at a
fresh SQLite warehouse and a fresh SQLite Dagster instance (the project's
``dagster_sqlite.yaml``) under a folder, builds the resources the way ``make demo`` and
``billing-sync`` do (``sync_assets.definitions.build_resources``), materializes
``legal_entities`` and adds the entities as dynamic partitions. Runs go through
``sync_assets.runner`` in process, so the process's CPU time is the platform's. The settings
are restored on exit; nothing is written under the project's ``.local/``.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# settings of the user's shell that would point the runs elsewhere
_CLEARED = ("SYNC_LEDGER_URL", "SYNC_ERP_URL", "SYNC_ERP_TOKEN", "SYNC_ERP_CONFIG")


def demo_source(
    folder: Path, subscriptions: int, *, months: int = 12, entities: int | None = None
) -> dict[str, int]:
    """The demo platform (seed 7) as a file drop in ``folder``; row counts per object.

    ``months`` and ``entities`` need the generator's ``months=``/``entities=`` arguments;
    without them only the generator's own calendar (12 months, 3 entities) can be asked for.
    """
    from sync_core.demo.generator import generate

    params = inspect.signature(generate).parameters
    kwargs: dict = {"subscriptions": int(subscriptions), "seed": 7}
    for name, value, default in (("months", months, 12), ("entities", entities, None)):
        if name in params:
            if value is not None:
                kwargs[name] = value
        elif value not in (default, None):
            raise TypeError(
                f"sync_core.demo.generator.generate has no {name}= argument yet: "
                f"cannot generate {name}={value}"
            )
    return generate(folder, **kwargs)


def periods(months: int, first: str = "2025-01-01") -> list[str]:
    """``months`` month starts from ``first``, as ``YYYY-MM-01``."""
    y, m = int(first[:4]), int(first[5:7])
    out = []
    for i in range(months):
        q, r = divmod(m - 1 + i, 12)
        out.append(f"{y + q}-{r + 1:02d}-01")
    return out


@dataclass
class Deployment:
    tmp: Path
    env: dict[str, str]
    resources: dict
    instance: object  # dagster.DagsterInstance
    entities: list[str]

    @property
    def warehouse_db(self) -> Path:
        return self.tmp / "warehouse.sqlite"

    def warehouse(self):
        return self.resources["warehouse"].process_config_and_initialize().get()

    def erp(self):
        return self.resources["erp"].process_config_and_initialize()

    def run(self, ingest, derived, say=lambda _: None) -> float:
        """``sync_assets.runner.run_stages`` on this deployment; wall seconds."""
        from sync_assets import runner

        return runner.run_stages(self.instance, self.resources, ingest, derived, say=say)

    def copy_warehouse(self, dest: Path) -> Path:
        """A consistent copy of the warehouse (SQLite backup API: the WAL is included)."""
        src = sqlite3.connect(self.warehouse_db)
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return dest


def settings(tmp: Path, source: Path) -> dict[str, str]:
    """The environment of a deployment under ``tmp`` reading the file drop ``source``."""
    return {
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "SYNC_WAREHOUSE_URL": f"sqlite:///{tmp / 'warehouse.sqlite'}",
        "SYNC_SOURCE_KIND": "file_drop",
        "SYNC_SOURCE_PATH": str(source),
        "SYNC_ERP_TARGET": "sql_ledger",
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` (and clear the ERP overrides) in ``os.environ``; restore on exit."""
    saved = {k: os.environ.get(k) for k in (*values, *_CLEARED)}
    for k in _CLEARED:
        os.environ.pop(k, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def deployment(tmp: Path, source: Path) -> Iterator[Deployment]:
    """A fresh warehouse and instance under ``tmp`` (created) over the file drop ``source``,
    with ``legal_entities`` materialized and every entity added as a partition."""
    import dagster as dg

    from sync_assets import runner
    from sync_assets.definitions import build_resources

    tmp.mkdir(parents=True, exist_ok=True)
    env = settings(tmp, source)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    shutil.copy(ROOT / "dagster_sqlite.yaml", home / "dagster.yaml")
    with environment(env):
        resources = build_resources()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runner.materialize(instance, resources, ["legal_entities"], trigger="bench")
            wh = resources["warehouse"].process_config_and_initialize().get()
            entities = sorted(wh.read("legal_entities")["entity_id"])
            runner.add_entities(instance, entities)
            yield Deployment(tmp, env, resources, instance, entities)


def cpu_wall(fn) -> tuple[float, float, object]:
    """(process CPU seconds, wall seconds, result) of ``fn()``."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result
