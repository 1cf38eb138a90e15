"""The sandbox's collections: Stripe ``object`` names, errors, ordered objects, paging and
per-field indexes (the related objects ``expand`` embeds)."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable

from sandboxes.billing_api.catalog import COLLECTIONS

API_VERSION = "2025-03-31.basil"
EMBEDDED_LINES = 10
MAX_BODY = 10 * 2**20


class ApiError(Exception):
    """A Stripe error answer: HTTP ``status`` and the ``error`` hash's fields. ``type`` is
    ``api_error`` for 5xx and ``invalid_request_error`` otherwise, unless given."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        *,
        type: str | None = None,  # noqa: A002 - the error hash's own field name
    ):
        self.status, self.message, self.code, self.param = status, message, code, param
        self.type = type or ("api_error" if status >= 500 else "invalid_request_error")
        super().__init__(message)

    def body(self, request_id: str | None = None) -> dict:
        """``{"error": {...}}`` as Stripe sends it: ``doc_url`` for a ``code``, ``param`` when
        one parameter is at fault, ``request_log_url`` naming the request (keys sorted)."""
        err = {"message": self.message, "type": self.type}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            err["param"] = self.param
        if request_id:
            err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": dict(sorted(err.items()))}


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# -------------------------------------------------------------------------------- collections


class Collection:
    """Objects of one list endpoint, ordered by ``(created, id)``; lists serve it reversed
    (newest first). Each object's JSON is rendered once and cached."""

    def __init__(self, name: str, render=None):
        self.name = name
        self.keys: list[tuple[int, str]] = []  # ascending
        self.objs: dict[str, dict] = {}
        self._json: dict[str, bytes] = {}
        self._index: dict[str, dict[str, list[str]]] = {}
        self._render = render or (lambda o: o)

    def __len__(self) -> int:
        return len(self.keys)

    def upsert(self, obj: dict) -> None:
        oid, created = str(obj["id"]), int(obj.get("created") or 0)
        old = self.objs.get(oid)
        if old is not None:
            old_key = (int(old.get("created") or 0), oid)
            if old_key != (created, oid):
                del self.keys[bisect.bisect_left(self.keys, old_key)]
                bisect.insort(self.keys, (created, oid))
        else:
            bisect.insort(self.keys, (created, oid))
        self.objs[oid] = obj
        self._json.pop(oid, None)
        self._index.clear()

    def bulk_load(self, objs: Iterable[dict]) -> None:
        for o in objs:
            self.objs[str(o["id"])] = o
            self._json.pop(str(o["id"]), None)
        self.keys = sorted((int(o.get("created") or 0), i) for i, o in self.objs.items())
        self._index.clear()

    def json(self, oid: str) -> bytes:
        b = self._json.get(oid)
        if b is None:
            b = self._json[oid] = _dumps(self._render(self.objs[oid]))
        return b

    def rendered(self, oid: str) -> dict:
        """The object as served, a fresh copy (``expand`` edits it)."""
        return json.loads(self.json(oid))

    def related(self, field: str, value: str) -> list[str]:
        """Ids of the objects whose ``field`` (an id or an expanded object) is ``value``,
        oldest first; the index is built on first use and dropped on every change."""
        index = self._index.get(field)
        if index is None:
            index = self._index[field] = {}
            for _, oid in self.keys:
                ref = self.objs[oid].get(field)
                ref = ref.get("id") if isinstance(ref, dict) else ref
                if ref is not None:
                    index.setdefault(str(ref), []).append(oid)
        return index.get(value, [])

    def key_of(self, oid: str, param: str | None = None) -> tuple[int, str]:
        obj = self.objs.get(oid)
        if obj is None:
            raise ApiError(
                400,
                f"No such {COLLECTIONS.get(self.name, 'object')}: '{oid}'",
                "resource_missing",
                param,
            )
        return int(obj.get("created") or 0), oid


def page_keys(
    keys: list[tuple[int, str]],
    limit: int,
    starting_after: tuple | None,
    ending_before: tuple | None,
    lo: int = 0,
    hi: int | None = None,
) -> tuple[list[tuple[int, str]], bool]:
    """A newest-first page of ascending ``keys[lo:hi]``: (keys of the page, has_more)."""
    hi = len(keys) if hi is None else hi
    if ending_before is not None:
        start = max(lo, bisect.bisect_right(keys, ending_before))
        stop = min(hi, start + limit)
        return keys[start:stop][::-1], stop < hi
    top = hi if starting_after is None else min(hi, bisect.bisect_left(keys, starting_after))
    bottom = max(lo, top - limit)
    return keys[bottom:top][::-1], bottom > lo


def page_positional(
    items: list[dict], limit: int, starting_after: str | None, ending_before: str | None
) -> tuple[list[dict], bool]:
    """A page of a nested list kept in document order (invoice lines, items)."""
    ids = [str(i["id"]) for i in items]

    def pos(oid, param):
        try:
            return ids.index(oid)
        except ValueError:
            raise ApiError(400, f"No such line item: '{oid}'", "resource_missing", param) from None

    if ending_before is not None:
        stop = pos(ending_before, "ending_before")
        start = max(0, stop - limit)
        return items[start:stop], start > 0
    start = 0 if starting_after is None else pos(starting_after, "starting_after") + 1
    return items[start : start + limit], start + limit < len(items)
