"""A sandbox billing API: a Stripe-compatible subset over the demo platform's data.

Standard library only (``http.server.ThreadingHTTPServer``), bound to a loopback address. The
data is the seeded demo generator's canonical file-drop folder (generated on start, or an
existing folder), rendered as Stripe-shaped JSON (API ``2025-03-31.basil`` shapes):

- ids are the canonical ids (``cus_...``, ``sub_...``, ``si_...``, ``in_...``, ``il_...``,
  ``cn_...``, ``cnli_...``, ``py_...`` charges, ``re_...`` refunds); every object has
  ``object``; ``metadata.legal_entity`` is the canonical ``entity_id`` and customers carry
  ``metadata.erp_customer_id``; invoices and charges carry ``metadata.fx_rate`` (Stripe has no
  ERP rate: this stands in for the integration's rate source).
- invoice lines use the nested ``parent`` shape (``subscription_item_details`` for recurring,
  usage and proration lines, the latter with ``invoice_item`` set; ``invoice_item_details`` for
  one-off items), ``pricing.price_details``, ``taxes[]`` and ``period.start/end`` (epoch s).
- subscriptions show their current state (last contract version per item); canceled ones are
  listed only with ``status=all`` (as Stripe). Metered prices are tiered: ``tiers`` appear on
  ``GET /v1/prices/{id}?expand[]=tiers`` only.

Endpoints (GET; ``limit`` 1-100 default 10, ``starting_after``, ``ending_before``,
``created[gte|gt|lte|lt]``, newest first by ``(created, id)`` so objects sharing a second page
deterministically, ``has_more``): ``/v1/customers``, ``/v1/subscriptions``
(``status``, ``customer``), ``/v1/subscription_items?subscription=``, ``/v1/invoices``
(``customer``, ``subscription``, ``status``), ``/v1/invoices/{id}/lines``,
``/v1/credit_notes`` (``invoice``), ``/v1/credit_notes/{id}/lines``, ``/v1/charges``,
``/v1/invoice_payments`` (``invoice``), ``/v1/refunds`` (``charge``), ``/v1/events``
(``type`` with a trailing ``*`` wildcard, ``types[]``), ``/v1/billing/meter_events``
(**sandbox only**: Stripe cannot list meter events), and ``GET /v1/<collection>/{id}`` for
each, ``GET /v1/prices/{id}``. Invoices and credit notes embed their first 10 lines with
``has_more`` when there are more. Events (``data.object`` a snapshot of the object at the
time): ``customer.created``, ``customer.subscription.created``,
``customer.subscription.updated`` (per amendment), ``invoice.finalized``, ``invoice.paid``,
``invoice.voided``, ``credit_note.created``, ``credit_note.voided``, ``charge.succeeded``,
``charge.failed``, ``refund.created``, ``charge.refunded``.

Test hooks (JSON bodies): ``POST /sandbox/events`` ``{"type", "object", "created"?}`` upserts
the object into its collection and appends an event; ``POST /sandbox/faults`` sets
``burst_429`` (next N API requests answer 429 with ``Retry-After: retry_after_s``),
``burst_500``, ``burst_disconnect`` (close without an answer), ``error_rate_500`` (seeded
``seed``), ``slow_page_ms``; ``GET /sandbox/stats``. Every request needs
``Authorization: Bearer <any non-empty key>`` (401 otherwise).

Run: ``python -m sandboxes.billing_api --port 0 --subscriptions 300``. In tests:
``with BillingSandbox(subscriptions=50) as api: api.url, api.add_event(...), api.faults(...),
api.request_count``.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import json
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd

from sandboxes._http import SandboxServer, check_host

API_VERSION = "2025-03-31.basil"
EMBEDDED_LINES = 10
MAX_BODY = 10 * 2**20

# collection name (URL segment) -> Stripe ``object`` value
COLLECTIONS = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "charges": "charge",
    "invoice_payments": "invoice_payment",
    "refunds": "refund",
    "events": "event",
    "billing/meter_events": "billing.meter_event",
}
COLLECTION_OF = {v: k for k, v in COLLECTIONS.items()}
# simple equality filters a list endpoint accepts
FILTERS = {
    "customers": ("email",),
    "subscriptions": ("customer", "price"),
    "invoices": ("customer", "subscription", "status"),
    "credit_notes": ("invoice", "customer"),
    "charges": ("customer", "payment_intent"),
    "invoice_payments": ("invoice",),
    "refunds": ("charge", "payment_intent"),
    "events": (),
    "billing/meter_events": (),
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param=None):
        self.status, self.message, self.code, self.param = status, message, code, param
        super().__init__(message)


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

    def bulk_load(self, objs: Iterable[dict]) -> None:
        for o in objs:
            self.objs[str(o["id"])] = o
            self._json.pop(str(o["id"]), None)
        self.keys = sorted((int(o.get("created") or 0), i) for i, o in self.objs.items())

    def json(self, oid: str) -> bytes:
        b = self._json.get(oid)
        if b is None:
            b = self._json[oid] = _dumps(self._render(self.objs[oid]))
        return b

    def key_of(self, oid: str) -> tuple[int, str]:
        obj = self.objs.get(oid)
        if obj is None:
            raise ApiError(
                400, f"No such {COLLECTIONS.get(self.name, 'object')}: '{oid}'", "resource_missing"
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

    def pos(oid):
        try:
            return ids.index(oid)
        except ValueError:
            raise ApiError(400, f"No such line item: '{oid}'", "resource_missing") from None

    if ending_before is not None:
        stop = pos(ending_before)
        start = max(0, stop - limit)
        return items[start:stop], start > 0
    start = 0 if starting_after is None else pos(starting_after) + 1
    return items[start : start + limit], start + limit < len(items)


# -------------------------------------------------------------------------------- rendering


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


RENDER = {
    "invoices": render_invoice,
    "credit_notes": render_credit_note,
    "subscriptions": render_subscription,
}


class _Builder:
    """Canonical file-drop records -> Stripe-shaped objects and a derived events feed."""

    def __init__(self, folder: Path):
        from sync_core.demo import generator as g

        self.tier_units = getattr(g, "USAGE_TIER_UNITS", 1000)
        self.tier2_price = getattr(g, "_USAGE_PRICE_2", 1)
        r = {
            name: _records(folder, name)
            for name in (
                "customers",
                "subscription_contracts",
                "usage_events",
                "invoices",
                "invoice_lines",
                "credit_notes",
                "credit_note_lines",
                "payments",
            )
        }
        self.r = r
        self.item_sub = {}
        for row in r["invoice_lines"] + r["usage_events"]:
            if row.get("subscription_item_id") and row.get("subscription_id"):
                self.item_sub[row["subscription_item_id"]] = row["subscription_id"]
        self.versions: dict[str, list[dict]] = {}
        for row in sorted(r["subscription_contracts"], key=lambda x: x["version"] or 0):
            self.versions.setdefault(row["contract_id"], []).append(row)
        self.prices: dict[str, dict] = {}
        self.events: list[tuple[int, int, str, str, dict]] = []  # created, order, type, id, obj

    def sub_of(self, item_id: str) -> str:
        if item_id in self.item_sub:
            return self.item_sub[item_id]
        parts = item_id.split("_")
        return "sub_" + "_".join(parts[1:-1]) if len(parts) >= 3 else "sub_" + item_id

    def event(self, created, etype: str, obj: dict, order: int = 0) -> None:
        if created is None:
            return
        self.events.append((int(created), order, etype, str(obj["id"]), copy.deepcopy(obj)))

    # -- prices
    def price(self, v: dict) -> dict:
        pid = v["price_id"]
        if pid not in self.prices:
            metered = bool(v["metered"])
            p = {
                "id": pid,
                "object": "price",
                "active": True,
                "billing_scheme": "tiered" if metered else "per_unit",
                "created": v["effective_at"],
                "currency": str(v["currency"]).lower(),
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": None,
                "product": v["plan_id"],
                "recurring": {
                    "interval": v["interval"],
                    "interval_count": 1,
                    "meter": "mtr_api_calls" if metered else None,
                    "trial_period_days": None,
                    "usage_type": "metered" if metered else "licensed",
                },
                "tax_behavior": "exclusive",
                "tiers_mode": "graduated" if metered else None,
                "transform_quantity": None,
                "type": "recurring",
                "unit_amount": None if metered else v["unit_amount"],
                "unit_amount_decimal": None if metered else str(v["unit_amount"]),
            }
            if metered:
                p["tiers"] = [
                    {
                        "flat_amount": None,
                        "flat_amount_decimal": None,
                        "unit_amount": v["unit_amount"],
                        "unit_amount_decimal": str(v["unit_amount"]),
                        "up_to": self.tier_units,
                    },
                    {
                        "flat_amount": None,
                        "flat_amount_decimal": None,
                        "unit_amount": self.tier2_price,
                        "unit_amount_decimal": str(self.tier2_price),
                        "up_to": None,
                    },
                ]
            self.prices[pid] = p
        return self.prices[pid]

    def line_price(self, item: str | None, product: str, start: int) -> str | None:
        vs = self.versions.get(item or "", [])
        if not vs:
            return None
        suffix = product.split("_", 1)[-1]
        for v in vs:
            if str(v["plan_id"]).split("_", 1)[-1] == suffix:
                return v["price_id"]
        past = [v for v in vs if (v["effective_at"] or 0) <= start]
        return (past[-1] if past else vs[0])["price_id"]

    # -- objects
    def customers(self) -> list[dict]:
        out = []
        for c in self.r["customers"]:
            meta = {"legal_entity": c["entity_id"]}
            if c.get("erp_customer_id"):
                meta["erp_customer_id"] = c["erp_customer_id"]
            obj = {
                "id": c["customer_id"],
                "object": "customer",
                "address": {
                    "city": None,
                    "country": c["country"],
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "balance": 0,
                "created": c["created_at"],
                "currency": str(c["currency"]).lower(),
                "default_source": None,
                "delinquent": False,
                "description": None,
                "email": c.get("email"),
                "invoice_prefix": c["customer_id"][-7:].upper(),
                "livemode": False,
                "metadata": meta,
                "name": c["name"],
                "phone": None,
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
            out.append(obj)
            self.event(c["created_at"], "customer.created", obj)
        return out

    def subscriptions(self) -> list[dict]:
        period: dict[str, tuple[int, int]] = {}
        for ln in self.r["invoice_lines"]:
            it = ln.get("subscription_item_id")
            if it and ln["line_type"] != "invoiceitem":
                cur = period.get(it)
                if cur is None or ln["period_start"] > cur[0]:
                    period[it] = (ln["period_start"], ln["period_end"])
        subs: dict[str, dict] = {}
        for item_id, vs in sorted(self.versions.items()):
            sid = self.sub_of(item_id)
            first, last = vs[0], vs[-1]
            live = [v for v in vs if v["amendment_type"] != "cancel"]
            state = live[-1] if live else last
            canceled = last["amendment_type"] == "cancel"
            s = subs.setdefault(
                sid,
                {
                    "id": sid,
                    "object": "subscription",
                    "billing_cycle_anchor": first["effective_at"],
                    "cancel_at": None,
                    "cancel_at_period_end": False,
                    "canceled_at": None,
                    "collection_method": "charge_automatically",
                    "created": first["effective_at"],
                    "currency": str(first["currency"]).lower(),
                    "customer": first["customer_id"],
                    "days_until_due": None,
                    "default_tax_rates": [],
                    "description": None,
                    "discounts": [],
                    "ended_at": None,
                    "items": {"object": "list", "data": []},
                    "latest_invoice": None,
                    "livemode": False,
                    "metadata": {"legal_entity": last["entity_id"]},
                    "start_date": first["effective_at"],
                    "status": "active",
                    "test_clock": None,
                    "trial_end": None,
                    "trial_start": None,
                    "_versions": [],
                },
            )
            if canceled:
                s.update(
                    status="canceled",
                    canceled_at=last["effective_at"],
                    ended_at=last["effective_at"],
                )
            ps, pe = period.get(item_id, (None, None))
            metered = bool(state["metered"])
            s["items"]["data"].append(
                {
                    "id": item_id,
                    "object": "subscription_item",
                    "created": first["effective_at"],
                    "current_period_end": pe,
                    "current_period_start": ps,
                    "discounts": [],
                    "metadata": {},
                    "price": self.price(state),
                    "quantity": None if metered else state["quantity"],
                    "subscription": sid,
                    "tax_rates": [],
                }
            )
            s["_versions"].extend(vs)
        out = []
        for s in subs.values():
            vs = sorted(s.pop("_versions"), key=lambda v: (v["effective_at"], v["version"]))
            out.append(s)
            snap = render_subscription(s)
            self.event(s["created"], "customer.subscription.created", snap)
            for v in vs:
                if v["version"] > 1:
                    self.event(v["effective_at"], "customer.subscription.updated", snap, 1)
        return out

    def invoices(self) -> list[dict]:
        lines: dict[str, list[dict]] = {}
        for ln in self.r["invoice_lines"]:
            lines.setdefault(ln["invoice_id"], []).append(ln)
        paid_at: dict[str, int] = {}
        for p in self.r["payments"]:
            if p["kind"] == "payment" and p["status"] == "succeeded" and p.get("invoice_id"):
                paid_at[p["invoice_id"]] = p["created_at"]
        out = []
        for inv in self.r["invoices"]:
            iid = inv["invoice_id"]
            ccy = str(inv["currency"]).lower()
            data = [self.line(ln, ccy) for ln in sorted(lines.get(iid, []), key=_line_order)]
            paid = inv["status"] == "paid"
            obj = {
                "id": iid,
                "object": "invoice",
                "account_country": None,
                "amount_due": inv["total"],
                "amount_paid": inv["total"] if paid else 0,
                "amount_remaining": 0 if paid else inv["total"],
                "attempt_count": 1 if paid else 0,
                "attempted": paid,
                "auto_advance": False,
                "billing_reason": "subscription_cycle" if inv.get("subscription_id") else "manual",
                "collection_method": "charge_automatically",
                "created": inv["finalized_at"],
                "currency": ccy,
                "customer": inv["customer_id"],
                "description": None,
                "discounts": [],
                "due_date": None,
                "effective_at": inv["finalized_at"],
                "lines": {"object": "list", "data": data},
                "livemode": False,
                "metadata": {"legal_entity": inv["entity_id"], "fx_rate": inv["fx_rate"]},
                "number": inv.get("number"),
                "parent": {
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": None,
                        "subscription": inv["subscription_id"],
                    },
                    "type": "subscription_details",
                }
                if inv.get("subscription_id")
                else None,
                "period_end": inv["finalized_at"],
                "period_start": inv["finalized_at"],
                "status": inv["status"],
                "status_transitions": {
                    "finalized_at": inv["finalized_at"],
                    "marked_uncollectible_at": inv.get("uncollectible_at"),
                    "paid_at": paid_at.get(iid) if paid else None,
                    "voided_at": inv.get("voided_at"),
                },
                "subtotal": inv["subtotal"],
                "subtotal_excluding_tax": inv["subtotal"],
                "total": inv["total"],
                "total_discount_amounts": [],
                "total_excluding_tax": inv["subtotal"],
                "total_pretax_credit_amounts": [],
                "total_taxes": _tax_entries(
                    inv["subtotal"], inv["tax"], "exclusive", f"txr_{inv['entity_id']}"
                ),
            }
            out.append(obj)
            fin = {
                **obj,
                "status": "open",
                "amount_paid": 0,
                "amount_remaining": inv["total"],
                "status_transitions": {**obj["status_transitions"], "paid_at": None},
            }
            fin["status_transitions"]["voided_at"] = None
            fin["status_transitions"]["marked_uncollectible_at"] = None
            self.event(inv["finalized_at"], "invoice.finalized", render_invoice(fin))
            if paid and iid in paid_at:
                self.event(paid_at[iid], "invoice.paid", render_invoice(obj), 2)
            if inv["status"] == "void":
                self.event(inv.get("voided_at"), "invoice.voided", render_invoice(obj), 2)
            if inv.get("uncollectible_at"):
                self.event(inv["uncollectible_at"], "invoice.marked_uncollectible",
                           render_invoice(obj), 2)  # fmt: skip
        return out

    def line(self, ln: dict, ccy: str) -> dict:
        amount, tax = ln["amount"], ln["tax_amount"]
        inclusive = ln["tax_behavior"] == "inclusive"
        item = ln.get("subscription_item_id")
        one_off = ln["line_type"] == "invoiceitem"
        if item:
            parent = {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": f"ii_{ln['line_id']}" if one_off else None,
                    "proration": bool(ln["proration"]),
                    "proration_details": {"credited_items": None},
                    "subscription": ln.get("subscription_id"),
                    "subscription_item": item,
                },
                "type": "subscription_item_details",
            }
        else:
            parent = {
                "invoice_item_details": {
                    "invoice_item": f"ii_{ln['line_id']}",
                    "proration": bool(ln["proration"]),
                    "proration_details": {"credited_items": None},
                    "subscription": ln.get("subscription_id"),
                },
                "subscription_item_details": None,
                "type": "invoice_item_details",
            }
        gross = amount + (tax if inclusive else 0)
        qty = ln["quantity"]
        return {
            "id": ln["line_id"],
            "object": "line_item",
            "amount": gross,
            "currency": ccy,
            "description": f"{qty} x {ln['product_id']}",
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": ln["invoice_id"],
            "livemode": False,
            "metadata": {},
            "parent": parent,
            "period": {"end": ln["period_end"], "start": ln["period_start"]},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {
                    "price": self.line_price(item, ln["product_id"], ln["period_start"]),
                    "product": ln["product_id"],
                },
                "type": "price_details",
                "unit_amount_decimal": str(gross // qty) if qty else None,
            },
            "quantity": qty,
            "subtotal": gross,
            "taxes": _tax_entries(
                amount, tax, "inclusive" if inclusive else "exclusive", "txr_line"
            ),
        }

    def payments(self) -> tuple[list[dict], list[dict], list[dict]]:
        """(charges, invoice payments, refunds)."""
        refunds_of: dict[str, list[dict]] = {}
        charge_of_invoice: dict[str, str] = {}
        for p in self.r["payments"]:
            if p["kind"] == "payment" and p["status"] == "succeeded" and p.get("invoice_id"):
                charge_of_invoice[p["invoice_id"]] = p["payment_id"]
        for p in self.r["payments"]:
            if p["kind"] == "refund":
                ch = charge_of_invoice.get(p.get("invoice_id"))
                p["_charge"] = ch
                if ch:
                    refunds_of.setdefault(ch, []).append(p)
        charges, ips, refunds = [], [], []
        for p in self.r["payments"]:
            meta = {"legal_entity": p["entity_id"], "fx_rate": p["fx_rate"]}
            if p["kind"] == "refund":
                obj = {
                    "id": p["payment_id"],
                    "object": "refund",
                    "amount": p["amount"],
                    "balance_transaction": None,
                    "charge": p.get("_charge"),
                    "created": p["created_at"],
                    "currency": str(p["currency"]).lower(),
                    "customer": p["customer_id"],
                    "metadata": {**meta, "invoice_id": p.get("invoice_id")},
                    "payment_intent": None,
                    "reason": "requested_by_customer",
                    "status": "succeeded" if p["status"] == "succeeded" else "failed",
                }
                refunds.append(obj)
                self.event(p["created_at"], "refund.created", obj, 3)
                continue
            ok = p["status"] == "succeeded"
            refunded = sum(r["amount"] for r in refunds_of.get(p["payment_id"], []))
            ch = {
                "id": p["payment_id"],
                "object": "charge",
                "amount": p["amount"],
                "amount_captured": p["amount"] if ok else 0,
                "amount_refunded": 0,
                "balance_transaction": None,
                "captured": ok,
                "created": p["created_at"],
                "currency": str(p["currency"]).lower(),
                "customer": p["customer_id"],
                "description": None,
                "failure_code": None if ok else "card_declined",
                "failure_message": None if ok else "Your card was declined.",
                "livemode": False,
                "metadata": {**meta, "invoice_id": p.get("invoice_id")},
                "paid": ok,
                "payment_intent": None,
                "refunded": False,
                "status": p["status"],
            }
            final = {**ch, "amount_refunded": refunded, "refunded": refunded >= p["amount"]}
            charges.append(final)
            self.event(p["created_at"], "charge.succeeded" if ok else "charge.failed", ch, 1)
            if ok and p.get("invoice_id"):
                ips.append(
                    {
                        "id": f"inpay_{p['payment_id']}",
                        "object": "invoice_payment",
                        "amount_paid": p["amount"],
                        "amount_requested": p["amount"],
                        "created": p["created_at"],
                        "currency": str(p["currency"]).lower(),
                        "invoice": p["invoice_id"],
                        "is_default": True,
                        "livemode": False,
                        "payment": {"charge": p["payment_id"], "type": "charge"},
                        "status": "paid",
                        "status_transitions": {"canceled_at": None, "paid_at": p["created_at"]},
                    }
                )
            done = 0
            for r in sorted(refunds_of.get(p["payment_id"], []), key=lambda x: x["created_at"]):
                done += r["amount"]
                snap = {**ch, "amount_refunded": done, "refunded": done >= p["amount"]}
                self.event(r["created_at"], "charge.refunded", snap, 4)
        return charges, ips, refunds

    def credit_notes(self) -> list[dict]:
        lines: dict[str, list[dict]] = {}
        for ln in self.r["credit_note_lines"]:
            lines.setdefault(ln["credit_note_id"], []).append(ln)
        refund_of = {
            p["credit_note_id"]: p["payment_id"]
            for p in self.r["payments"]
            if p["kind"] == "refund" and p.get("credit_note_id")
        }
        out = []
        for cn in self.r["credit_notes"]:
            cid, ccy = cn["credit_note_id"], str(cn["currency"]).lower()
            data = []
            for ln in sorted(lines.get(cid, []), key=lambda x: x["credit_note_line_id"]):
                key = ln.get("invoice_line_key")
                il = key.split("/", 1)[1] if key else None
                data.append(
                    {
                        "id": ln["credit_note_line_id"],
                        "object": "credit_note_line_item",
                        "amount": ln["amount"],
                        "description": "Credit" if il is None else f"Credit for {il}",
                        "discount_amount": 0,
                        "discount_amounts": [],
                        "invoice_line_item": il,
                        "livemode": False,
                        "metadata": {},
                        "pretax_credit_amounts": [],
                        "quantity": 1,
                        "tax_rates": [],
                        "taxes": _tax_entries(ln["amount"], ln["tax_amount"], "exclusive", "txr"),
                        "type": "invoice_line_item" if il else "custom_line_item",
                        "unit_amount": None if il else ln["amount"],
                        "unit_amount_decimal": None if il else str(ln["amount"]),
                    }
                )
            post = cn["type"] == "post_payment"
            refund = cn["refund_amount"]
            obj = {
                "id": cid,
                "object": "credit_note",
                "amount": cn["total"],
                "amount_shipping": 0,
                "created": cn["issued_at"],
                "currency": ccy,
                "customer": cn["customer_id"],
                "customer_balance_transaction": f"cbtxn_{cid}"
                if cn["credit_balance_amount"]
                else None,
                "discount_amount": 0,
                "discount_amounts": [],
                "effective_at": cn["issued_at"],
                "invoice": cn["invoice_id"],
                "lines": {"object": "list", "data": data},
                "livemode": False,
                "memo": None,
                "metadata": {"legal_entity": cn["entity_id"]},
                "number": f"{cn['invoice_id']}-CN",
                "out_of_band_amount": cn["out_of_band_amount"] or None,
                "post_payment_amount": cn["total"] if post else 0,
                "pre_payment_amount": 0 if post else cn["total"],
                "pretax_credit_amounts": [],
                "reason": cn.get("reason"),
                "refunds": [
                    {
                        "amount_refunded": refund,
                        "payment_record_refund": None,
                        "refund": refund_of.get(cid),
                        "type": "refund",
                    }
                ]
                if refund
                else [],
                "status": cn["status"],
                "subtotal": cn["subtotal"],
                "subtotal_excluding_tax": cn["subtotal"],
                "total": cn["total"],
                "total_excluding_tax": cn["subtotal"],
                "total_taxes": _tax_entries(cn["subtotal"], cn["tax"], "exclusive", "txr"),
                "type": cn["type"],
                "voided_at": cn.get("voided_at"),
            }
            out.append(obj)
            issued = {**obj, "status": "issued", "voided_at": None}
            self.event(cn["issued_at"], "credit_note.created", render_credit_note(issued), 1)
            if cn["status"] == "void":
                self.event(cn.get("voided_at"), "credit_note.voided", render_credit_note(obj), 2)
        return out

    def meter_events(self) -> list[dict]:
        return [
            {
                "id": u["event_id"],  # sandbox only: Stripe meter events have no id
                "object": "billing.meter_event",
                "created": u["timestamp"],
                "event_name": u["metric"],
                "identifier": u["event_id"],
                "livemode": False,
                "payload": {
                    "stripe_customer_id": u["customer_id"],
                    "subscription_item": u["subscription_item_id"],
                    "value": str(u["quantity"]),
                },
                "timestamp": u["timestamp"],
            }
            for u in self.r["usage_events"]
        ]


def _line_order(ln: dict):
    return ln["line_id"], ln["line_key"]


# -------------------------------------------------------------------------------- state


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
        b = _Builder(folder)
        c = self.collections
        c["customers"].bulk_load(b.customers())
        c["subscriptions"].bulk_load(b.subscriptions())
        c["invoices"].bulk_load(b.invoices())
        c["credit_notes"].bulk_load(b.credit_notes())
        charges, ips, refunds = b.payments()
        c["charges"].bulk_load(charges)
        c["invoice_payments"].bulk_load(ips)
        c["refunds"].bulk_load(refunds)
        c["billing/meter_events"].bulk_load(b.meter_events())
        self.prices.update(b.prices)
        events = []
        for created, _order, etype, _oid, obj in sorted(b.events, key=lambda e: e[:2] + e[3:4]):
            events.append(self._event_obj(etype, obj, created))
        c["events"].bulk_load(events)

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


# -------------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BillingSandbox/1.0"
    disable_nagle_algorithm = True
    timeout = 120
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        with state.lock:
            state.request_count += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return self._error(ApiError(413, "Request body too large."))
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        q = parse_qs(parts.query, keep_blank_values=True)
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self._error(
                ApiError(
                    401,
                    "You did not provide an API key. Provide it in the Authorization header "
                    "(Authorization: Bearer YOUR_SECRET_KEY).",
                ),
                "invalid_request_error",
            )
        try:
            if path.startswith("/sandbox/"):
                return self._send(200, self._sandbox(method, path, body))
            fault = state.draw_fault()
            if fault == "burst_disconnect":
                state.count(0)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            if fault == "burst_429":
                ra = state.faults["retry_after_s"]
                return self._error(
                    ApiError(429, "Too many requests hit the API too quickly.", "rate_limit"),
                    "invalid_request_error",
                    {"Retry-After": f"{ra:g}"},
                )
            if fault in ("burst_500", "error_rate_500"):
                return self._error(ApiError(500, "An unknown error occurred."), "api_error")
            if method != "GET":
                raise ApiError(405, f"Unrecognized request URL ({method}: {path}).")
            slow = state.faults["slow_page_ms"]
            if slow > 0:
                time.sleep(slow / 1000)
            self._send(200, self._route(path, q))
        except ApiError as exc:
            self._error(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500, like a real server
            self._error(ApiError(500, f"{type(exc).__name__}: {exc}"), "api_error")

    def _route(self, path: str, q) -> bytes:
        state = self.server.state
        if not path.startswith("/v1/"):
            raise ApiError(404, f"Unrecognized request URL (GET: {path}).")
        rest = path[4:]
        if rest in state.collections:
            return state.list(rest, q)
        if rest == "subscription_items":
            return state.subscription_items(q)
        segs = rest.split("/")
        if rest.startswith("billing/meter_events/") and len(segs) == 3:
            return state.retrieve("billing/meter_events", segs[2])
        if len(segs) == 2 and segs[0] == "prices":
            return state.price(segs[1], q)
        if len(segs) == 2 and segs[0] in state.collections:
            return state.retrieve(segs[0], segs[1])
        if len(segs) == 3 and segs[0] in ("invoices", "credit_notes") and segs[2] == "lines":
            return state.nested(segs[0], segs[1], "lines", q)
        raise ApiError(404, f"Unrecognized request URL (GET: {path}).")

    def _sandbox(self, method: str, path: str, body: bytes) -> bytes:
        state = self.server.state
        if path == "/sandbox/stats" and method == "GET":
            return _dumps(state.stats())
        if method != "POST":
            raise ApiError(405, f"{method} not allowed on {path}")
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"invalid JSON body: {exc.msg}") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "the body must be a JSON object")
        if path == "/sandbox/events":
            if not payload.get("type"):
                raise ApiError(400, "Missing required param: type.", "parameter_missing")
            return _dumps(
                state.add_event(payload["type"], payload.get("object"), payload.get("created"))
            )
        if path == "/sandbox/faults":
            return _dumps(state.set_faults(**payload))
        raise ApiError(404, f"Unrecognized request URL (POST: {path}).")

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.server.state.count(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", f"req_{threading.get_ident():x}_{time.monotonic_ns():x}")
            self.send_header("Stripe-Version", API_VERSION)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _error(self, exc: ApiError, etype: str = "invalid_request_error", headers=None) -> None:
        err = {"type": etype, "message": exc.message}
        if exc.code:
            err["code"] = exc.code
        if exc.param:
            err["param"] = exc.param
        self._send(exc.status, _dumps({"error": err}), headers)


class _Server(SandboxServer):
    handler = _Handler


def _prepare_folder(
    data_dir, subscriptions: int, seed: int, year: int, bad_rows: int
) -> tuple[Path | None, tempfile.TemporaryDirectory | None]:
    """An existing canonical folder, or a fresh demo generation (None when empty)."""
    if data_dir is not None and (Path(data_dir) / "invoices.csv").exists():
        return Path(data_dir), None
    if subscriptions <= 0:
        return None, None
    from sync_core.demo.generator import generate

    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="billing-sandbox-")
        data_dir = tmp.name
    generate(data_dir, subscriptions=subscriptions, seed=seed, year=year, bad_rows=bad_rows)
    return Path(data_dir), tmp


# -------------------------------------------------------------------------------- Python API


class BillingSandbox:
    """The sandbox billing API on a background thread, on a free loopback port.

    ``BillingSandbox(data_dir)`` serves an existing canonical folder (or generates into it when
    empty); ``BillingSandbox(subscriptions=300, seed=7, year=2025, bad_rows=0)`` generates into
    a temporary folder; ``subscriptions=0`` starts empty (see :meth:`add_objects`).
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        subscriptions: int = 300,
        seed: int = 7,
        year: int = 2025,
        bad_rows: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ):
        folder, self._tmp = _prepare_folder(data_dir, subscriptions, seed, year, bad_rows)
        self.data_dir = folder
        self.state = BillingState(folder)
        self._server = _Server((check_host(host), port), self.state, verbose)
        h, p = self._server.server_address[:2]
        self.url = f"http://{h}:{p}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._closed = False

    @property
    def request_count(self) -> int:
        return self.state.request_count

    def add_event(self, type: str, obj: dict, created: int | None = None) -> dict:  # noqa: A002
        """Upsert ``obj`` into its collection and append a ``type`` event; returns the event."""
        return self.state.add_event(type, obj, created)

    def add_objects(self, collection: str, objs: Iterable[dict]) -> int:
        """Bulk-load objects into a collection (``customers``, ``invoices``, ...), no events."""
        return self.state.add_objects(collection, objs)

    def faults(self, **settings) -> dict:
        """Set fault injection: burst_429, burst_500, burst_disconnect, retry_after_s,
        error_rate_500, slow_page_ms, seed. Returns the current settings."""
        return self.state.set_faults(**settings)

    def ids(self, collection: str) -> list[str]:
        """Every id of a collection, newest first (what a full paging must return)."""
        with self.state.lock:
            return [k[1] for k in reversed(self.state.collections[collection].keys)]

    def objects(self, collection: str) -> list[dict]:
        """The stored objects (invoices with all their lines), newest first."""
        with self.state.lock:
            coll = self.state.collections[collection]
            return [copy.deepcopy(coll.objs[k[1]]) for k in reversed(coll.keys)]

    def stats(self) -> dict:
        return self.state.stats()

    def prerender(self, collection: str) -> None:
        """Render (and cache) every object's JSON now, e.g. before a timed run."""
        with self.state.lock:
            coll = self.state.collections[collection]
            for oid in coll.objs:
                coll.json(oid)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> BillingSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BillingSandbox({self.url})"


# -------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sandboxes.billing_api", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address only")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--data-dir", type=Path, default=None, help="canonical file-drop folder")
    p.add_argument("--subscriptions", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--bad-rows", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    a = p.parse_args(argv)
    folder, tmp = _prepare_folder(a.data_dir, a.subscriptions, a.seed, a.year, a.bad_rows)
    state = BillingState(folder)
    server = _Server((check_host(a.host), a.port), state, a.verbose)
    host, port = server.server_address[:2]

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"Billing sandbox listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.close_connections()
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
