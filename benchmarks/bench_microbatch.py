"""Micro-batch latency: a Stripe event in the sandbox feed -> its journal in the ledger.

A real deployment in miniature: a temporary ``DAGSTER_HOME`` (SQLite instance, the project's
``dagster_sqlite.yaml``), ``dagster-daemon run -w workspace.yaml`` as a subprocess (it starts
the code location itself) with the environment pointing the billing source at a Stripe mirror
folder (``SYNC_SOURCE_KIND=stripe_mirror``, so the Stripe event sensor is RUNNING by default)
and the Stripe resource at a :class:`~sandboxes.billing_api.BillingSandbox`. After a warm-up
document, invoices are added to the sandbox feed one at a time (``invoice.finalized``, for a
customer with an ERP id) at seeded random gaps of 5-25 s, independent of processing (waiting
for each journal before adding the next would phase-lock arrivals to the sensor's ticks), and
each is timed until ``ledger_journals`` holds its ``invoice_finalized`` journal: the wait for
the next sensor tick (30 s interval) + landing + run launch + the run. The median run queue
and run times are printed too.

Rows: ``microbatch_latency_p50`` and ``microbatch_latency_p95`` in seconds, no peer; the
target (p95 <= 30 s) is a figure to compare by eye, not a ratio. ``main(events=0)`` (smoke)
starts nothing and returns no rows.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400


# ----------------------------------------------------------------------------- Stripe objects


def stripe_customer(cid: str, created: int, entity: str = "US01", erp_id: str | None = "C-1"):
    meta = {"legal_entity": entity, **({"erp_customer_id": erp_id} if erp_id else {})}
    return {
        "id": cid,
        "object": "customer",
        "address": {"country": "US"},
        "created": created,
        "currency": "usd",
        "email": f"{cid}@example.com",
        "metadata": meta,
        "name": f"Customer {cid}",
    }


def stripe_line(lid: str, invoice: str, amount: int, start: int, end: int) -> dict:
    return {
        "id": lid,
        "object": "line_item",
        "amount": amount,
        "currency": "usd",
        "invoice": invoice,
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": f"ii_{lid}",
                "proration": False,
                "subscription": None,
            },
        },
        "period": {"start": start, "end": end},
        "pricing": {"price_details": {"price": "price_1", "product": "prod_1"}},
        "quantity": 1,
        "taxes": [],
        "pretax_credit_amounts": [],
    }


def stripe_invoice(
    iid: str,
    customer: str,
    finalized: int,
    amount: int = 3100,
    *,
    entity: str = "US01",
    status: str = "open",
    lines: list[dict] | None = None,
    paid_at: int | None = None,
    voided_at: int | None = None,
) -> dict:
    """A finalized invoice (basil shape); by default one one-off line of 30 days' service."""
    lines = lines or [stripe_line(f"il_{iid}", iid, amount, finalized, finalized + 30 * DAY)]
    total = sum(ln["amount"] for ln in lines)
    return {
        "id": iid,
        "object": "invoice",
        "created": finalized,
        "currency": "usd",
        "customer": customer,
        "lines": {"object": "list", "data": lines, "has_more": False},
        "metadata": {"legal_entity": entity, "fx_rate": "1"},
        "number": f"INV-{iid}",
        "parent": None,
        "status": status,
        "status_transitions": {
            "finalized_at": finalized,
            "paid_at": paid_at,
            "voided_at": voided_at,
        },
        "subtotal": total,
        "total": total,
        "total_taxes": [],
    }


def stripe_credit_note(
    cid: str, invoice: dict, issued: int, amount: int, *, line: str | None = None
) -> dict:
    """A pre-payment credit note on ``invoice`` (on its first line unless ``line``)."""
    il = line or invoice["lines"]["data"][0]["id"]
    return {
        "id": cid,
        "object": "credit_note",
        "created": issued,
        "effective_at": issued,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "invoice": invoice["id"],
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": f"cnli_{cid}",
                    "object": "credit_note_line_item",
                    "amount": amount,
                    "invoice_line_item": il,
                    "type": "invoice_line_item",
                    "taxes": [],
                    "pretax_credit_amounts": [],
                }
            ],
            "has_more": False,
        },
        "metadata": {"legal_entity": invoice["metadata"]["legal_entity"]},
        "refunds": [],
        "status": "issued",
        "total": amount,
        "total_taxes": [],
        "type": "pre_payment",
        "voided_at": None,
    }


