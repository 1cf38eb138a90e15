"""`make demo`: generate the demo platform, materialize every asset for every legal entity over
its months on the local instance, and print a summary per entity and period; then deliver
late changes and run again what they touch.

``--entities N`` (1 to 20, default 3: US01, UK01, DE01) and ``--months N`` (default 12: the
calendar year ``--year``) size the platform (``SYNC_DEMO_ENTITIES``, ``SYNC_DEMO_MONTHS``,
``SYNC_DEMO_SUBSCRIPTIONS`` set the defaults); the partitions run are every entity x month.
The months must fit the monthly partitions: from ``FIRST_PERIOD`` to the current month.

Stage 1 ingests every partition; stage 2 recognizes revenue and builds postings, so every
period's schedule sees the documents of every period (a proration billed in May for April
service is in April's schedule). Both stages replace partitions.

The second pass (sync_core/demo/late_changes.py) delivers, once per generated platform, a
voided invoice that was posted, a refund without a credit note, a credit note issued in
February after US01's revenue and ERP periods were closed through February, and the ERP id of
a customer whose journals were held; it re-runs only the partitions that delivery touches
(``billing-sync``'s partition logic) and prints the reversals, corrections and released holds
it produced, the open exceptions and the reconciliation drift. A second `make demo` finds the
delivery made, posts nothing new and leaves the warehouse identical. The late changes need
the first year of history (``--months`` 12 or more); with fewer months they are skipped.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from sync_assets import cli, runner
from sync_assets.definitions import LOCAL, SETTINGS, build_resources
from sync_assets.partitions import FIRST_PERIOD
from sync_assets.runner import summary  # noqa: F401 - the demo's summary (tests, README)
from sync_core.demo import late_changes
from sync_core.demo.entities import DEFAULT_ENTITIES, MAX_ENTITIES
from sync_core.erp.periods import set_period_status
from sync_core.money import format_money

INGEST = runner.ingest_assets()  # from the asset graph (sync_assets/runner.py)
DERIVED = runner.derived_assets()
LATE_CHANGES_MONTHS = 12  # the late changes pick from, and close, the first year
# a manifest written before --months and --entities existed is the default platform
_MANIFEST_DEFAULTS = {"months": 12, "entities": DEFAULT_ENTITIES}


def periods(year: int, months: int) -> list[str]:
    """The ``YYYY-MM-01`` accounting months of the demo: ``months`` from January of ``year``."""
    return [f"{m:%Y-%m-%d}" for m in pd.date_range(f"{year}-01-01", periods=months, freq="MS")]


def check_range(year: int, months: int, entities: int, now: pd.Timestamp | None = None) -> None:
    """Fail early (ValueError) when the demo's months or entities cannot be partitioned."""
    if not 1 <= entities <= MAX_ENTITIES:
        raise ValueError(f"--entities must be between 1 and {MAX_ENTITIES}, got {entities}")
    if months < 1:
        raise ValueError(f"--months must be at least 1, got {months}")
    first = pd.Timestamp(f"{year}-01-01")
    if first < pd.Timestamp(FIRST_PERIOD):
        raise ValueError(
            f"--year {year} starts before the first monthly partition ({FIRST_PERIOD[:7]})"
        )
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    current = pd.Timestamp(year=now.year, month=now.month, day=1)
    last = first + pd.DateOffset(months=months - 1)
    if last > current:
        fit = (current.year - first.year) * 12 + current.month - first.month + 1
        raise ValueError(
            f"--months {months} from {first:%Y-%m} ends in {last:%Y-%m}, after the current "
            f"month {current:%Y-%m} where the monthly partitions end: at most {fit} months"
        )


