"""Journal lines of the events that take revenue back (Stripe Revenue Recognition,
examples/contra and methodology/refunds-and-disputes), from the schedule's contra sources.

| event | lines |
|---|---|
| ``refund`` (no credit note) | Dr Refunds (earned part) + Dr DeferredRevenue (unearned part) + Dr TaxLiability (its tax share) / Cr Cash (refund rate) / FxGainLoss |
| ``dispute`` (funds withdrawn) | the same with Disputes; plus Dr Fees / Cr Cash for the dispute fee, in the fee's currency |
| ``dispute_won`` | Dr Cash / Cr Recoverables (the funds returned; revenue and deferred revenue do not change) |
| ``invoice_uncollectible`` | Dr BadDebt (unpaid share of the earned part) + Dr DeferredRevenue (all the unearned part) + Dr TaxLiability (tax share of what is written off) / Cr AccountsReceivable (amount due) / Cr Recoverables (paid share of the unearned part) |
| ``payment`` of an uncollectible invoice (recovery) | Dr Cash / Cr BadDebt (its share of what was written off) / Cr Recoverables (the rest) / FxGainLoss |

Revenue, deferred revenue and contra revenue come from the schedule rows of the event's
sources (at the invoice's rate), cash at the event's own rate; the difference goes to
FxGainLoss (Stripe: "FX loss from a refund or dispute"). Every (document, event) balances per
currency and in the functional currency.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.accounting import (
    CASH,
    DEFERRED,
    FX,
    TAX,
    UNBILLED,
    _doc_rows,
    _lines,
    _terms,
)  # fmt: skip
from sync_core.revenue.allocation import convert_half_even
from sync_core.revenue.contra import CONTRA_ACCOUNT, DISPUTE, REFUND, UNCOLLECTIBLE
from sync_core.revenue.contra_inputs import WITHDRAWN
from sync_core.revenue.periods import is_nat, month_start

AR, BAD_DEBT, RECOVERABLES, FEES = "AccountsReceivable", "BadDebt", "Recoverables", "Fees"
EVENT = {REFUND: "refund", DISPUTE: "dispute", UNCOLLECTIBLE: "invoice_uncollectible"}


def split_payments(pays: pd.DataFrame, invoices: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The payments the plain payment journal books, and the mask of those booked here:
    refunds of an invoice without a credit note, and payments of an invoice after it was
    marked uncollectible (recoveries)."""
    if pays is None or pays.empty:
        return pays, np.zeros(0 if pays is None else len(pays), dtype=bool)
    mine = _refunds(pays) | _recoveries(pays, invoices)
    return pays[~mine].reset_index(drop=True), mine


def contra_lines(schedule, invoices, pays, disputes, events) -> list[pd.DataFrame]:
    """Signed lines (``amount`` debit positive) of every contra event of the batch."""
    if events is None or events.empty:
        events = pd.DataFrame(columns=["event_id", "source_type"])
    parts = [
        _withdrawals(schedule, invoices, events[events["source_type"] == t], t)
        for t in (REFUND, DISPUTE, UNCOLLECTIBLE)
    ]
    if disputes is not None and len(disputes):
        parts += [_fees(disputes), _won(disputes)]
    if pays is not None and len(pays):
        parts.append(_recovery(schedule, invoices, pays, events))
    return [p for p in parts if p is not None and len(p)]


def _refunds(pays: pd.DataFrame) -> np.ndarray:
    return ((pays["kind"] == "refund") & pays["credit_note_id"].isna()
            & pays["invoice_id"].notna()).to_numpy()  # fmt: skip


def _recoveries(pays: pd.DataFrame, invoices: pd.DataFrame) -> np.ndarray:
    at = pays["invoice_id"].map(invoices.set_index("invoice_id")["uncollectible_ns"])
    at = at.fillna(np.iinfo(np.int64).min).to_numpy(np.int64)
    late = ~is_nat(at) & (pays["created_ns"].to_numpy(np.int64) >= at)
    return (pays["kind"] == "payment").to_numpy() & late


