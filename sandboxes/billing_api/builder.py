"""Canonical file-drop records -> Stripe-shaped objects and a derived events feed: customers,
invoices and their lines, meter events (prices and invoice items:
:mod:`sandboxes.billing_api.pricing`; subscriptions and their history:
:mod:`sandboxes.billing_api.history`; payment intents, charges, invoice payments, refunds and
credit notes: :mod:`sandboxes.billing_api.settlements`; balance transactions and payouts:
:mod:`sandboxes.billing_api.balance`).

Each event holds a snapshot of its object at the event's time; ``*.updated`` events also carry
``data.previous_attributes``, the previous values of the top-level fields that changed."""

from __future__ import annotations

import copy
from pathlib import Path

from sandboxes.billing_api.balance import BalanceMixin
from sandboxes.billing_api.history import SubscriptionsMixin
from sandboxes.billing_api.pricing import PricingMixin
from sandboxes.billing_api.render import _records, _tax_entries, _unit_decimal, render_invoice
from sandboxes.billing_api.settlements import SettlementsMixin


class _Builder(PricingMixin, SubscriptionsMixin, SettlementsMixin, BalanceMixin):
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
        # created, order, type, object id, object snapshot, previous_attributes (or None)
        self.events: list[tuple[int, int, str, str, dict, dict | None]] = []

    def sub_of(self, item_id: str) -> str:
        if item_id in self.item_sub:
            return self.item_sub[item_id]
        parts = item_id.split("_")
        return "sub_" + "_".join(parts[1:-1]) if len(parts) >= 3 else "sub_" + item_id

    def event(
        self, created, etype: str, obj: dict, order: int = 0, previous: dict | None = None
    ) -> None:
        """Append an event with a deep copy of ``obj`` as it is now (none when ``created`` is
        None); ``previous``: its ``data.previous_attributes`` (``*.updated`` events only)."""
        if created is None:
            return
        prev = copy.deepcopy(previous) if previous is not None else None
        self.events.append((int(created), order, etype, str(obj["id"]), copy.deepcopy(obj), prev))

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
                "amount_paid": 0,
                "amount_remaining": inv["total"],
                "attempt_count": 0,
                "attempted": False,
                "status": "open",
                "status_transitions": {
                    **obj["status_transitions"],
                    "marked_uncollectible_at": None,
                    "paid_at": None,
                    "voided_at": None,
                },
            }
            self.event(inv["finalized_at"], "invoice.finalized", render_invoice(fin))
            done = {
                "paid": ("invoice.paid", paid_at.get(iid)),
                "void": ("invoice.voided", inv.get("voided_at")),
                "uncollectible": ("invoice.marked_uncollectible", inv.get("uncollectible_at")),
            }.get(inv["status"])
            if done and done[1] is not None:  # open -> its final status (Stripe sends both)
                snap = render_invoice(obj)
                changed = {k: fin[k] for k in obj if k != "lines" and fin[k] != obj[k]}
                self.event(done[1], "invoice.updated", snap, 2, changed)
                self.event(done[1], done[0], snap, 2)
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
                "unit_amount_decimal": _unit_decimal(gross, qty),
            },
            "quantity": qty,
            "subtotal": gross,
            "taxes": _tax_entries(
                amount, tax, "inclusive" if inclusive else "exclusive", "txr_line"
            ),
        }

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


def load(state, folder: Path) -> None:
    """Fill a :class:`~sandboxes.billing_api.state.BillingState`'s collections, prices and
    events feed from the canonical folder. Events are ordered by (time, kind, object id);
    their ids follow the state's sequence (``evt_%010d``)."""
    b = _Builder(folder)
    c = state.collections
    c["prices"].bulk_load(b.all_prices())
    c["customers"].bulk_load(b.customers())
    c["subscriptions"].bulk_load(b.subscriptions())
    c["invoices"].bulk_load(b.invoices())
    c["invoiceitems"].bulk_load(b.invoice_items())
    c["credit_notes"].bulk_load(b.credit_notes())
    intents, charges, ips, refunds = b.payments()
    c["payment_intents"].bulk_load(intents)
    c["charges"].bulk_load(charges)
    c["invoice_payments"].bulk_load(ips)
    c["refunds"].bulk_load(refunds)
    txns, payouts = b.balance(charges, refunds)
    c["balance_transactions"].bulk_load(txns)
    c["payouts"].bulk_load(payouts)
    c["billing/meter_events"].bulk_load(b.meter_events())
    state.prices.update(b.prices)
    events = []
    for created, _order, etype, _oid, obj, prev in sorted(b.events, key=lambda e: e[:2] + e[3:4]):
        ev = state._event_obj(etype, obj, created)
        if prev is not None:
            ev["data"]["previous_attributes"] = prev
        events.append(ev)
    c["events"].bulk_load(events)
