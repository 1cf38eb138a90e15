"""Stripe events -> the canonical mirror -> one billing run per touched entity x month.

Every 15 s (for a p95 event -> ledger of at most 30 s) the sensor reads ``/v1/events`` from
its cursor, oldest first, lands the events' objects in the mirror as one batch and asks for
one ``billing_sync`` run per affected partition. Cursor (JSON in ``context.cursor``)::

    {"high_water": <created of the newest processed event>, "batches": <batches landed>,
     "seen": {<event id>: <created>, ...}}

- Reads ``created[gte] = high_water - 300 s``: an event that shows up late in the list (the
  list is eventually consistent, Stripe gives no ordering guarantee) but within that window
  is still processed; ``seen`` (the ids of the last 10 minutes, at most 10,000: only the
  overlap window is ever re-read) drops the ones already processed, so a repeated event is
  never landed or launched twice, and ties on ``created`` cannot be skipped or doubled.
- Stripe lists newest first: the window is paged through and reversed; at most 1,000 new
  events per evaluation (oldest first), and a window too large for the page budget is
  narrowed with ``created[lte]`` so one evaluation stays well under the 60 s limit.
- An object touched by new events is normalized from its newest event in the window, seen or
  not, so a late (older) snapshot never overrides a newer one in the mirror.
- The batch id is derived from the cursor and the event ids (``landing.batch_id``): a
  re-evaluation after a crash lands the same file names. Run keys are
  ``stripe-{entity}-{period}-{hash of the event ids touching it}``, so the daemon never
  launches the same events twice. The cursor moves only in the returned ``SensorResult``:
  if reading, normalizing or landing raises, it stays where it was.
- Entities not yet known become dynamic partitions in the same result.

It runs by default only where the assets read the mirror (``SYNC_SOURCE_KIND=stripe_mirror``
at load time); elsewhere it is defined but stopped, so turning it on is a deliberate act and
it never lands into a folder nobody reads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import dagster as dg
import pandas as pd

from resources.billing_source import BillingSourceResource
from resources.stripe import StripeResource
from sync_assets.jobs import billing_sync_job
from sync_assets.partitions import FIRST_PERIOD, entity_partitions, partition_key
from sync_core.stripe import StripeClient, landing
from sync_core.stripe.normalize import normalize_all

OVERLAP_S = 300
MAX_EVENTS = 1_000
PAGE_BUDGET = 30  # pages of 100 per read before the window is narrowed
SEEN_RETAIN_S = 2 * OVERLAP_S  # only the overlap window is ever re-read
MAX_SEEN = 10_000
INITIAL_LOOKBACK_S = 30 * 86_400  # Stripe keeps 30 days of events
STRIPE_SOURCE = os.getenv("SYNC_SOURCE_KIND") == "stripe_mirror"


@dataclass
class EventCursor:
    high_water: int
    batches: int = 0
    seen: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None, now: float) -> EventCursor:
        if not raw:
            return cls(high_water=int(now) - INITIAL_LOOKBACK_S)
        d = json.loads(raw)
        return cls(int(d["high_water"]), int(d.get("batches", 0)), dict(d.get("seen", {})))

    def dumps(self) -> str:
        return json.dumps(
            {"high_water": self.high_water, "batches": self.batches, "seen": self.seen},
            sort_keys=True,
            separators=(",", ":"),
        )


def initial_cursor(since: int) -> str:
    """A cursor that starts reading at epoch ``since`` (instead of 30 days back)."""
    return EventCursor(high_water=int(since) + OVERLAP_S).dumps()


def _rank(ev: Mapping) -> tuple[int, str]:
    return int(ev.get("created") or 0), str(ev.get("id") or "")


def read_window(
    client: StripeClient, gte: int, page_budget: int = PAGE_BUDGET
) -> tuple[list[dict], int | None]:
    """Events with ``created >= gte``, oldest first, and the window's upper bound when it had
    to be narrowed to fit ``page_budget`` pages (``None``: read up to now)."""
    lte: int | None = None
    while True:
        params = {} if lte is None else {"created[lte]": lte}
        events: list[dict] = []
        complete = True
        for n, (page, nxt) in enumerate(
            client.iter_pages("/v1/events", params, created_gte=gte), start=1
        ):
            events.extend(page)
            if nxt is not None and n >= page_budget:
                complete = False
                break
        if complete:
            return sorted(events, key=_rank), lte
        newest = lte if lte is not None else max(_rank(e)[0] for e in events)
        if newest <= gte + 1:  # one second holds more than the budget: read it whole
            page_budget = 10**9
            continue
        lte = gte + (newest - gte) // 2


@dataclass
class Evaluation:
    run_requests: list[dg.RunRequest]
    cursor: str
    new_entities: list[str]
    batch_id: str | None
    landed: dict[str, int]
    events: int
    skip_reason: str | None = None


def complete_objects(client: StripeClient, events: list[dict]) -> list[dict]:
    """Events whose object is a truncated snapshot, completed through the API: invoice and
    credit note lines beyond the 10 embedded, subscription items beyond 10, and the tiers of
    tiered prices (never in an event). Other events are returned as they are."""
    nested = {
        "invoice": ("lines", "/v1/invoices/{}/lines"),
        "credit_note": ("lines", "/v1/credit_notes/{}/lines"),
        "subscription": ("items", "/v1/subscription_items?subscription={}"),
    }
    tiers: dict = {}
    out = []
    for ev in events:
        obj = (ev.get("data") or {}).get("object")
        kind = obj.get("object") if isinstance(obj, Mapping) else None
        if kind not in nested:
            out.append(ev)
            continue
        fld, path = nested[kind]
        done = client._complete_list(obj, fld, path.format(quote(str(obj["id"]))))
        if kind == "subscription":
            done = client._with_tiers(done, tiers)
        out.append(ev if done is obj else {**ev, "data": {**ev["data"], "object": done}})
    return out


def _object_key(ev: Mapping) -> tuple[str, str] | None:
    obj = (ev.get("data") or {}).get("object")
    if isinstance(obj, Mapping) and obj.get("id") and obj.get("object"):
        return str(obj["object"]), str(obj["id"])
    return None


def mirror_context(stripe: StripeResource, types: set[str]) -> dict:
    """What the normalizer and the partition finder need from the mirror (read lazily)."""
    folder = stripe.mirror()
    source = BillingSourceResource(kind="stripe_mirror", path=str(folder))
    out: dict = {"functional_currency": stripe.functional_currencies()}
    has_mirror = bool(landing.committed_batches(folder))
    if not has_mirror:
        return {"options": out, "lookup": {}}
    lookup: dict = {}
    paying = {"charge", "payment_intent", "invoice_payment", "refund", "dispute"}
    if types & ({"invoice", "credit_note"} | paying):
        inv = source.read("invoices")
        out["invoice_info"] = {
            i: (e, c)
            for i, e, c in zip(inv["invoice_id"], inv["entity_id"], inv["customer_id"], strict=True)
        }
        lookup["invoices"] = inv
    if types & {"credit_note", "refund", "charge", "dispute"}:  # what reduces later service
        lookup["invoice_lines"] = source.read("invoice_lines")
    if types & paying:  # settlements landed earlier: {payment: (invoice, customer, status)}
        pays = source.read("payments")
        pays = pays[pays["kind"] == "payment"] if len(pays) else pays
        cols = [pays[c].astype(object).where(pays[c].notna(), None)
                for c in ("payment_id", "invoice_id", "customer_id", "status")]  # fmt: skip
        out["payment_info"] = {p: (i, c, st) for p, i, c, st in zip(*cols, strict=True)}
    if "invoice" in types:
        sc = source.read("subscription_contracts")
        metered = sc[sc["metered"].fillna(False).astype(bool)]
        out["metered_prices"] = set(metered["price_id"])
        out["metered_items"] = set(metered["contract_id"])
    return {"options": out, "lookup": lookup}


def evaluate(
    stripe: StripeResource,
    raw_cursor: str | None,
    known_entities: set[str],
    now: float | None = None,
) -> Evaluation:
    """One sensor evaluation without Dagster's context (see the module docstring)."""
    now = time.time() if now is None else now
    cur = EventCursor.parse(raw_cursor, now)
    with stripe.client() as client:
        events, narrowed_to = read_window(client, cur.high_water - OVERLAP_S)
    new = [e for e in events if str(e.get("id")) not in cur.seen][:MAX_EVENTS]
    truncated = len(new) == MAX_EVENTS
    if not new:
        if narrowed_to is not None:  # an empty stretch of a narrowed window: move past it
            cur.high_water = max(cur.high_water, narrowed_to)
        return Evaluation([], cur.dumps(), [], None, {}, 0, "no new Stripe events")

    touched = {k for k in map(_object_key, new) if k}
    extra = [
        e for e in events if str(e.get("id")) in cur.seen and _object_key(e) in touched
    ]  # newer snapshots already seen win over late ones
    ctx = mirror_context(stripe, {k[0] for k in touched})
    latest: dict[tuple[str, str], dict] = {}
    for e in sorted(new + extra, key=_rank):
        latest[_object_key(e)] = e  # the snapshot that wins per object
    with stripe.client() as client:
        winners = complete_objects(client, [e for k, e in latest.items() if k])
    normalized = normalize_all(
        events=winners, default_entity=stripe.default_entity, **ctx["options"]
    )

    high_water = max(cur.high_water, _rank(new[-1])[0])
    if narrowed_to is not None and not truncated:
        high_water = max(high_water, narrowed_to)
    ids = [str(e["id"]) for e in new]
    bid = landing.batch_id(high_water, "e", f"{cur.batches + 1:06d}-{landing.digest(ids)}")
    landed = landing.land_objects(
        stripe.mirror(),
        normalized,
        bid,
        legal_entities_seed=stripe.legal_entities_seed,
        manifest={"source": "stripe_events", "event_ids": ids},
    )

    by_doc = landing.affected_by_document(
        normalized, now=pd.Timestamp(now, unit="s", tz="UTC"), **ctx["lookup"]
    )
    events_of: dict[tuple[str, str], set[str]] = {}
    for ev in new:
        obj = (ev.get("data") or {}).get("object") or {}
        for doc in landing.document_ids(obj) if isinstance(obj, Mapping) else []:
            for part in by_doc.get(doc, ()):
                events_of.setdefault(part, set()).add(str(ev["id"]))
    last = f"{pd.Timestamp(now, unit='s', tz='UTC'):%Y-%m}-01"
    parts = sorted(p for p in events_of if FIRST_PERIOD <= p[1] <= last)
    requests = [
        dg.RunRequest(
            run_key=f"stripe-{entity}-{period}-{landing.digest(events_of[(entity, period)], 16)}",
            partition_key=partition_key(entity, period),
            tags={"sync/trigger": "stripe_events", "sync/stripe_batch": bid},
        )
        for entity, period in parts
    ]
    new_entities = sorted({e for e, _ in parts} - known_entities)

    for e in new:
        cur.seen[str(e["id"])] = _rank(e)[0]
    keep = sorted(
        ((c, i) for i, c in cur.seen.items() if c >= high_water - SEEN_RETAIN_S), reverse=True
    )[:MAX_SEEN]
    cur = EventCursor(high_water, cur.batches + 1, {i: c for c, i in keep})
    return Evaluation(requests, cur.dumps(), new_entities, bid, landed, len(new))