def legal_entities_csv(path: Path) -> Path:
    """The demo platform's legal entities (US01, UK01, DE01) as a seed file."""
    from sync_core.demo.generator import ENTITIES

    rows = ["entity_id,name,functional_currency,country,erp_subsidiary_id,recognition_method"]
    rows += [f"{e},{n},{c},{k},{s},day" for e, n, c, k, s in ENTITIES]
    path.write_text("\n".join(rows) + "\n")
    return path


# ----------------------------------------------------------------------------- the daemon


def _journal_posted(db: Path, document_id: str) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "select 1 from ledger_journals where document_id = ? "
                "and event = 'invoice_finalized' limit 1",
                (document_id,),
            ).fetchone()
        return row is not None
    except sqlite3.Error:  # not created yet, or busy
        return False


def _wait_posted(db: Path, document_id: str, timeout_s: float, daemon) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if _journal_posted(db, document_id):
            return time.monotonic() - t0
        _check(daemon)
        time.sleep(0.25)
    raise TimeoutError(f"no journal for {document_id} after {timeout_s:.0f}s")


def _check(daemon) -> None:
    if daemon.poll() is not None:
        raise RuntimeError(f"dagster-daemon exited with {daemon.returncode}")


def _feed(api, db: Path, daemon, events: int, gap_s, timeout_s: float, seed: int) -> list[float]:
    """Add ``events`` invoices at random gaps (arrival independent of processing, so the
    sensor's 30 s phase is sampled fairly) and time each one to its journal."""
    rng = random.Random(seed)
    pending: dict[str, float] = {}
    latencies: list[float] = []
    added, next_at = 0, time.monotonic()
    while added < events or pending:
        now = time.monotonic()
        if added < events and now >= next_at:
            iid = f"in_bench_{added:04d}"
            t = int(time.time())
            api.add_event("invoice.finalized", stripe_invoice(iid, "cus_bench", t), t)
            pending[iid] = time.monotonic()
            added += 1
            next_at = now + rng.uniform(*gap_s)
        for iid, t0 in list(pending.items()):
            if _journal_posted(db, iid):
                latencies.append(time.monotonic() - t0)
                del pending[iid]
                print(f"# {iid}: {latencies[-1]:.1f}s", flush=True)
            elif time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"no journal for {iid} after {timeout_s:.0f}s")
        _check(daemon)
        time.sleep(0.2)
    return latencies


