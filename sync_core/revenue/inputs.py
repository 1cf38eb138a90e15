"""Input checks of the engine: what cannot be recognized goes to quarantine, the rest goes on.

The engine takes the canonical frames (``sync_core.contracts.models``) but does not trust
them: a batch can hold rows that skipped the contract, or documents whose header or lines
were held upstream. Each check yields exception rows (``EXCEPTION_COLUMNS``, owner
``integration``) and the records that pass. A document is recognized whole or not at all: an
invoice with a bad line is held with all its lines, and so are its credit notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sync_core.money import CURRENCIES
from sync_core.revenue.contra_inputs import check_contra
from sync_core.revenue.credit_inputs import _check_credit_notes
from sync_core.revenue.input_rules import (
    RATE_PATTERN,
    Rules,
    _exceptions,
    _integers,
    _period,
    empty_exceptions,
)
from sync_core.revenue.periods import instants_ns, is_nat
from sync_core.revenue.schedule import METHODS

COLUMNS = {
    "legal_entities": ["entity_id", "functional_currency", "recognition_method"],
    "invoices": [
        "invoice_id", "entity_id", "period", "currency", "status", "finalized_at", "voided_at",
        "subtotal", "tax", "total", "fx_rate", "balance_applied", "uncollectible_at",
    ],
    "invoice_lines": [
        "line_key", "invoice_id", "entity_id", "period", "subscription_item_id", "line_type",
        "amount", "currency", "period_start", "period_end",
    ],
    "credit_notes": [
        "credit_note_id", "invoice_id", "entity_id", "period", "currency", "type", "status",
        "issued_at", "voided_at", "subtotal", "tax", "total", "refund_amount",
        "credit_balance_amount", "out_of_band_amount",
    ],
    "credit_note_lines": [
        "credit_note_line_id", "credit_note_id", "entity_id", "period", "invoice_line_key",
        "amount", "currency", "period_start", "period_end",
    ],
    "usage_events": ["subscription_item_id", "quantity", "timestamp"],
    "payments": [
        "payment_id", "entity_id", "period", "kind", "invoice_id", "credit_note_id", "amount",
        "currency", "created_at", "status", "fx_rate",
    ],
}  # fmt: skip


@dataclass
class Checked:
    """Normalized frames that passed, and the exception rows of those that did not."""

    entities: pd.DataFrame
    invoices: pd.DataFrame
    lines: pd.DataFrame
    credit_notes: pd.DataFrame
    credit_lines: pd.DataFrame
    usage: pd.DataFrame
    payments: pd.DataFrame
    exceptions: list[pd.DataFrame] = field(default_factory=list)
    disputes: pd.DataFrame = field(default_factory=pd.DataFrame)  # see contra_inputs
    contra: pd.DataFrame = field(default_factory=pd.DataFrame)  # refund/dispute/uncollectible

    def quarantine(self) -> pd.DataFrame:
        parts = [e for e in self.exceptions if len(e)]
        if not parts:
            return empty_exceptions()
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values(["object_type", "source_id", "rule"], kind="stable").reset_index(
            drop=True
        )


def _frame(df: pd.DataFrame | None, name: str) -> pd.DataFrame:
    """A copy with every column the engine reads (missing ones as nulls), fresh index."""
    df = pd.DataFrame() if df is None else df
    out = df.reset_index(drop=True).copy()
    for col in COLUMNS[name]:
        if col not in out.columns:
            out[col] = pd.Series([None] * len(out), dtype="object")
    return out


def check_inputs(
    invoices,
    invoice_lines,
    credit_notes,
    credit_note_lines,
    usage_events,
    legal_entities,
    payments=None,
    disputes=None,
) -> Checked:
    exc: list[pd.DataFrame] = []
    ent = _frame(legal_entities, "legal_entities").drop_duplicates("entity_id", keep="last")
    ent_ok = ent["functional_currency"].isin(CURRENCIES) & ent["recognition_method"].isin(METHODS)
    ent = ent.assign(period=pd.NaT)
    exc.append(
        _exceptions(ent, ~ent_ok, "legal_entities", "entity_configured",
                    lambda b: [f"functional currency {c!r} / recognition method {m!r} invalid"
                               for c, m in zip(b["functional_currency"],
                                               b["recognition_method"])])
    )  # fmt: skip
    ent = ent[ent_ok].set_index("entity_id")

    inv = _check_invoices(_frame(invoices, "invoices"), ent, exc)
    lines = _check_lines(_frame(invoice_lines, "invoice_lines"), inv, exc)
    inv, lines = _check_invoice_totals(inv, lines, exc)
    cns, cn_lines = _check_credit_notes(
        _frame(credit_notes, "credit_notes"), _frame(credit_note_lines, "credit_note_lines"),
        inv, lines, exc,
    )  # fmt: skip
    usage = _frame(usage_events, "usage_events")
    qty, qty_ok = _integers(usage["quantity"])
    ts = instants_ns(usage["timestamp"])
    keep = qty_ok & ~is_nat(ts) & usage["subscription_item_id"].notna().to_numpy()
    usage = pd.DataFrame(
        {"item": usage["subscription_item_id"].to_numpy()[keep], "quantity": qty[keep],
         "ts": ts[keep]}
    )  # fmt: skip
    pays = _check_payments(_frame(payments, "payments"), inv, cns, ent, exc)
    return check_contra(Checked(ent, inv, lines, cns, cn_lines, usage, pays, exc), disputes)


def _check_invoices(inv: pd.DataFrame, ent: pd.DataFrame, exc: list) -> pd.DataFrame:
    inv = inv.drop_duplicates("invoice_id", keep="last").reset_index(drop=True)
    inv["finalized_ns"] = instants_ns(inv["finalized_at"])
    inv["voided_ns"] = instants_ns(inv["voided_at"])
    inv["period"] = _period(inv, "finalized_at")
    rule = Rules(inv, "invoices", exc)

    for col in ("subtotal", "tax", "total"):
        values, ok = _integers(inv[col])
        rule(~ok, f"{col}_integer", lambda b, c=col: [f"{c} {v!r} is not integer minor units"
                                                     for v in b[c]])  # fmt: skip
        inv[col] = values
    rule(~inv["currency"].isin(CURRENCIES), "currency_known",
         lambda b: [f"unknown currency {c!r}" for c in b["currency"]])  # fmt: skip
    rule(
        ~inv["entity_id"].isin(ent.index),
        "entity_known",
        lambda b: [f"legal entity {e!r} is unknown or not configured" for e in b["entity_id"]],
    )
    rule(is_nat(inv["finalized_ns"].to_numpy()) | inv["period"].isna().to_numpy(),
         "finalized_at_present", "invoice has no finalization time")  # fmt: skip
    is_void = (inv["status"] == "void").to_numpy()
    rule(is_void & is_nat(inv["voided_ns"].to_numpy()), "void_has_voided_at",
         "void invoice without voided_at")  # fmt: skip
    rate = inv["fx_rate"].astype("string")
    same = (inv["currency"] == inv["entity_id"].map(ent["functional_currency"])).to_numpy()
    rate = rate.where(~(rate.isna().to_numpy() & same), "1")  # same currency: rate 1
    rate_ok = rate.str.fullmatch(RATE_PATTERN).fillna(False).to_numpy(dtype=bool)
    rate_ok &= pd.to_numeric(rate, errors="coerce").fillna(0).to_numpy() > 0
    rule(
        ~rate_ok,
        "fx_rate_valid",
        lambda b: [f"exchange rate {r!r} is not a positive decimal" for r in b["fx_rate"]],
    )
    rule(inv["total"].to_numpy() != inv["subtotal"].to_numpy() + inv["tax"].to_numpy(),
         "total_is_subtotal_plus_tax", "total differs from subtotal + tax")  # fmt: skip
    _check_balance_applied(inv, rule)
    inv["fx_rate"] = rate.astype(object)
    inv = inv[~rule.bad].reset_index(drop=True)
    inv["functional_currency"] = inv["entity_id"].map(ent["functional_currency"])
    inv["method"] = inv["entity_id"].map(ent["recognition_method"])
    inv["is_void"] = inv["status"] == "void"
    return inv


def _check_balance_applied(inv: pd.DataFrame, rule) -> None:
    """``balance_applied`` (null: 0) is a non-negative integer, at most the invoice total."""
    given = inv["balance_applied"]
    values, ok = _integers(given.where(given.notna(), 0))
    rule(~ok | (values < 0), "balance_applied_integer",
         lambda b: [f"balance_applied {v!r} is not a non-negative integer"
                    for v in b["balance_applied"]])  # fmt: skip
    inv["balance_applied"] = values
    rule((values > 0) & (values > inv["total"].to_numpy()), "balance_applied_within_total",
         lambda b: [f"balance_applied {a} exceeds the invoice total {t}"
                    for a, t in zip(b["balance_applied"], b["total"])])  # fmt: skip


def _check_lines(lines: pd.DataFrame, inv: pd.DataFrame, exc: list) -> pd.DataFrame:
    lines = lines.reset_index(drop=True)
    lines["start_ns"] = instants_ns(lines["period_start"])
    lines["end_ns"] = instants_ns(lines["period_end"])
    by_inv = inv.set_index("invoice_id")
    header_entity = lines["invoice_id"].map(by_inv["entity_id"])
    lines["entity_id"] = lines["entity_id"].where(lines["entity_id"].notna(), header_entity)
    lines["period"] = lines["period"].where(
        lines["period"].notna(), lines["invoice_id"].map(by_inv["period"])
    )
    rule = Rules(lines, "invoice_lines", exc)

    rule(lines["line_key"].isna() | lines["line_key"].duplicated(keep=False), "line_key_unique",
         "line_key missing or not unique")  # fmt: skip
    amount, ok = _integers(lines["amount"])
    rule(
        ~ok,
        "amount_integer",
        lambda b: [f"amount {v!r} is not integer minor units" for v in b["amount"]],
    )
    lines["amount"] = amount
    s, e = lines["start_ns"].to_numpy(), lines["end_ns"].to_numpy()
    rule(is_nat(s) | is_nat(e), "service_period_present", "service period start or end missing")
    rule(e <= s, "period_start_before_end",
         lambda b: [f"service period [{a}, {z}) is empty or reversed"
                    for a, z in zip(b["period_start"], b["period_end"])])  # fmt: skip
    rule(~lines["currency"].isin(CURRENCIES), "currency_known",
         lambda b: [f"unknown currency {c!r}" for c in b["currency"]])  # fmt: skip
    rule(
        ~lines["invoice_id"].isin(by_inv.index),
        "header_exists",
        lambda b: [f"invoice {i!r} is unknown or quarantined" for i in b["invoice_id"]],
    )
    rule(
        lines["currency"].to_numpy() != lines["invoice_id"].map(by_inv["currency"]).to_numpy(),
        "line_currency_matches",
        "line currency differs from the invoice currency",
    )
    lines["bad"] = rule.bad
    return lines


def _check_invoice_totals(inv: pd.DataFrame, lines: pd.DataFrame, exc: list):
    """Hold invoices with a bad line or whose lines do not add up to the subtotal."""
    bad_inv = set(lines.loc[lines["bad"], "invoice_id"])
    held = inv["invoice_id"].isin(bad_inv).to_numpy()
    exc.append(
        _exceptions(
            inv,
            held,
            "invoices",
            "lines_valid",
            "a line of the invoice was quarantined; the invoice is held whole",
        )
    )
    good_lines = lines[~lines["bad"]]
    sums = good_lines.groupby("invoice_id")["amount"].sum()
    line_sum = inv["invoice_id"].map(sums).fillna(0).astype(np.int64).to_numpy()
    mismatch = ~held & (line_sum != inv["subtotal"].to_numpy())
    exc.append(_exceptions(inv, mismatch, "invoices", "line_totals_match",
                           lambda b: [f"subtotal {s} differs from the sum of its lines"
                                      for s in b["subtotal"]]))  # fmt: skip
    inv = inv[~(held | mismatch)].reset_index(drop=True)
    lines = good_lines[good_lines["invoice_id"].isin(inv["invoice_id"])]
    return inv, lines.drop(columns="bad").reset_index(drop=True)


def _check_payments(pays, inv, cns, ent, exc):
    pays = pays.drop_duplicates("payment_id", keep="last").reset_index(drop=True)
    pays = pays[pays["status"].fillna("succeeded") == "succeeded"].reset_index(drop=True)
    pays["created_ns"] = instants_ns(pays["created_at"])
    pays["period"] = _period(pays, "created_at")
    by_inv = inv.set_index("invoice_id")
    cn_inv = cns.set_index("credit_note_id")["invoice_id"]
    doc_inv = pays["invoice_id"].where(
        pays["invoice_id"].notna(), pays["credit_note_id"].map(cn_inv)
    )
    pays["doc_invoice_id"] = doc_inv
    rule = Rules(pays, "payments", exc)

    amount, ok = _integers(pays["amount"])
    rule(~ok | (amount <= 0), "amount_integer", "amount is not a positive integer")
    pays["amount"] = amount
    rule(~pays["kind"].isin(["payment", "refund"]), "kind_known", "unknown payment kind")
    rule(~pays["entity_id"].isin(ent.index), "entity_known", "legal entity unknown")
    rule(pays["invoice_id"].notna().to_numpy() & ~pays["invoice_id"].isin(by_inv.index),
         "header_exists", lambda b: [f"invoice {i!r} is unknown or quarantined"
                                     for i in b["invoice_id"]])  # fmt: skip
    rule(pays["credit_note_id"].notna().to_numpy() & ~pays["credit_note_id"].isin(cn_inv.index),
         "credit_note_exists", "credit note unknown or quarantined")  # fmt: skip
    inv_entity = doc_inv.map(by_inv["entity_id"])
    rule(inv_entity.notna().to_numpy() & (inv_entity.to_numpy() != pays["entity_id"].to_numpy()),
         "entity_matches", "payment and invoice belong to different legal entities")  # fmt: skip
    inv_cur = doc_inv.map(by_inv["currency"])
    rule(
        inv_cur.notna().to_numpy() & (inv_cur.to_numpy() != pays["currency"].to_numpy()),
        "currency_matches",
        "payment currency differs from the invoice currency",
    )
    rule(~pays["currency"].isin(CURRENCIES), "currency_known", "unknown currency")
    rate = pays["fx_rate"].astype("string")
    same = (pays["currency"] == pays["entity_id"].map(ent["functional_currency"])).to_numpy()
    rate = rate.where(~(rate.isna().to_numpy() & same), "1")
    rate_ok = rate.str.fullmatch(RATE_PATTERN).fillna(False).to_numpy(dtype=bool)
    rate_ok &= pd.to_numeric(rate, errors="coerce").fillna(0).to_numpy() > 0
    rule(~rate_ok, "fx_rate_valid", "exchange rate is not a positive decimal")
    rule(is_nat(pays["created_ns"].to_numpy()), "created_at_present", "no creation time")
    pays["fx_rate"] = rate.astype(object)
    pays = pays[~rule.bad].reset_index(drop=True)
    pays["functional_currency"] = pays["entity_id"].map(ent["functional_currency"])
    return pays
