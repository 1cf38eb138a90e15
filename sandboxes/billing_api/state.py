"""The sandbox's state: collections, events, faults and counters, and the list / retrieve
reads over them (query parameters: :mod:`sandboxes.billing_api.query`)."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path

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
from sandboxes.billing_api.query import _created_range, _limit, _list_bytes, _one, _predicates
from sandboxes.billing_api.render import RENDER, _without_tiers


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
    def list(self, name: str, q: dict[str, list[str]]) -> bytes:
        limit = _limit(q)
        after, before = _one(q, "starting_after"), _one(q, "ending_before")
        if after and before:
            raise ApiError(400, "You may only specify one of starting_after and ending_before.")
        with self.lock:
            coll = self.collections[name]
            keys = coll.keys
            lo, hi = _created_range(keys, q)
            preds = _predicates(name, q)
            if preds:
                keys = [k for k in keys[lo:hi] if all(p(coll.objs[k[1]]) for p in preds)]
                lo, hi = 0, len(keys)
            sa = coll.key_of(after) if after else None
            eb = coll.key_of(before) if before else None
            page, more = page_keys(keys, limit, sa, eb, lo, hi)
            data = b",".join(coll.json(k[1]) for k in page)
        return _list_bytes(data, more, f"/v1/{name}")

    def retrieve(self, name: str, oid: str) -> bytes:
        with self.lock:
            coll = self.collections[name]
            if oid not in coll.objs:
                raise ApiError(404, f"No such {COLLECTIONS[name]}: '{oid}'", "resource_missing")
            return coll.json(oid)

    def nested(self, name: str, oid: str, field: str, q) -> bytes:
        limit = _limit(q)
        with self.lock:
            coll = self.collections[name]
            obj = coll.objs.get(oid)
            if obj is None:
                raise ApiError(404, f"No such {COLLECTIONS[name]}: '{oid}'", "resource_missing")
            items = (obj.get(field) or {}).get("data") or []
            page, more = page_positional(
                items, limit, _one(q, "starting_after"), _one(q, "ending_before")
            )
            data = b",".join(_dumps(i) for i in page)
        return _list_bytes(data, more, f"/v1/{name}/{oid}/{field}")

    def subscription_items(self, q) -> bytes:
        sid = _one(q, "subscription")
        if not sid:
            raise ApiError(400, "Missing required param: subscription.", "parameter_missing")
        with self.lock:
            sub = self.collections["subscriptions"].objs.get(sid)
            if sub is None:
                raise ApiError(404, f"No such subscription: '{sid}'", "resource_missing")
            items = [_without_tiers(i) for i in (sub.get("items") or {}).get("data") or []]
        page, more = page_positional(
            items, _limit(q), _one(q, "starting_after"), _one(q, "ending_before")
        )
        body = b",".join(_dumps(i) for i in page)
        return _list_bytes(body, more, "/v1/subscription_items")

    def price(self, pid: str, q) -> bytes:
        with self.lock:
            p = self.prices.get(pid)
        if p is None:
            raise ApiError(404, f"No such price: '{pid}'", "resource_missing")
        expand = q.get("expand[]", []) + q.get("expand", [])
        return _dumps(p if "tiers" in expand else {k: v for k, v in p.items() if k != "tiers"})