def _run_timings(home: Path) -> dict[str, float]:
    """Median seconds from run creation (the sensor's request) to start, and start to end."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as inst:
        recs = inst.get_run_records(dg.RunsFilter(tags={"sync/trigger": "stripe_events"}))
    queued = [r.start_time - r.create_timestamp.timestamp() for r in recs if r.start_time]
    ran = [r.end_time - r.start_time for r in recs if r.start_time and r.end_time]
    return {
        "runs": len(recs),
        "create_to_start_s": round(statistics.median(queued), 2) if queued else None,
        "start_to_end_s": round(statistics.median(ran), 2) if ran else None,
    }


def _stop(proc: subprocess.Popen) -> None:
    """Stop the daemon and everything it started (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    try:  # children left behind in the group (code server, run workers)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _prepare(tmp: Path, sandbox_url: str) -> dict[str, str]:
    home, mirror = tmp / "dagster_home", tmp / "mirror"
    home.mkdir()
    mirror.mkdir()
    shutil.copy(ROOT / "dagster_sqlite.yaml", home / "dagster.yaml")
    seed = legal_entities_csv(tmp / "legal_entities.csv")
    shutil.copy(seed, mirror / "legal_entities.csv")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SYNC_SOURCE_KIND": "stripe_mirror",
        "SYNC_SOURCE_PATH": str(mirror),
        "SYNC_WAREHOUSE_URL": f"sqlite:///{tmp / 'warehouse.sqlite'}",
        "SYNC_STRIPE_URL": sandbox_url,
        "SYNC_STRIPE_LEGAL_ENTITIES": str(seed),
        "STRIPE_API_KEY": "sk_test_microbatch",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SYNC_LEDGER_URL", None)
    return env


def _legal_entities_in_warehouse(env: dict[str, str]) -> None:
    """The reference table every run needs, materialized once before the daemon starts."""
    import dagster as dg

    from resources import BillingSourceResource, WarehouseIOManager, WarehouseResource
    from resources.erp import ErpResource
    from sync_assets.definitions import ALL_ASSETS

    wh = WarehouseResource(url=env["SYNC_WAREHOUSE_URL"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            ALL_ASSETS,
            selection=["legal_entities"],
            resources={
                "warehouse": wh,
                "warehouse_io": WarehouseIOManager(warehouse=wh),
                "billing_source": BillingSourceResource(
                    kind="stripe_mirror", path=env["SYNC_SOURCE_PATH"]
                ),
                "erp": ErpResource(ledger_url=env["SYNC_WAREHOUSE_URL"]),
            },
            raise_on_error=True,
        )
    assert result.success


VARIANT = """
import dagster as dg
from sensors.stripe_events import stripe_event_sensor
from sync_assets import definitions as d

fast = dg.sensor(
    job=d.billing_sync_job,
    name=stripe_event_sensor.name,
    minimum_interval_seconds={interval},
    default_status=dg.DefaultSensorStatus.RUNNING,
)(stripe_event_sensor._raw_fn)
defs = dg.Definitions(
    assets=d.ALL_ASSETS,
    jobs=d.defs.jobs,
    sensors=[s for s in d.defs.sensors if s.name != fast.name] + [fast],
    schedules=d.defs.schedules,
    resources=d.build_resources(),
)
"""


def _workspace(tmp: Path, interval_s: int | None) -> str:
    """The project's workspace, or a variant whose Stripe sensor runs every ``interval_s``."""
    if interval_s is None:
        return str(ROOT / "workspace.yaml")
    (tmp / "bench_defs.py").write_text(VARIANT.format(interval=int(interval_s)))
    ws = tmp / "workspace.yaml"
    ws.write_text(
        "load_from:\n  - python_file:\n"
        f"      relative_path: {tmp / 'bench_defs.py'}\n"
        f"      working_directory: {ROOT}\n"
        "      location_name: billing_erp_sync\n"
    )
    return str(ws)


def main(
    events: int = 20,
    timeout_s: float = 240.0,
    gap_s: tuple[float, float] = (5.0, 25.0),
    seed: int = 1,
    interval_s: int | None = None,
) -> list[dict]:
    """``interval_s`` (not the default run) measures a variant with another sensor interval;
    its rows are named ``..._at_<n>s``."""
    if events <= 0:  # smoke: no daemon
        return []
    from sandboxes.billing_api import BillingSandbox

    with (
        tempfile.TemporaryDirectory(prefix="bench-microbatch-") as d,
        BillingSandbox(subscriptions=0) as api,
    ):
        tmp = Path(d)
        env = _prepare(tmp, api.url)
        _legal_entities_in_warehouse(env)
        db = tmp / "warehouse.sqlite"
        log = open(tmp / "daemon.log", "wb")  # noqa: SIM115 - closed in finally
        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-w",
                _workspace(tmp, interval_s),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            now = int(time.time())
            api.add_event("customer.created", stripe_customer("cus_bench", now), now)
            api.add_event("invoice.finalized", stripe_invoice("in_warmup", "cus_bench", now), now)
            warm = _wait_posted(db, "in_warmup", timeout_s * 2, daemon)
            print(f"# warm-up journal after {warm:.1f}s", flush=True)
            latencies = _feed(api, db, daemon, events, gap_s, timeout_s, seed)
        except BaseException:
            log.flush()
            tail = (tmp / "daemon.log").read_text(errors="replace")[-3000:]
            print(f"# daemon log tail:\n{tail}", file=sys.stderr)
            raise
        finally:
            _stop(daemon)
            log.close()
        print(f"# runs: {_run_timings(tmp / 'dagster_home')}", flush=True)
    q = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else None
    p50 = statistics.median(latencies)
    p95 = q[18] if q else latencies[0]
    suffix = "" if interval_s is None else f"_at_{int(interval_s)}s"
    return [
        {
            "name": f"microbatch_latency_p50{suffix}",
            "ours": round(p50, 2),
            "peer": None,
            "unit": "s",
            "ratio": None,
            "target": None,
        },
        {
            "name": f"microbatch_latency_p95{suffix}",
            "ours": round(p95, 2),
            "peer": None,
            "unit": "s",
            "ratio": None,
            "target": 30,
        },
    ]


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    interval = int(sys.argv[2]) if len(sys.argv) > 2 else None
    for row in main(n, interval_s=interval):
        print(row)
