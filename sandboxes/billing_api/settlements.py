"""Payments (payment intents, charges, invoice payments, refunds) and credit notes of the
sandbox's builder.

Ids: a file-drop payment ``py_<n>`` of an invoice goes through a PaymentIntent (Stripe's usual
shape for automatically collected invoices) unless the CRC-32 of its id is a multiple of 5
(:func:`via_intent`, about one in five stays a plain charge). Then the PaymentIntent's id is the
canonical payment id ``py_<n>``, its charge is ``ch_<n>`` (``payment_intent: py_<n>``) and the
invoice payment is ``{"type": "payment_intent", "payment_intent": "py_<n>"}``; otherwise the
charge's id is ``py_<n>`` and the invoice payment is ``{"type": "charge", "charge": "py_<n>"}``.
A refund ``re_<n>`` names the succeeded charge of its invoice and, for a PaymentIntent's, the
intent. Invoice payments are ``inpay_<payment id>``; a succeeded charge's and refund's balance
transaction is ``txn_<charge or refund id>`` (:mod:`sandboxes.billing_api.balance`).

Events at the payment's time: ``payment_intent.succeeded`` / ``payment_intent.payment_failed``,
``charge.succeeded`` / ``charge.failed``, ``invoice_payment.paid``; at a refund's,
``refund.created`` and ``charge.refunded`` (the charge with its refunds so far)."""

from __future__ import annotations

import zlib

from sandboxes.billing_api.render import _tax_entries, render_credit_note


def via_intent(payment_id: str) -> bool:
    """Whether an invoice's payment goes through a PaymentIntent: all but the ids whose
    CRC-32 is a multiple of 5 (stable across runs and machines)."""
    return zlib.crc32(payment_id.encode()) % 5 != 0


class SettlementsMixin:
    """Part of :class:`sandboxes.billing_api.builder._Builder` (``self.r``, ``self.event``)."""

    def payments(self) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
        """(payment intents, charges, invoice payments, refunds)."""
        ids: dict[str, tuple[str, str | None]] = {}  # payment id -> (charge id, intent id)
        for p in self.r["payments"]:
            if p["kind"] == "payment":
                pid = p["payment_id"]
                pi = p.get("invoice_id") and via_intent(pid)
                ids[pid] = ("ch_" + pid.removeprefix("py_"), pid) if pi else (pid, None)
        refunds_of: dict[str, list[dict]] = {}
        paid_by: dict[str, str] = {}  # invoice -> its succeeded payment
        for p in self.r["payments"]:
            if p["kind"] == "payment" and p["status"] == "succeeded" and p.get("invoice_id"):
                paid_by[p["invoice_id"]] = p["payment_id"]
        for p in self.r["payments"]:
            if p["kind"] == "refund" and paid_by.get(p.get("invoice_id")):
                refunds_of.setdefault(paid_by[p["invoice_id"]], []).append(p)
        intents, charges, ips, refunds = [], [], [], []
        for p in self.r["payments"]:
            if p["kind"] == "refund":
                refunds.append(self.refund(p, ids.get(paid_by.get(p.get("invoice_id")))))
                continue
            pid, ok = p["payment_id"], p["status"] == "succeeded"
            cid, piid = ids[pid]
            ccy = str(p["currency"]).lower()
            meta = {
                "legal_entity": p["entity_id"],
                "fx_rate": p["fx_rate"],
                "invoice_id": p.get("invoice_id"),
            }
            if piid:
                intent = _intent(p, piid, cid, ok, ccy, meta)
                intents.append(intent)
                etype = "payment_intent.succeeded" if ok else "payment_intent.payment_failed"
                self.event(p["created_at"], etype, intent, 1)
            ch = {
                "id": cid,
                "object": "charge",
                "amount": p["amount"],
                "amount_captured": p["amount"] if ok else 0,
                "amount_refunded": 0,
                "balance_transaction": f"txn_{cid}" if ok else None,
                "captured": ok,
                "created": p["created_at"],
                "currency": ccy,
                "customer": p["customer_id"],
                "description": None,
                "failure_code": None if ok else "card_declined",
                "failure_message": None if ok else "Your card was declined.",
                "livemode": False,
                "metadata": dict(meta),
                "paid": ok,
                "payment_intent": piid,
                "refunded": False,
                "status": p["status"],
            }
            self.event(p["created_at"], "charge.succeeded" if ok else "charge.failed", ch, 1)
            done = 0
            for r in sorted(refunds_of.get(pid, []), key=lambda x: x["created_at"]):
                done += r["amount"]
                snap = {**ch, "amount_refunded": done, "refunded": done >= p["amount"]}
                self.event(r["created_at"], "charge.refunded", snap, 4)
            charges.append({**ch, "amount_refunded": done, "refunded": done >= p["amount"]})
            if ok and p.get("invoice_id"):
                payment = (
                    {"payment_intent": piid, "type": "payment_intent"}
                    if piid
                    else {"charge": cid, "type": "charge"}
                )
                ip = {
                    "id": f"inpay_{pid}",
                    "object": "invoice_payment",
                    "amount_paid": p["amount"],
                    "amount_requested": p["amount"],
                    "created": p["created_at"],
                    "currency": ccy,
                    "invoice": p["invoice_id"],
                    "is_default": True,
                    "livemode": False,
                    "payment": payment,
                    "status": "paid",
                    "status_transitions": {"canceled_at": None, "paid_at": p["created_at"]},
                }
                ips.append(ip)
                self.event(p["created_at"], "invoice_payment.paid", ip, 2)
        return intents, charges, ips, refunds

    def refund(self, p: dict, paid: tuple[str, str | None] | None) -> dict:
        """A refund of the charge ``paid`` (charge id, intent id) of its invoice."""
        ok = p["status"] == "succeeded"
        obj = {
            "id": p["payment_id"],
            "object": "refund",
            "amount": p["amount"],
            "balance_transaction": f"txn_{p['payment_id']}" if ok else None,
            "charge": paid[0] if paid else None,
            "created": p["created_at"],
            "currency": str(p["currency"]).lower(),
            "customer": p["customer_id"],
            "metadata": {
                "legal_entity": p["entity_id"],
                "fx_rate": p["fx_rate"],
                "invoice_id": p.get("invoice_id"),
            },
            "payment_intent": paid[1] if paid else None,
            "reason": "requested_by_customer",
            "status": "succeeded" if ok else "failed",
        }
        self.event(p["created_at"], "refund.created", obj, 3)
        return obj

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


def _intent(p: dict, piid: str, cid: str, ok: bool, ccy: str, meta: dict) -> dict:
    """The PaymentIntent of a payment attempt (a failed one waits for a new payment method)."""
    return {
        "id": piid,
        "object": "payment_intent",
        "amount": p["amount"],
        "amount_capturable": 0,
        "amount_received": p["amount"] if ok else 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "created": p["created_at"],
        "currency": ccy,
        "customer": p["customer_id"],
        "description": None,
        "last_payment_error": None
        if ok
        else {
            "charge": cid,
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "type": "card_error",
        },
        "latest_charge": cid,
        "livemode": False,
        "metadata": dict(meta),
        "payment_method": None,
        "payment_method_types": ["card"],
        "status": "succeeded" if ok else "requires_payment_method",
    }
