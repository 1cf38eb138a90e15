"""`make demo`: generate the demo platform, materialize every asset for every legal entity over
twelve months on the local instance, and print a summary per entity and period.

Stage 1 ingests every partition; stage 2 recognizes revenue and builds postings, so every
period's schedule sees the documents of every period (a proration billed in May for April
service is in April's schedule). Both stages replace partitions, so a second run leaves the
warehouse identical.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import dagster as dg
import pandas as pd

from sync_assets.definitions import ALL_ASSETS, LOCAL, build_resources
from sync_assets.partitions import entity_partitions, partition_key

INGEST = [
    "customers", "subscription_contracts", "usage_events", "usage_daily", "invoices",
    "invoice_lines", "credit_notes", "credit_note_lines", "payments",
]  # fmt: skip
DERIVED = ["revenue_schedules", "revenue_rollforward", "deferred_revenue_waterfall", "erp_postings"]


def _instance() -> dg.DagsterInstance:
    if not os.getenv("DAGSTER_HOME"):
        home = LOCAL / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _ensure_source(folder: Path, subscriptions: int, seed: int, year: int) -> None:
    """(Re)generate the demo platform's file drop when its parameters changed."""
    from sync_core.demo.generator import generate

    manifest = folder / "manifest.json"
    wanted = {"subscriptions": subscriptions, "seed": seed, "year": year}
    if manifest.exists() and json.loads(manifest.read_text()) == wanted:
        return
    t = time.perf_counter()
    counts = generate(folder, subscriptions=subscriptions, seed=seed, year=year)
    manifest.write_text(json.dumps(wanted))
    rows = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"generated demo platform in {folder} ({time.perf_counter() - t:.1f}s): {rows}")


def _materialize(instance, resources, selection, key=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            ALL_ASSETS,
            selection=selection,
            partition_key=key,
            instance=instance,
            resources=resources,
            raise_on_error=True,
            tags={"sync/trigger": "demo"},
            # progress is ours to print; the run's events are in the instance (make ui)
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscriptions", type=int, default=int(os.getenv("SYNC_DEMO_SUBSCRIPTIONS", "300"))
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--year", type=int, default=2025)
    args = parser.parse_args(argv)

    os.environ.setdefault("SYNC_SOURCE_KIND", "demo")
    sandbox = None
    if os.getenv("SYNC_ERP_TARGET") == "rest" and not os.getenv("SYNC_ERP_URL"):
        # one setting: post to the sandbox ERP, served here for the demo's lifetime
        from sandboxes.erp_server import ErpSandbox

        sandbox = ErpSandbox(LOCAL / "erp_sandbox.sqlite", latency_ms=5, max_concurrency=5)
        os.environ["SYNC_ERP_URL"] = sandbox.url
        print(f"sandbox ERP: {sandbox.url} (journals in {LOCAL / 'erp_sandbox.sqlite'})")
    try:
        return _run_demo(args)
    finally:
        if sandbox is not None:
            print(f"sandbox ERP holds {len(sandbox.journals())} journals")
            sandbox.close()


def _run_demo(args) -> int:
    resources = build_resources()
    # resolve EnvVar-backed settings the way a run would
    source = resources["billing_source"].process_config_and_initialize()
    if source.kind == "demo":
        _ensure_source(Path(source.path), args.subscriptions, args.seed, args.year)
    instance = _instance()
    wh = resources["warehouse"].process_config_and_initialize().get()
    print(f"instance: {instance.root_directory} ({type(instance.run_storage).__name__})")
    print(f"warehouse: {wh.engine.url.render_as_string(hide_password=True)}")

    t0 = time.perf_counter()
    _materialize(instance, resources, ["legal_entities"])
    entities = sorted(wh.read("legal_entities")["entity_id"])
    known = set(instance.get_dynamic_partitions(entity_partitions.name))
    if new := [e for e in entities if e not in known]:
        instance.add_dynamic_partitions(entity_partitions.name, new)
    periods = [f"{args.year}-{m:02d}-01" for m in range(1, 13)]
    keys = [(e, p) for e in entities for p in periods]

    for stage, selection in (("ingest", INGEST), ("recognize+post", DERIVED)):
        for i, (entity, period) in enumerate(keys, start=1):
            t = time.perf_counter()
            _materialize(instance, resources, selection, partition_key(entity, period))
            print(
                f"[{stage:>14} {i:>2}/{len(keys)}] {entity} {period[:7]} "
                f"{time.perf_counter() - t:5.2f}s",
                flush=True,
            )
    print(
        f"materialized {len(keys)} partitions x {len(INGEST) + len(DERIVED)} assets "
        f"in {time.perf_counter() - t0:.1f}s\n"
    )
    print(summary(wh).to_string(index=False))
    erp = resources["erp"].process_config_and_initialize()
    ledger, queue = erp.ledger().journals(), erp.queue().open()
    print(
        f"\nERP target {erp.target}: {len(ledger)} journals posted "
        f"({int(ledger['correction'].sum()) if len(ledger) else 0} corrections, "
        f"{int(ledger['reverses'].notna().sum()) if len(ledger) else 0} reversals); "
        f"{len(queue)} open posting exceptions"
        + (
            ": " + ", ".join(f"{k} {v}" for k, v in queue["reason_code"].value_counts().items())
            if len(queue)
            else ""
        )
    )
    return 0


def summary(wh) -> pd.DataFrame:
    """Billings, revenue, deferred and unbilled balances per entity, period and currency, with
    the journals and open exceptions of the partition."""
    from sync_core.reports import period_summary

    return period_summary(
        wh.read("revenue_schedules"), wh.read("erp_postings"), wh.read("exceptions")
    )


if __name__ == "__main__":
    sys.exit(main())
