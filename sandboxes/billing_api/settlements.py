"""Payments (charges, invoice payments, refunds) and credit notes of the sandbox's builder."""

from __future__ import annotations

from sandboxes.billing_api.render import _tax_entries, render_credit_note


class SettlementsMixin:
    """Part of :class:`sandboxes.billing_api.builder._Builder` (``self.r``, ``self.event``)."""

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