@dg.sensor(
    job=billing_sync_job,
    minimum_interval_seconds=15,  # p95 event -> ledger <= 30 s (benchmarks)
    default_status=(
        dg.DefaultSensorStatus.RUNNING if STRIPE_SOURCE else dg.DefaultSensorStatus.STOPPED
    ),
    description="Stripe events -> the mirror (one batch) -> one run per touched entity x month.",
)
def stripe_event_sensor(context: dg.SensorEvaluationContext, stripe: StripeResource):
    if not stripe.api_key:  # switched on where there is no Stripe account to read
        return dg.SkipReason("STRIPE_API_KEY is not set: no Stripe account to read events from")
    known = set(context.instance.get_dynamic_partitions(entity_partitions.name))
    now = time.time()
    ev = evaluate(stripe, context.cursor, known, now=now)
    if ev.batch_id:
        # event lag of the tick: now - created of the newest event processed (the cursor's
        # high-water mark), in the sensor's tick log
        lag = now - json.loads(ev.cursor)["high_water"]
        context.log.info(
            f"landed batch {ev.batch_id} ({ev.events} events: {ev.landed}); "
            f"{len(ev.run_requests)} partitions; lag {lag:.0f}s (now - newest event created)"
        )
    return dg.SensorResult(
        run_requests=ev.run_requests,
        cursor=ev.cursor,
        dynamic_partitions_requests=(
            [entity_partitions.build_add_request(ev.new_entities)] if ev.new_entities else None
        ),
        skip_reason=ev.skip_reason,
    )
