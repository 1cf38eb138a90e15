"""Canonical frames for revenue tests, built document by document.

``Book`` collects legal entities, invoices (with their lines), credit notes, usage events and
payments as plain records and turns them into the canonical frames of
``sync_core.contracts.models`` (``frames()``), validated against the contract unless told
otherwise, so the engine is tested on what the platform really hands it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sync_core.contracts import MODELS

UTC = "UTC"


def ts(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize(UTC) if t.tzinfo is None else t.tz_convert(UTC)


def month(value) -> pd.Timestamp:
    t = ts(value)
    return pd.Timestamp(year=t.year, month=t.month, day=1, tz=UTC)


@dataclass
class Book:
    entity: str = "US01"
    functional: str = "USD"
    method: str = "day"
    entities: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    note_lines: list[dict] = field(default_factory=list)
    usage: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)
    disputes: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.add_entity(self.entity, self.functional, self.method)

    def add_entity(self, entity_id: str, functional: str = "USD", method: str = "day"):
        self.entities.append(
            {"entity_id": entity_id, "name": entity_id, "functional_currency": functional,
             "country": "US", "erp_subsidiary_id": "1", "recognition_method": method}
        )  # fmt: skip
        return self

    def invoice(self, invoice_id: str, finalized_at, lines: list[tuple], *, currency="USD",
                tax: int = 0, fx_rate: str = "1", status: str = "open", voided_at=None,
                entity: str | None = None, customer: str = "cus_1",
                uncollectible_at=None) -> Book:  # fmt: skip
        """``lines``: (line_id, amount, start, end[, line_type[, item]]) tuples."""
        entity = entity or self.entity
        subtotal = 0
        for i, spec in enumerate(lines):
            line_id, amount, start, end, *rest = spec
            line_type = rest[0] if rest else "subscription"
            item = rest[1] if len(rest) > 1 else f"si_{line_id}"
            subtotal += amount
            self.lines.append(
                {"line_key": f"{invoice_id}/{line_id}", "line_id": line_id,
                 "invoice_id": invoice_id, "subscription_id": "sub_1",
                 "subscription_item_id": item, "product_id": "prod_1", "line_type": line_type,
                 "proration": False, "quantity": 1, "amount": amount,
                 "tax_amount": tax if i == 0 else 0, "tax_behavior": "exclusive",
                 "currency": currency, "period_start": ts(start), "period_end": ts(end),
                 "entity_id": entity, "period": month(finalized_at)}
            )  # fmt: skip
        self.invoices.append(
            {"invoice_id": invoice_id, "number": invoice_id.upper(), "customer_id": customer,
             "subscription_id": "sub_1", "currency": currency, "status": status,
             "finalized_at": ts(finalized_at),
             "voided_at": ts(voided_at) if voided_at is not None else pd.NaT,
             "subtotal": subtotal, "tax": tax, "total": subtotal + tax, "fx_rate": fx_rate,
             "uncollectible_at": ts(uncollectible_at) if uncollectible_at is not None else pd.NaT,
             "entity_id": entity, "period": month(finalized_at)}
        )  # fmt: skip
        return self

    def credit_note(self, credit_note_id: str, invoice_id: str, issued_at,
                    lines: list[tuple] | None = None, *, subtotal: int | None = None,
                    tax: int = 0, kind: str = "pre_payment", refund: int = 0,
                    credit_balance: int = 0, out_of_band: int = 0, status: str = "issued",
                    voided_at=None, currency: str = "USD") -> Book:  # fmt: skip
        """``lines``: (line_key or None, amount) tuples; None: a note without lines."""
        inv = next(i for i in self.invoices if i["invoice_id"] == invoice_id)
        if lines is not None:
            subtotal = sum(a for _, a in lines)
            for n, (key, amount) in enumerate(lines):
                self.note_lines.append(
                    {"credit_note_line_id": f"{credit_note_id}_l{n}",
                     "credit_note_id": credit_note_id, "invoice_line_key": key,
                     "amount": amount, "tax_amount": 0, "currency": currency,
                     "entity_id": inv["entity_id"], "period": month(issued_at)}
                )  # fmt: skip
        total = (subtotal or 0) + tax
        if kind == "post_payment" and refund + credit_balance + out_of_band == 0:
            refund = total
        self.notes.append(
            {"credit_note_id": credit_note_id, "invoice_id": invoice_id,
             "customer_id": inv["customer_id"], "currency": currency, "type": kind,
             "status": status, "issued_at": ts(issued_at),
             "voided_at": ts(voided_at) if voided_at is not None else pd.NaT,
             "subtotal": subtotal or 0, "tax": tax, "total": total, "refund_amount": refund,
             "credit_balance_amount": credit_balance, "out_of_band_amount": out_of_band,
             "reason": None, "entity_id": inv["entity_id"], "period": month(issued_at)}
        )  # fmt: skip
        return self

    def use(self, item: str, at, quantity: int, entity: str | None = None) -> Book:
        n = len(self.usage)
        self.usage.append(
            {"event_id": f"evt_{n}", "customer_id": "cus_1", "subscription_id": "sub_1",
             "subscription_item_id": item, "metric": "units", "quantity": quantity,
             "timestamp": ts(at), "entity_id": entity or self.entity, "period": month(at)}
        )  # fmt: skip
        return self

    def pay(self, payment_id: str, invoice_id: str | None, amount: int, at, *,
            fx_rate: str = "1", kind: str = "payment", credit_note_id: str | None = None,
            currency: str = "USD") -> Book:  # fmt: skip
        self.payments.append(
            {"payment_id": payment_id, "kind": kind, "customer_id": "cus_1",
             "invoice_id": invoice_id, "credit_note_id": credit_note_id, "amount": amount,
             "currency": currency, "created_at": ts(at), "status": "succeeded",
             "fx_rate": fx_rate, "entity_id": self.entity, "period": month(at)}
        )  # fmt: skip
        return self

    def dispute(self, dispute_id: str, payment_id: str, amount: int, at, *,
                status: str = "lost", closed_at=None, fee: int = 0, fee_currency: str = "USD",
                fx_rate: str = "1", currency: str = "USD") -> Book:  # fmt: skip
        pay = next(p for p in self.payments if p["payment_id"] == payment_id)
        self.disputes.append(
            {"dispute_id": dispute_id, "payment_id": payment_id,
             "invoice_id": pay["invoice_id"], "customer_id": pay["customer_id"],
             "amount": amount, "currency": currency, "fee": fee, "fee_currency": fee_currency,
             "status": status, "created_at": ts(at),
             "closed_at": ts(closed_at) if closed_at is not None else pd.NaT,
             "fx_rate": fx_rate, "entity_id": self.entity, "period": month(at)}
        )  # fmt: skip
        return self

    def frames(self, validate: bool = True) -> dict[str, pd.DataFrame]:
        raw = {
            "invoices": self.invoices,
            "invoice_lines": self.lines,
            "credit_notes": self.notes,
            "credit_note_lines": self.note_lines,
            "usage_events": self.usage,
            "legal_entities": self.entities,
            "payments": self.payments,
            "disputes": self.disputes,
        }
        out = {}
        for name, records in raw.items():
            model = MODELS[name]
            cols = list(model.to_schema().columns)
            df = pd.DataFrame(records, columns=cols) if records else _empty(model)
            out[name] = model.validate(df) if validate and records else df
        return out


def _empty(model) -> pd.DataFrame:
    schema = model.to_schema()
    return pd.DataFrame({c: pd.Series(dtype=col.dtype.type if col.dtype else object)
                         for c, col in schema.columns.items()})  # fmt: skip


def account_moves(lines: pd.DataFrame, account: str, functional: bool = False) -> pd.Series:
    """Net debit movement of an account per month (positive: debit)."""
    d, c = ("debit_functional", "credit_functional") if functional else ("debit", "credit")
    sel = lines[lines["account"] == account]
    return (sel[d] - sel[c]).groupby(sel["period"]).sum()


def per_month(schedule: pd.DataFrame, column: str) -> pd.Series:
    return schedule.groupby("period")[column].sum()
