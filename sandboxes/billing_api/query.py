"""Query parameters of the list endpoints: limit, created ranges, filters, list bodies."""

from __future__ import annotations

import bisect

from sandboxes.billing_api.catalog import FILTERS
from sandboxes.billing_api.collections import ApiError, _dumps


def _list_bytes(data: bytes, more: bool, url: str) -> bytes:
    return (
        b'{"object":"list","data":['
        + data
        + b'],"has_more":'
        + (b"true" if more else b"false")
        + b',"url":'
        + _dumps(url)
        + b"}"
    )


def _one(q: dict[str, list[str]], key: str) -> str | None:
    v = q.get(key)
    return v[-1] if v else None


def _limit(q) -> int:
    raw = _one(q, "limit")
    if raw is None:
        return 10
    try:
        n = int(raw)
    except ValueError:
        raise ApiError(
            400, f"Invalid integer: {raw}", "parameter_invalid_integer", "limit"
        ) from None
    if not 1 <= n <= 100:
        raise ApiError(
            400,
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            "parameter_invalid_integer",
            "limit",
        )
    return n


def _created_range(keys, q) -> tuple[int, int]:
    lo, hi = 0, len(keys)

    def num(k):
        raw = _one(q, k)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, f"Invalid integer: {raw}", "parameter_invalid_integer", k) from None

    exact = num("created")
    gte, gt, lte, lt = (num(f"created[{op}]") for op in ("gte", "gt", "lte", "lt"))
    if exact is not None:
        gte = lte = exact
    if gte is not None:
        lo = max(lo, bisect.bisect_left(keys, (gte, "")))
    if gt is not None:
        lo = max(lo, bisect.bisect_left(keys, (gt + 1, "")))
    if lte is not None:
        hi = min(hi, bisect.bisect_left(keys, (lte + 1, "")))
    if lt is not None:
        hi = min(hi, bisect.bisect_left(keys, (lt, "")))
    return lo, max(lo, hi)


def _ref(v):
    return v.get("id") if isinstance(v, dict) else v


def _predicates(name: str, q) -> list:
    preds = []
    for f in FILTERS.get(name, ()):
        v = _one(q, f)
        if v is None:
            continue
        if name == "subscriptions" and f == "price":
            preds.append(
                lambda o, v=v: any(
                    _ref(i.get("price")) == v for i in (o.get("items") or {}).get("data", [])
                )
            )
        elif name == "invoices" and f == "subscription":
            preds.append(
                lambda o, v=v: (
                    (o.get("parent") or {}).get("subscription_details", {}) is not None
                    and ((o.get("parent") or {}).get("subscription_details") or {}).get(
                        "subscription"
                    )
                    == v
                )
            )
        else:
            preds.append(lambda o, f=f, v=v: _ref(o.get(f)) == v)
    if name == "subscriptions":
        status = _one(q, "status")
        if status is None:
            preds.append(lambda o: o.get("status") != "canceled")
        elif status != "all":
            preds.append(lambda o, s=status: o.get("status") == s)
    if name == "events":
        types = q.get("types[]", []) + q.get("types", [])
        single = _one(q, "type")
        if single:
            types.append(single)
        if types:
            exact = {t for t in types if not t.endswith("*")}
            prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
            preds.append(
                lambda o: (
                    o.get("type") in exact
                    or bool(prefixes)
                    and str(o.get("type")).startswith(prefixes)
                )
            )
    return preds
