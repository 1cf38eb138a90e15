"""The sandbox's state: collections, events, faults and counters, and the list / retrieve
reads over them (parameters: :mod:`sandboxes.billing_api.query`, ``expand``:
:mod:`sandboxes.billing_api.expand`)."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sandboxes.billing_api import expand, query
from sandboxes.billing_api.builder import load
from sandboxes.billing_api.catalog import COLLECTION_OF, COLLECTIONS
from sandboxes.billing_api.collections import (
    API_VERSION,
    ApiError,
    Collection,
    _dumps,
    page_keys,
    page_positional,
)
from sandboxes.billing_api.params import Params
from sandboxes.billing_api.render import RENDER, _without_tiers

# objects whose includable fields a plain read leaves out (see expand.strip_includable)
_INCLUDING = {"price"}
_LINE_OBJECT = {"invoices": "line_item", "credit_notes": "credit_note_line_item"}


class BillingState:
    """Collections, events, faults and counters; thread-safe."""

    def __init__(self, folder: Path | None):
        self.lock = threading.RLock()
        self.collections = {name: Collection(name, RENDER.get(name)) for name in COLLECTIONS}
        self.prices: dict[str, dict] = {}
        self.request_count = 0
        self.status_counts: dict[str, int] = {}
        self.faults = {
            "burst_429": 0,
            "burst_500": 0,
            "burst_disconnect": 0,
            "retry_after_s": 0.0,
            "error_rate_500": 0.0,
            "slow_page_ms": 0.0,
            "seed": 0,
        }
        self._rng = random.Random(0)
        self._event_seq = 0
        if folder is not None:
            self._load(folder)

    def _load(self, folder: Path) -> None:
        load(self, folder)
        self._link_latest_invoices()

    def _link_latest_invoices(self) -> None:
        """Set ``latest_invoice`` on the subscriptions loaded without one: their newest
        invoice, as Stripe sets it when it makes each invoice of a subscription."""
        invoices, subs = self.collections["invoices"], self.collections["subscriptions"]
        latest: dict[str, str] = {}
        for _, iid in invoices.keys:  # oldest first: the newest stays
            details = (invoices.objs[iid].get("parent") or {}).get("subscription_details")
            if details and details.get("subscription"):
                latest[str(details["subscription"])] = iid
        for sid, sub in subs.objs.items():
            if sub.get("latest_invoice") is None and sid in latest:
                sub["latest_invoice"] = latest[sid]
                subs.upsert(sub)

    def _event_obj(self, etype: str, obj: dict, created: int) -> dict:
        self._event_seq += 1
        return {
            "id": f"evt_{self._event_seq:010d}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(created),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": etype,
        }

    # -- hooks
    def add_event(self, etype: str, obj: dict, created: int | None = None) -> dict:
        if not isinstance(obj, dict) or not obj.get("id") or not obj.get("object"):
            raise ApiError(400, "object needs 'id' and 'object'", "parameter_missing")
        with self.lock:
            now = int(time.time()) if created is None else int(created)
            obj = copy.deepcopy(obj)
            obj.setdefault("created", now)
            name = COLLECTION_OF.get(obj["object"])
            snapshot = obj
            if name is not None and name != "events":
                coll = self.collections[name]
                coll.upsert(obj)
                snapshot = coll._render(obj)
            ev = self._event_obj(etype, copy.deepcopy(snapshot), now)
            self.collections["events"].upsert(ev)
            return ev

    def add_objects(self, collection: str, objs: Iterable[dict]) -> int:
        with self.lock:
            objs = list(objs)
            coll = self.collections[collection]
            coll.bulk_load([*coll.objs.values(), *objs])
            return len(objs)

    def set_faults(self, **changes) -> dict:
        unknown = set(changes) - set(self.faults)
        if unknown:
            raise ApiError(400, f"unknown fault settings: {sorted(unknown)}", "parameter_unknown")
        with self.lock:
            for k, v in changes.items():
                self.faults[k] = type(self.faults[k])(v)
            if "seed" in changes:
                self._rng = random.Random(self.faults["seed"])
            return dict(self.faults)

    def draw_fault(self) -> str | None:
        with self.lock:
            f = self.faults
            for name in ("burst_disconnect", "burst_429", "burst_500"):
                if f[name] > 0:
                    f[name] -= 1
                    return name
            if f["error_rate_500"] > 0 and self._rng.random() < f["error_rate_500"]:
                return "error_rate_500"
        return None

    def count(self, status: int) -> None:
        with self.lock:
            self.status_counts[str(status)] = self.status_counts.get(str(status), 0) + 1

    def stats(self) -> dict:
        with self.lock:
            return {
                "requests": self.request_count,
                "status": dict(self.status_counts),
                "objects": {k: len(v) for k, v in self.collections.items()},
                "faults": dict(self.faults),
            }

    # -- reads
    def _tree(self, kind: str, p: Params, listed: bool = False) -> dict | None:
        """The checked ``expand`` paths for an object ``kind``, or None; ``listed``: for a
        list of them (``data.<field>``), as a tree for each listed object."""
        paths = p.array("expand")
        if not paths:
            return None
        tree = expand.compile_paths(self, kind, paths, listed)
        return tree["data"][1] if listed else tree

    def _served(self, coll, oid: str, tree: dict | None) -> bytes:
        """An object's JSON, expanded along ``tree`` (and without includable fields)."""
        if not tree and COLLECTIONS.get(coll.name) not in _INCLUDING:
            return coll.json(oid)
        obj = expand.strip_includable(coll.rendered(oid))
        return _dumps(expand.apply(self, obj, tree or {}))

    def list(self, name: str, p: Params) -> bytes:
        p.check(query.list_schema(name))
        n, (after, before) = query.limit(p), query.cursors(p)
        with self.lock:
            tree = self._tree(expand.object_of(name), p, listed=True)
            coll = self.collections[name]
            keys = coll.keys
            lo, hi = query.created_range(keys, p)
            preds = query.predicates(name, p)
            if preds:
                keys = [k for k in keys[lo:hi] if all(f(coll.objs[k[1]]) for f in preds)]
                lo, hi = 0, len(keys)
            sa = coll.key_of(after, "starting_after") if after else None
            eb = coll.key_of(before, "ending_before") if before else None
            page, more = page_keys(keys, n, sa, eb, lo, hi)
            data = b",".join(self._served(coll, k[1], tree) for k in page)
        return query.list_bytes(data, more, f"/v1/{name}")

    def retrieve(self, name: str, oid: str, p: Params) -> bytes:
        """``GET /v1/<name>/<id>``; ``prices`` from :attr:`prices` while not a collection."""
        p.check(query.RETRIEVE)
        with self.lock:
            tree = self._tree(expand.object_of(name), p)
            coll = self.collections.get(name)
            if coll is not None and oid in coll.objs:
                return self._served(coll, oid, tree)
            obj = None if coll is not None else expand.lookup(self, name, oid)
            if obj is None:
                raise ApiError(
                    404, f"No such {expand.object_of(name)}: '{oid}'", "resource_missing", "id"
                )
            return _dumps(expand.apply(self, obj, tree or {}))

    def _positional(self, items: list[dict], p: Params, kind: str, url: str) -> bytes:
        n, (after, before) = query.limit(p), query.cursors(p)
        tree = self._tree(kind, p, listed=True)
        page, more = page_positional(items, n, after, before)
        if tree:
            page = [expand.apply(self, copy.deepcopy(i), tree) for i in page]
        return query.list_bytes(b",".join(_dumps(i) for i in page), more, url)

    def nested(self, name: str, oid: str, field: str, p: Params) -> bytes:
        """``GET /v1/<name>/<id>/lines``: every line of an invoice or a credit note."""
        p.check(query.PAGING)
        with self.lock:
            obj = self.collections[name].objs.get(oid)
            if obj is None:
                raise ApiError(
                    404,
                    f"No such {COLLECTIONS[name]}: '{oid}'",
                    "resource_missing",
                    COLLECTIONS[name],
                )
            items = (obj.get(field) or {}).get("data") or []
            return self._positional(items, p, _LINE_OBJECT[name], f"/v1/{name}/{oid}/{field}")

    def subscription_items(self, p: Params) -> bytes:
        p.check(query.SUBSCRIPTION_ITEMS)
        sid = p.string("subscription")
        if not sid:
            raise ApiError(
                400, "Missing required param: subscription.", "parameter_missing", "subscription"
            )
        with self.lock:
            sub = self.collections["subscriptions"].objs.get(sid)
            if sub is None:
                raise ApiError(
                    404, f"No such subscription: '{sid}'", "resource_missing", "subscription"
                )
            items = [_without_tiers(i) for i in (sub.get("items") or {}).get("data") or []]
            return self._positional(items, p, "subscription_item", "/v1/subscription_items")