def _ensure_source(
    folder: Path, subscriptions: int, seed: int, year: int, months: int, entities: int
) -> None:
    """(Re)generate the demo platform's file drop when its parameters changed."""
    from sync_core.demo.generator import generate

    manifest = folder / "manifest.json"
    wanted = {"subscriptions": subscriptions, "seed": seed, "year": year, "months": months,
              "entities": entities}  # fmt: skip
    if manifest.exists() and _MANIFEST_DEFAULTS | json.loads(manifest.read_text()) == wanted:
        return
    late_changes.remove(folder)  # a new platform has had no late delivery yet
    t = time.perf_counter()
    counts = generate(folder, subscriptions, seed, year, months, entities)
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
    parser.add_argument(
        "--months",
        type=int,
        default=int(os.getenv("SYNC_DEMO_MONTHS", "12")),
        help="accounting months of history from January of --year (default 12)",
    )
    parser.add_argument(
        "--entities",
        type=int,
        default=int(os.getenv("SYNC_DEMO_ENTITIES", str(DEFAULT_ENTITIES))),
        help=f"legal entities of the demo platform, 1 to {MAX_ENTITIES} (default 3)",
    )
    parser.add_argument(
        "--entity", action="append", help="only these legal entities (repeatable; default: all)"
    )
    parser.add_argument(
        "--no-late-changes", action="store_true", help="skip the second pass (late changes)"
    )
    args = parser.parse_args(argv)
    try:
        check_range(args.year, args.months, args.entities)
    except ValueError as exc:
        parser.error(str(exc))

    os.environ.setdefault("SYNC_SOURCE_KIND", "demo")
    sandbox = None
    if os.getenv("SYNC_ERP_TARGET") == "rest" and not os.getenv("SYNC_ERP_URL"):
        sandbox = _start_sandbox_erp()
    try:
        return _run_demo(args)
    finally:
        if sandbox is not None:
            print(f"sandbox ERP holds {len(sandbox.journals())} journals")
            sandbox.close()


def _start_sandbox_erp():
    """One setting (``SYNC_ERP_TARGET=rest``): the sandbox NetSuite ERP, served here for the
    demo's lifetime, with throw-away OAuth 2.0 client credentials (generated in memory, handed
    to the ERP resource through its environment variables for this process only) and the demo
    file drop's subsidiaries and customers registered as its master data (re-read when the
    drop changes, so a customer whose ERP id arrives late is known before its journals)."""
    from sandboxes.erp_server import ErpSandbox

    folder = os.getenv("SYNC_SOURCE_PATH") or SETTINGS["SYNC_SOURCE_PATH"]
    sandbox = ErpSandbox(LOCAL / "erp_sandbox.sqlite", latency_ms=5, max_concurrency=5,
                         filedrop=folder)  # fmt: skip
    c = sandbox.credentials
    os.environ.update({
        "SYNC_ERP_URL": sandbox.url, "SYNC_ERP_AUTH": "oauth2",
        "SYNC_NETSUITE_ACCOUNT": c.account, "SYNC_ERP_CLIENT_ID": c.client_id,
        "SYNC_ERP_CERTIFICATE_ID": c.certificate_id, "SYNC_ERP_PRIVATE_KEY": c.private_key_pem,
    })  # fmt: skip
    print(f"sandbox ERP: {sandbox.url} (account {c.account}, OAuth 2.0; journals in "
          f"{LOCAL / 'erp_sandbox.sqlite'})")  # fmt: skip
    return sandbox


def _run_demo(args) -> int:
    resources = build_resources()
    # resolve EnvVar-backed settings the way a run would
    source = resources["billing_source"].process_config_and_initialize()
    if source.kind == "demo":
        _ensure_source(
            Path(source.path), args.subscriptions, args.seed, args.year, args.months,
            args.entities,
        )  # fmt: skip
    instance = runner.instance()
    wh = resources["warehouse"].process_config_and_initialize().get()
    print(f"instance: {instance.root_directory} ({type(instance.run_storage).__name__})")
    print(f"warehouse: {wh.engine.url.render_as_string(hide_password=True)}")

    runner.materialize(instance, resources, ["legal_entities"])
    entities = sorted(wh.read("legal_entities")["entity_id"])
    entities = [e for e in entities if not args.entity or e in args.entity]
    runner.add_entities(instance, entities)
    keys = [(e, p) for e in entities for p in periods(args.year, args.months)]
    took = runner.run_stages(instance, resources, keys, keys, say=lambda m: print(m, flush=True))
    print(
        f"materialized {len(keys)} partitions x {len(INGEST) + len(DERIVED)} assets "
        f"in {took:.1f}s\n"
    )
    runner.print_summary(resources, entities=entities)
    if source.kind == "demo" and not args.no_late_changes:
        if args.months < LATE_CHANGES_MONTHS:
            print(f"late changes skipped: they need {LATE_CHANGES_MONTHS} months of history")
        else:
            _second_pass(args, resources, instance, Path(source.path), entities)
    return 0


