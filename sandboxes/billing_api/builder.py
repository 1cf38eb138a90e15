"""Canonical file-drop records -> Stripe-shaped objects and a derived events feed: prices,
customers, subscriptions, invoices and their lines, meter events (payments and credit notes:
:mod:`sandboxes.billing_api.settlements`)."""

from __future__ import annotations

import copy
from pathlib import Path

from sandboxes.billing_api.render import _records, _tax_entries, render_invoice, render_subscription
from sandboxes.billing_api.settlements import SettlementsMixin


class _Builder(SettlementsMixin):
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
    events feed from the canonical folder."""
    b = _Builder(folder)
    c = state.collections
    c["customers"].bulk_load(b.customers())
    c["subscriptions"].bulk_load(b.subscriptions())
    c["invoices"].bulk_load(b.invoices())
    c["credit_notes"].bulk_load(b.credit_notes())
    charges, ips, refunds = b.payments()
    c["charges"].bulk_load(charges)
    c["invoice_payments"].bulk_load(ips)
    c["refunds"].bulk_load(refunds)
    c["billing/meter_events"].bulk_load(b.meter_events())
    state.prices.update(b.prices)
    events = []
    for created, _order, etype, _oid, obj in sorted(b.events, key=lambda e: e[:2] + e[3:4]):
        events.append(state._event_obj(etype, obj, created))
    c["events"].bulk_load(events)
