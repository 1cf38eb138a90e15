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
from pathlib import Path

from sync_assets import runner
from sync_assets.definitions import LOCAL, build_resources
from sync_assets.runner import summary  # noqa: F401 - the demo's summary (tests, README)

INGEST = runner.ingest_assets()  # from the asset graph (sync_assets/runner.py)
DERIVED = runner.derived_assets()


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
    instance = runner.instance()
    wh = resources["warehouse"].process_config_and_initialize().get()
    print(f"instance: {instance.root_directory} ({type(instance.run_storage).__name__})")
    print(f"warehouse: {wh.engine.url.render_as_string(hide_password=True)}")

    runner.materialize(instance, resources, ["legal_entities"])
    entities = sorted(wh.read("legal_entities")["entity_id"])
    runner.add_entities(instance, entities)
    periods = [f"{args.year}-{m:02d}-01" for m in range(1, 13)]
    keys = [(e, p) for e in entities for p in periods]
    took = runner.run_stages(instance, resources, keys, keys, say=lambda m: print(m, flush=True))
    print(
        f"materialized {len(keys)} partitions x {len(INGEST) + len(DERIVED)} assets "
        f"in {took:.1f}s\n"
    )
    runner.print_summary(resources)
    return 0


if __name__ == "__main__":
    sys.exit(main())
