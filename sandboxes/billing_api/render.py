"""Canonical file-drop records as Stripe JSON: record reading and the served shapes (invoices
and credit notes embed their first 10 lines, subscription items and listed prices hide price
tiers, sandbox-only bookkeeping fields are not served)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd

from sandboxes.billing_api.collections import EMBEDDED_LINES


def _epoch(ts) -> int | None:
    if ts is None or pd.isna(ts):
        return None
    return int(pd.Timestamp(ts).value // 1_000_000_000)


def _records(folder: Path, name: str) -> list[dict]:
    from sync_core.filedrop import read_object

    df = read_object(folder, name).drop(columns=["_source", "_line"])
    out = {}
    for c in df.columns:
        s = df[c]
        if str(s.dtype).startswith("datetime64"):
            out[c] = [_epoch(v) for v in s]
        else:
            out[c] = [None if pd.isna(v) else v for v in s.astype(object)]
            if str(s.dtype) == "Int64":
                out[c] = [None if v is None else int(v) for v in out[c]]
            elif str(s.dtype) == "boolean":
                out[c] = [None if v is None else bool(v) for v in out[c]]
    return [dict(zip(out, vals)) for vals in zip(*out.values())] if out else []


def _tax_entries(amount: int, tax: int, behavior: str, rate_id: str) -> list[dict]:
    if not tax:
        return []
    return [
        {
            "amount": tax,
            "tax_behavior": behavior,
            "tax_rate_details": {"tax_rate": rate_id},
            "taxability_reason": "standard_rated",
            "taxable_amount": amount,
            "type": "tax_rate_details",
        }
    ]


def _unit_decimal(amount: int, quantity) -> str | None:
    """``amount / quantity`` as Stripe's ``unit_amount_decimal``: exact when it ends within 12
    decimal places (Stripe's precision), else rounded half even to 12."""
    if not quantity:
        return None
    d = (Decimal(amount) / Decimal(quantity)).quantize(Decimal(1).scaleb(-12))
    return format(d.normalize(), "f")


def _lines_list(lines: list[dict], url: str, limit: int = EMBEDDED_LINES) -> dict:
    return {
        "object": "list",
        "data": lines[:limit],
        "has_more": len(lines) > limit,
        "total_count": len(lines),
        "url": url,
    }


def render_invoice(inv: dict) -> dict:
    """An invoice as served: only its first 10 lines embedded."""
    lines = (inv.get("lines") or {}).get("data") or []
    return {**inv, "lines": _lines_list(lines, f"/v1/invoices/{inv['id']}/lines")}


def render_credit_note(cn: dict) -> dict:
    lines = (cn.get("lines") or {}).get("data") or []
    return {**cn, "lines": _lines_list(lines, f"/v1/credit_notes/{cn['id']}/lines")}


def _without_tiers(item: dict) -> dict:
    """A subscription item as listed: its price's ``tiers`` need ``expand[]=tiers``."""
    price = item.get("price")
    if not isinstance(price, dict) or "tiers" not in price:
        return item
    return {**item, "price": {k: v for k, v in price.items() if k != "tiers"}}


def render_subscription(sub: dict) -> dict:
    items = [_without_tiers(it) for it in (sub.get("items") or {}).get("data") or []]
    return {
        **sub,
        "items": _lines_list(items, f"/v1/subscription_items?subscription={sub['id']}"),
    }


def _without(*fields: str):
    """A render dropping sandbox-only fields (kept on the stored object for the list order
    and filters: a balance transaction's ``payout``, an invoice item's ``created``) or the
    price ``tiers`` (``GET /v1/prices/{id}?expand[]=tiers`` shows them)."""

    def render(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if k not in fields}

    return render


RENDER = {
    "invoices": render_invoice,
    "credit_notes": render_credit_note,
    "subscriptions": render_subscription,
    "balance_transactions": _without("payout"),
    "invoiceitems": _without("created"),
    "prices": _without("tiers"),
}
