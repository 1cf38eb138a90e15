"""Running the partitioned chain outside a sensor: what `make demo` and `billing-sync run` share.

A run is two stages over a list of legal entity x month partitions: the **ingest** stage
materializes the billing assets (every partitioned asset of the ``billing`` group) of each
ingest partition, then the **derived** stage materializes every other partitioned asset
(revenue, accounting lines, proposals, postings, reconciliation, ...) of each derived
partition, so that every period's schedule sees the documents of every period. Each stage is
one ranged run per entity and stretch of consecutive months (what a single-run backfill of
those partitions does in the daemon): revenue refreshes the entity's documents once and
writes every month; a lone month is a plain partition run. Both asset lists come from the
asset graph, never from a hand-written list, so an asset added to the code
location joins both commands without a change here.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from functools import cache

import dagster as dg
import pandas as pd
from dagster._core.execution import execute_in_process

from sync_assets.billing import GROUP as INGEST_GROUP
from sync_assets.definitions import ALL_ASSETS, LOCAL, defs
from sync_assets.partitions import RANGE_END, RANGE_START, entity_partitions, partition_key

Partition = tuple[str, str]  # (entity, "YYYY-MM-01")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@cache
def _partitioned_assets() -> tuple[tuple[str, bool], ...]:
    """(asset name, is ingest) for every partitioned asset, in dependency order."""
    graph = defs.resolve_asset_graph()
    out = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if node.partitions_def is not None:
            out.append((key.to_user_string(), node.group_name == INGEST_GROUP))
    return tuple(out)


def ingest_assets() -> list[str]:
    """The partitioned assets of the billing group: read and validate the source."""
    return [name for name, ingest in _partitioned_assets() if ingest]


def derived_assets() -> list[str]:
    """Every partitioned asset that is not an ingest asset."""
    return [name for name, ingest in _partitioned_assets() if not ingest]


def instance() -> dg.DagsterInstance:
    """The configured instance ($DAGSTER_HOME; .local/dagster_home when unset)."""
    if not os.getenv("DAGSTER_HOME"):
        home = LOCAL / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def materialize(instance, resources, selection, key=None, trigger: str = "demo", last=None):
    """One in-process run of ``selection``: one partition, a range of one entity's months
    (``key`` to ``last``, a ranged run like a single-run backfill), or unpartitioned assets."""
    tags = {"sync/trigger": trigger}
    if last is not None and str(last) != str(key):
        tags |= {RANGE_START: str(key), RANGE_END: str(last)}
        key = None
    with warnings.catch_warnings(), _outputs_not_kept():
        warnings.simplefilter("ignore")
        return dg.materialize(
            ALL_ASSETS,
            selection=selection,
            partition_key=key,
            instance=instance,
            resources=resources,
            raise_on_error=True,
            tags=tags,
            # progress is ours to print; the run's events are in the instance (make ui)
            run_config=QUIET,
        )


_CAPTURE_LOCK = threading.Lock()


@contextmanager
def _outputs_not_kept():
    """``dg.materialize`` keeps every step's output in memory for its result until the run
    ends (``execute_in_process`` passes ``output_capturing_enabled=True`` to
    ``core_execute_in_process``; dagster 1.13.27, pinned). The outputs are in the warehouse
    (the IO manager wrote them) and nothing here reads them from the result, so a ranged run
    would hold every month's frames of every asset at once for nothing: this turns the
    capture off for the calls inside it. ``tests/test_runner_memory.py`` fails if the
    hook point moves."""
    with _CAPTURE_LOCK:
        original = execute_in_process.core_execute_in_process

        def without_capture(*args, **kwargs):
            kwargs["output_capturing_enabled"] = False
            return original(*args, **kwargs)

        execute_in_process.core_execute_in_process = without_capture
        try:
            yield
        finally:
            execute_in_process.core_execute_in_process = original
            # what the run left in reference cycles (pooled connections among it) goes now,
            # while the databases are open, not at interpreter exit
            gc.collect()


def month_ranges(keys: Iterable[Partition]) -> list[tuple[str, str, str, int]]:
    """(entity, first month, last month, months) runs of consecutive months per entity."""
    out: list[list] = []
    for entity, period in sorted(set(keys)):
        p = pd.Timestamp(period)
        if out and out[-1][0] == entity and pd.Timestamp(out[-1][2]) + pd.DateOffset(months=1) == p:
            out[-1][2], out[-1][3] = period, out[-1][3] + 1
        else:
            out.append([entity, period, period, 1])
    return [tuple(r) for r in out]


def add_entities(instance, entities: Iterable[str]) -> list[str]:
    """Add legal entities the instance does not know yet as dynamic partitions."""
    known = set(instance.get_dynamic_partitions(entity_partitions.name))
    new = sorted({e for e in entities if e not in known})
    if new:
        instance.add_dynamic_partitions(entity_partitions.name, new)
    return new


def run_stages(
    instance,
    resources,
    ingest: list[Partition],
    derived: list[Partition],
    trigger: str = "demo",
    say: Callable[[str], None] = print,
) -> float:
    """Ingest stage over ``ingest``, then the derived stage over ``derived``; seconds taken."""
    t0 = time.perf_counter()
    stages = (("ingest", ingest_assets(), ingest), ("recognize+post", derived_assets(), derived))
    for stage, selection, keys in stages:
        runs = month_ranges(keys)
        for i, (entity, first, last, n) in enumerate(runs, start=1):
            t = time.perf_counter()
            materialize(instance, resources, selection, partition_key(entity, first), trigger,
                        last=partition_key(entity, last))  # fmt: skip
            span = f"{first[:7]}" if n == 1 else f"{first[:7]}..{last[:7]} ({n} months)"
            say(f"[{stage:>14} {i:>3}/{len(runs)}] {entity} {span} "
                f"{time.perf_counter() - t:5.2f}s")  # fmt: skip
    return time.perf_counter() - t0


def summary(wh, partitions: Iterable[Partition] | None = None) -> pd.DataFrame:
    """Billings, revenue, deferred and unbilled balances per entity, period and currency, with
    the journals and open exceptions of the partition; only ``partitions`` when given."""
    from sync_core.reports import period_summary

    out = period_summary(
        wh.read("revenue_schedules"), wh.read("erp_postings"), wh.read("exceptions")
    )
    if partitions is not None:
        wanted = {(e, p[:7]) for e, p in partitions}
        out = out[[k in wanted for k in zip(out["entity"], out["period"])]]
    return out.reset_index(drop=True)


def erp_line(erp, entities: Iterable[str] | None = None) -> str:
    """What reached the ERP: journals posted, corrections, reversals, open exceptions."""
    ledger, queue = erp.ledger().journals(), erp.queue().open()
    if entities is not None:
        keep = set(entities)
        ledger = ledger[ledger["entity_id"].isin(keep)] if len(ledger) else ledger
        queue = queue[queue["entity_id"].isin(keep)] if len(queue) else queue
    corrections = int(ledger["correction"].sum()) if len(ledger) else 0
    reversals = int(ledger["reverses"].notna().sum()) if len(ledger) else 0
    reasons = (
        ": " + ", ".join(f"{k} {v}" for k, v in queue["reason_code"].value_counts().items())
        if len(queue)
        else ""
    )
    return (
        f"ERP target {erp.target}: {len(ledger)} journals posted ({corrections} corrections, "
        f"{reversals} reversals); {len(queue)} open posting exceptions{reasons}"
    )


def print_summary(resources, partitions=None, entities=None, say=print) -> None:
    """The per-entity, per-period summary and what reached the ERP."""
    wh = resources["warehouse"].process_config_and_initialize().get()
    table = summary(wh, partitions)
    say(table.to_string(index=False) if len(table) else "(no revenue schedule rows)")
    say("\n" + erp_line(resources["erp"].process_config_and_initialize(), entities))
