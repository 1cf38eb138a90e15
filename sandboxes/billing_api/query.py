"""The parameters each endpoint takes, and what the list endpoints make of them: limit, created
ranges, filters, list bodies.

An endpoint refuses any other parameter (``400 Received unknown parameter``), as Stripe does;
a parameter Stripe takes but the sandbox does not implement is refused too rather than
silently ignored (it would come back unfiltered). A list takes the common parameters
(``limit``, ``starting_after``, ``ending_before``, ``created`` / ``created[gt|gte|lt|lte]``,
``expand``), its collection's equality filters (:data:`sandboxes.billing_api.catalog.FILTERS`)
and the extras below; a nested list (invoice or credit note lines, subscription items) no
``created``; a retrieve ``expand`` only.
"""

from __future__ import annotations

import bisect
import re

from sandboxes.billing_api.catalog import FILTERS
from sandboxes.billing_api.collections import ApiError, _dumps
from sandboxes.billing_api.params import ARRAY, INTEGER, RANGE, STRING, Params

PAGING = {"limit": INTEGER, "starting_after": STRING, "ending_before": STRING, "expand": ARRAY}
COMMON = {**PAGING, "created": RANGE}
# list parameters beyond the catalog's equality filters
EXTRA = {
    "subscriptions": {"status": STRING},  # default: all but canceled; "all"
    "events": {"type": STRING, "types": ARRAY},  # type: "*" wildcards; types: exact names
}
SUBSCRIPTION_ITEMS = {**PAGING, "subscription": STRING}
RETRIEVE = {"expand": ARRAY}


def list_schema(name: str) -> dict[str, str]:
    return {**COMMON, **{f: STRING for f in FILTERS.get(name, ())}, **EXTRA.get(name, {})}


def list_bytes(data: bytes, more: bool, url: str) -> bytes:
    return (
        b'{"object":"list","data":['
        + data
        + b'],"has_more":'
        + (b"true" if more else b"false")
        + b',"url":'
        + _dumps(url)
        + b"}"
    )


def limit(p: Params) -> int:
    n = p.integer("limit")
    if n is None:
        return 10
    if not 1 <= n <= 100:
        raise ApiError(
            400,
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            "parameter_invalid_integer",
            "limit",
        )
    return n


def cursors(p: Params) -> tuple[str | None, str | None]:
    after, before = p.string("starting_after"), p.string("ending_before")
    if after and before:
        raise ApiError(400, "You may only specify one of starting_after and ending_before.")
    return after, before


def created_range(keys, p: Params) -> tuple[int, int]:
    """The slice of ascending ``(created, id)`` keys within the ``created`` range."""
    lo, hi = 0, len(keys)
    r = p.range("created")
    if "gte" in r:
        lo = max(lo, bisect.bisect_left(keys, (r["gte"], "")))
    if "gt" in r:
        lo = max(lo, bisect.bisect_left(keys, (r["gt"] + 1, "")))
    if "lte" in r:
        hi = min(hi, bisect.bisect_left(keys, (r["lte"] + 1, "")))
    if "lt" in r:
        hi = min(hi, bisect.bisect_left(keys, (r["lt"], "")))
    return lo, max(lo, hi)


def _text(v) -> str | None:
    """A field as a query value compares: an expanded object by its id, booleans as Stripe
    writes them."""
    if isinstance(v, dict):
        v = v.get("id")
    if isinstance(v, bool):
        return "true" if v else "false"
    return None if v is None else str(v)


def _subscription_of(inv: dict) -> str | None:
    details = (inv.get("parent") or {}).get("subscription_details") or {}
    return _text(details.get("subscription"))


def _event_types(p: Params):
    single, types = p.string("type"), p.array("types")
    if single and types:
        raise ApiError(400, "You may pass either type or types, but not both.", param="types")
    if single:
        pattern = re.compile("^" + ".*".join(map(re.escape, single.split("*"))) + "$")
        return lambda o: bool(pattern.match(str(o.get("type"))))
    if types:
        exact = set(types)
        return lambda o: o.get("type") in exact
    return None


def predicates(name: str, p: Params) -> list:
    preds = []
    for f in FILTERS.get(name, ()):
        v = p.string(f)
        if v is None:
            continue
        if name == "subscriptions" and f == "price":
            preds.append(
                lambda o, v=v: any(
                    _text(i.get("price")) == v for i in (o.get("items") or {}).get("data", [])
                )
            )
        elif name == "invoices" and f == "subscription":
            preds.append(lambda o, v=v: _subscription_of(o) == v)
        else:
            preds.append(lambda o, f=f, v=v: _text(o.get(f)) == v)
    if name == "subscriptions":
        status = p.string("status")
        if status is None:
            preds.append(lambda o: o.get("status") != "canceled")
        elif status != "all":
            preds.append(lambda o, s=status: o.get("status") == s)
    if name == "events":
        pred = _event_types(p)
        if pred is not None:
            preds.append(pred)
    return preds