def _second_pass(args, resources, instance, folder: Path, entities: list[str]) -> None:
    """Deliver the late changes (once), close the early months, re-run what they touch."""
    wh = resources["warehouse"].process_config_and_initialize().get()
    erp = resources["erp"].process_config_and_initialize()
    picks = late_changes.delivered(folder)
    fresh = picks is None
    if fresh:
        entity = "US01" if "US01" in entities else entities[0]
        picks = late_changes.deliver_picks(folder, cli.read_drop(folder), args.year, entity)
    entity, close = picks["entity"], picks["close_through"]
    wh.close_period(entity, close, "demo")
    for month in pd.date_range(f"{args.year}-01-01", close, freq="MS"):
        set_period_status(erp.engine(), entity, month, "closed")
    print(
        f"\nlate changes{'' if fresh else ' (already delivered)'}: {entity} revenue and ERP "
        f"periods closed through {close[:7]}; voided {picks['voided_invoice']}, refunded "
        f"{picks['refunded_invoice']} ({picks['refund_id']}), late credit note "
        f"{picks['credit_note']} on {picks['credited_invoice']}, ERP id "
        f"{picks['erp_customer_id']} for {picks['released_customer']}"
    )
    with tempfile.TemporaryDirectory() as tmp:  # the delivery alone, read as a file drop
        for path in late_changes.delivery_files(folder) + [folder / "legal_entities.csv"]:
            shutil.copy(path, tmp)
        delivery = cli.read_drop(tmp)
    last = periods(args.year, args.months)[-1][:7]
    parts = cli.drop_partitions(delivery, cli.read_drop(folder), start=f"{args.year}-01", end=last)
    ingest = [p for p in parts.ingest if p[0] in entities]
    derived = [p for p in parts.derived if p[0] in entities]
    before, started = erp.ledger().journals(), pd.Timestamp.now(tz="UTC")
    took = runner.run_stages(
        instance, resources, ingest, derived, say=lambda m: print(m, flush=True)
    )
    print(
        f"second pass: {len(ingest)} ingest and {len(derived)} derived partitions in {took:.1f}s\n"
    )
    runner.print_summary(resources, derived, entities)
    print(second_pass_line(wh, erp, before, started))


def second_pass_line(wh, erp, before: pd.DataFrame, started: pd.Timestamp) -> str:
    """Reversals, corrections and released holds of the second pass, open exceptions, drift."""
    ledger = erp.ledger().journals()
    new = ledger[~ledger["external_id"].isin(before["external_id"])] if len(before) else ledger
    reversals = int(new["reverses"].notna().sum()) if len(new) else 0
    corrections = int(new["correction"].sum()) if len(new) else 0
    sched = wh.read("revenue_schedules")
    schedule_corrections = int(sched["correction"].sum()) if len(sched) else 0
    queue = erp.queue().all()
    resolved_at = pd.to_datetime(queue["resolved_at"], utc=True) if len(queue) else None
    released = (
        int(((queue["status"] == "resolved") & (resolved_at >= started)).sum()) if len(queue) else 0
    )
    still_open = int((queue["status"] == "open").sum()) if len(queue) else 0
    return (
        f"second pass: {len(new)} journals posted ({reversals} reversals, {corrections} "
        f"corrections), {released} held journals released; revenue corrections in the schedule: "
        f"{schedule_corrections} rows; open posting exceptions: {still_open}; {drift_text(wh)}"
    )


def drift_text(wh) -> str:
    """Unexplained drift from the ``reconciliation`` table, when it exists."""
    if "reconciliation" not in sa.inspect(wh.engine).get_table_names():
        return "drift: no reconciliation table yet"
    rec = wh.read("reconciliation")
    if not len(rec) or "drift" not in rec:
        return "drift: reconciliation is empty"
    off = rec[rec["drift"] != 0]
    if not len(off):
        return f"unexplained drift: 0 in {len(rec)} reconciliation checks"
    per = off.groupby("currency")["drift"].apply(lambda s: int(s.abs().sum()))
    money = ", ".join(format_money(v, c) for c, v in per.items())
    return f"unexplained drift: {money} in {len(off)} of {len(rec)} reconciliation checks"


if __name__ == "__main__":
    sys.exit(main())
