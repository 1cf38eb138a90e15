"""Prices and invoice items of the sandbox's builder: the ``prices`` list (every price a
contract version names, ``created`` at its first use) and the ``invoiceitems`` behind the
invoice lines that name an ``invoice_item`` (the demo's proration items, ``ii_<line id>``)."""

from __future__ import annotations

from sandboxes.billing_api.render import _unit_decimal


class PricingMixin:
    """Part of :class:`sandboxes.billing_api.builder._Builder` (``self.r``, ``self.versions``,
    ``self.prices``, ``self.tier_units``, ``self.tier2_price``)."""

    def price(self, v: dict) -> dict:
        """The price of a contract version (made at the first call: call in time order)."""
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

    def all_prices(self) -> list[dict]:
        """Every price a contract version names, made in time order (``created`` = first use)."""
        rows = sorted(
            self.r["subscription_contracts"],
            key=lambda v: (v["effective_at"] or 0, v["version"] or 0, v["contract_id"]),
        )
        for v in rows:
            self.price(v)
        return list(self.prices.values())

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

    def invoice_items(self) -> list[dict]:
        """The invoice items behind the lines with ``invoice_item`` set (Stripe's
        ``invoiceitem``: ``date`` is the line's period start, when the amendment made it;
        ``created`` is kept for the list order and ``created`` filters and is not served)."""
        customer_of = {i["invoice_id"]: i["customer_id"] for i in self.r["invoices"]}
        out = []
        for ln in self.r["invoice_lines"]:
            if ln["line_type"] != "invoiceitem":
                continue
            ccy = str(ln["currency"]).lower()
            gross = ln["amount"] + (ln["tax_amount"] if ln["tax_behavior"] == "inclusive" else 0)
            qty = ln["quantity"]
            sub = ln.get("subscription_id")
            out.append(
                {
                    "id": f"ii_{ln['line_id']}",
                    "object": "invoiceitem",
                    "amount": gross,
                    "created": ln["period_start"],
                    "currency": ccy,
                    "customer": customer_of.get(ln["invoice_id"]),
                    "date": ln["period_start"],
                    "description": f"{qty} x {ln['product_id']}",
                    "discountable": not ln["proration"],
                    "discounts": [],
                    "invoice": ln["invoice_id"],
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "subscription_details": {
                            "subscription": sub,
                            "subscription_item": ln.get("subscription_item_id"),
                        },
                        "type": "subscription_details",
                    }
                    if sub
                    else None,
                    "period": {"end": ln["period_end"], "start": ln["period_start"]},
                    "pricing": {
                        "price_details": {
                            "price": self.line_price(
                                ln.get("subscription_item_id"),
                                ln["product_id"],
                                ln["period_start"],
                            ),
                            "product": ln["product_id"],
                        },
                        "type": "price_details",
                        "unit_amount_decimal": _unit_decimal(gross, qty),
                    },
                    "proration": bool(ln["proration"]),
                    "proration_details": {"credited_items": None},
                    "quantity": qty,
                    "tax_rates": [],
                    "test_clock": None,
                }
            )
        return out
