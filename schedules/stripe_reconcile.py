"""The nightly Stripe reconcile: re-pull from the list endpoints, land, re-run what changed.

The event sensor (``sensors/stripe_events.py``) keeps the mirror current, but events alone
cannot be the system of record:

- Stripe keeps events for 30 days only: a sensor stopped (or failing) for longer, or a new
  deployment, has no events to read for what happened before.
- Events can be missed: a delivery that never came (webhooks retried then given up, the
  "200 OK but never processed" case), an event listed later than the sensor's 5-minute
  overlap window, an event filtered out by a type the sensor did not know.
- Some objects' events were pruned, or never existed for the change (an object edited in
  the dashboard or by a migration without an event of a type we read).

So every night at 03:00 UTC (after the 02:00 nightly sync) this schedule re-pulls the
current state of everything created since the last full sync minus one day from the list
endpoints: customers, subscriptions (with all items), invoices with all their lines, credit
notes with all their lines, invoice payments, charges and refunds. Payment intents are not
listed: a PaymentIntent moves money only through a charge, and every charge names its
``payment_intent``, so the charges and invoice payments already give each settlement its
canonical id (``sync_core.stripe.payments``); the mirror's payments link what the window
misses (a refund of an older payment). It lands them as one batch
(the list state is the truth as of the pull, so the batch is ordered by the pull's start)
and asks for one ``billing_sync`` run per affected partition; the run key includes the tick,
so a re-evaluated tick launches nothing twice. The time of the last full sync is kept in
``_reconcile_state.json`` in the mirror; with no state the pull is full (no ``created``
filter): that is the initial load.

Limits: Stripe lists filter on ``created`` only, so a change to an object created before the
window (an old invoice voided today) is seen by the event sensor, not here; a periodic
unfiltered pull (``reconcile(stripe, tick, full=True)``, e.g. weekly, or out of band for a
large account because a schedule evaluation times out after 60 s) covers that.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from resources.stripe import StripeResource
from sensors.stripe_events import mirror_context
from sync_assets.jobs import billing_sync_job
from sync_assets.partitions import FIRST_PERIOD, entity_partitions, partition_key
from sync_core.stripe import landing
from sync_core.stripe.normalize import normalize_all

STATE_FILE = "_reconcile_state.json"
LOOKBACK_S = 86_400
STRIPE_SOURCE = os.getenv("SYNC_SOURCE_KIND") == "stripe_mirror"


def read_state(folder: Path) -> dict:
    path = folder / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(folder: Path, state: dict) -> None:
    path = folder / STATE_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    os.replace(tmp, path)


@dataclass
class Reconciled:
    batch_id: str
    since: int | None
    landed: dict[str, int]
    partitions: list[tuple[str, str]]


def reconcile(
    stripe: StripeResource, tick: str, *, full: bool = False, now: float | None = None
) -> Reconciled:
    """Pull, normalize and land one reconcile batch; returns what it landed and touched."""
    started = int(time.time() if now is None else now)
    folder = stripe.mirror()
    last = read_state(folder).get("last_full_sync")
    since = None if full or last is None else int(last) - LOOKBACK_S
    with stripe.client() as c:
        pulled = {
            "customers": list(c.customers(since)),
            "subscriptions": list(c.subscriptions(since)),
            "invoices": list(c.invoices(since)),
            "credit_notes": list(c.credit_notes(since)),
            "invoice_payments": list(c.invoice_payments(since)),
            "charges": list(c.charges(since)),
            "refunds": list(c.refunds(since)),
        }
    types = {"invoice", "credit_note", "charge", "invoice_payment", "refund"}
    ctx = mirror_context(stripe, types)
    normalized = normalize_all(**pulled, default_entity=stripe.default_entity, **ctx["options"])
    bid = landing.batch_id(started, "r", f"-{tick}")
    landed = landing.land_objects(
        folder,
        normalized,
        bid,
        legal_entities_seed=stripe.legal_entities_seed,
        manifest={"source": "stripe_reconcile", "since": since, "tick": tick},
    )
    write_state(folder, {"last_full_sync": started, "batch_id": bid, "since": since})
    now_ts = pd.Timestamp(started, unit="s", tz="UTC")
    last_period = f"{now_ts:%Y-%m}-01"
    parts = sorted(
        p
        for p in landing.affected_partitions(normalized, now=now_ts, **ctx["lookup"])
        if FIRST_PERIOD <= p[1] <= last_period
    )
    return Reconciled(bid, since, landed, parts)


@dg.schedule(
    job=billing_sync_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=(
        dg.DefaultScheduleStatus.RUNNING if STRIPE_SOURCE else dg.DefaultScheduleStatus.STOPPED
    ),
    description="03:00 UTC: re-pull Stripe objects created since the last full sync - 1 day.",
)
def stripe_nightly_reconcile(context: dg.ScheduleEvaluationContext, stripe: StripeResource):
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H%M")
    result = reconcile(stripe, tick)
    if not result.partitions:
        return dg.SkipReason(f"reconcile batch {result.batch_id}: nothing to re-run")
    # a schedule cannot return dynamic partition requests (SensorResult only): add directly
    known = set(context.instance.get_dynamic_partitions(entity_partitions.name))
    new = sorted({e for e, _ in result.partitions} - known)
    if new:
        context.instance.add_dynamic_partitions(entity_partitions.name, new)
    return [
        dg.RunRequest(
            run_key=f"stripe-reconcile-{tick}-{entity}-{period}",
            partition_key=partition_key(entity, period),
            tags={"sync/trigger": "stripe_reconcile", "sync/stripe_batch": result.batch_id},
        )
        for entity, period in result.partitions
    ]