def _withdrawals(schedule, invoices, ev: pd.DataFrame, source_type: str):
    """Refunds, disputes and uncollectible invoices: the schedule rows of the event's sources,
    plus its head: tax, and cash (or, uncollectible, receivable), balanced by FxGainLoss (or
    Recoverables)."""
    if ev.empty:
        return None
    rows = _doc_rows(schedule, source_type)
    event = EVENT[source_type]
    inv = invoices.set_index("invoice_id")
    e = ev.reset_index(drop=True).assign(
        functional_currency=ev["invoice_id"].map(inv["functional_currency"]).to_numpy()
    )
    inv_terms = _terms(e.assign(fx_rate=e["invoice_id"].map(inv["fx_rate"]).to_numpy()))
    tax_f = convert_half_even(e["tax"].to_numpy(np.int64), *inv_terms)
    common = (e["entity_id"], e["period"], event, e["event_id"])
    tail = (e["currency"], e["functional_currency"], e["event_id"])
    if source_type == UNCOLLECTIBLE:
        counter, balance = AR, RECOVERABLES
        counter_f = convert_half_even(e["gross"].to_numpy(np.int64), *inv_terms)
    else:
        counter, balance = CASH, FX
        counter_f = convert_half_even(e["gross"].to_numpy(np.int64), *_terms(e))
    r_common = (rows["entity_id"], rows["period"], event, rows["document_id"])
    r_tail = (rows["currency"], rows["functional_currency"], rows["source_id"])
    body = pd.concat(
        [
            _lines(*r_common, DEFERRED, -rows["deferred_booked"],
                   -rows["deferred_booked_functional"], *r_tail),
            _lines(*r_common, UNBILLED, rows["unbilled_booked"],
                   rows["unbilled_booked_functional"], *r_tail),
            _lines(*r_common, CONTRA_ACCOUNT[source_type], -rows["contra_revenue"],
                   -rows["contra_revenue_functional"], *r_tail),
            _lines(*common, TAX, e["tax"], tax_f, *tail),
            _lines(*common, counter, -e["gross"].to_numpy(np.int64), -counter_f, *tail),
        ],
        ignore_index=True,
    )  # fmt: skip
    body = body[body["document_id"].isin(e["event_id"])]
    # what is left to balance, per event (Recoverables in both currencies; FX functional only)
    left = body.groupby("document_id")[["amount", "amount_functional"]].sum()
    rest_t = e["event_id"].map(left["amount"]).fillna(0).to_numpy(np.int64)
    rest_f = e["event_id"].map(left["amount_functional"]).fillna(0).to_numpy(np.int64)
    if balance == FX:
        rest_t = np.zeros(len(e), dtype=np.int64)  # cash and revenue side agree: net + tax
    head = _lines(*common, balance, -rest_t, -rest_f, *tail)
    return pd.concat([body, head], ignore_index=True)


def _fees(disputes: pd.DataFrame):
    """Dispute fees, on a cash basis (Stripe, "Fees"): Dr Fees / Cr Cash when withdrawn."""
    d = disputes[disputes["status"].isin(WITHDRAWN) & (disputes["fee"] > 0)].reset_index(drop=True)
    if d.empty:
        return None
    in_functional = (d["fee_currency"] == d["functional_currency"]).to_numpy()
    fee = d["fee"].to_numpy(np.int64)
    fee_f = np.where(in_functional, fee, convert_half_even(fee, *_terms(d)))
    common = (d["entity_id"], d["period"], "dispute", d["dispute_id"])
    tail = (d["fee_currency"], d["functional_currency"], d["dispute_id"])
    return pd.concat([_lines(*common, FEES, fee, fee_f, *tail),
                      _lines(*common, CASH, -fee, -fee_f, *tail)], ignore_index=True)  # fmt: skip


def _won(disputes: pd.DataFrame):
    """A won dispute returns the funds: Dr Cash / Cr Recoverables, in the month it closed."""
    d = disputes[disputes["status"] == "won"].reset_index(drop=True)
    if d.empty:
        return None
    amount = d["amount"].to_numpy(np.int64)
    amount_f = convert_half_even(amount, *_terms(d))
    period = month_start(pd.to_datetime(d["closed_at"], utc=True)).to_numpy()
    common = (d["entity_id"], period, "dispute_won", d["dispute_id"])
    tail = (d["currency"], d["functional_currency"], d["dispute_id"])
    return pd.concat([_lines(*common, CASH, amount, amount_f, *tail),
                      _lines(*common, RECOVERABLES, -amount, -amount_f, *tail)],
                     ignore_index=True)  # fmt: skip


def _recovery(schedule, invoices, pays, events):
    """Payments of an invoice already marked uncollectible: BadDebt is cleared in proportion
    to what they pay of the amount written off, the rest of the cash is Recoverables."""
    p = pays[_recoveries(pays, invoices)]
    if p.empty:
        return None
    p = p.sort_values(["invoice_id", "created_ns", "payment_id"], kind="stable")
    p = p.reset_index(drop=True)
    u = schedule[schedule["source_type"] == UNCOLLECTIBLE]
    bad = -u.groupby("invoice_id")[["contra_revenue", "contra_revenue_functional"]].sum()
    unc = events[events["source_type"] == UNCOLLECTIBLE].set_index("invoice_id")["gross"]
    due = p["invoice_id"].map(unc).fillna(0).to_numpy(np.int64)
    amount = p["amount"].to_numpy(np.int64)
    cum = p.groupby("invoice_id")["amount"].cumsum().to_numpy(np.int64)
    shares = []
    for col in ("contra_revenue", "contra_revenue_functional"):
        b = p["invoice_id"].map(bad[col]).fillna(0).to_numpy(np.int64)
        upto = np.where(due > 0, convert_half_even(np.minimum(cum, due), b, np.maximum(due, 1)), 0)
        before = np.where(p["invoice_id"].duplicated().to_numpy(), np.roll(upto, 1), 0)
        shares.append(upto - before)
    inv = invoices.set_index("invoice_id")
    cash_f = convert_half_even(amount, *_terms(p))
    relief_f = convert_half_even(
        amount, *_terms(p.assign(fx_rate=p["invoice_id"].map(inv["fx_rate"]).to_numpy()))
    )
    common = (p["entity_id"], p["period"], "payment", p["payment_id"])
    tail = (p["currency"], p["functional_currency"], p["payment_id"])
    return pd.concat(
        [
            _lines(*common, CASH, amount, cash_f, *tail),
            _lines(*common, BAD_DEBT, -shares[0], -shares[1], *tail),
            _lines(*common, RECOVERABLES, -(amount - shares[0]), -(relief_f - shares[1]), *tail),
            _lines(*common, FX, 0, relief_f - cash_f, *tail),
        ],
        ignore_index=True,
    )
