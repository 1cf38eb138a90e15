"""Events that take revenue back after billing, as Stripe Revenue Recognition books them.

The figures are Stripe's published tables, in cents (docs.stripe.com/revenue-recognition/
examples/contra: "Refund", "Partial refund", "Uncollectible", "Uncollectible invoice with
applied customer credit balance", "Dispute", "FX loss from a refund or dispute"; and
methodology/refunds-and-disputes). Stripe's tables show each account's movement per month in
its own direction (Revenue +31 is a credit, Refunds +31 a debit); ``moves`` here is the net
debit, so a credit reads negative: "Revenue +31.00" is ``-3100``.

The common case (Stripe's): a three-month subscription of 90 USD from 2019-01-01, billed and
paid on January 1. By day it earns 31 / 28 / 31.
"""

from __future__ import annotations

import pandas as pd
import pytest

from sync_core.revenue import recognize, rollforward
from tests.revenue.factory import Book, account_moves

M = {m: pd.Timestamp(f"2019-{m:02d}-01", tz="UTC") for m in range(1, 7)}


def moves(result, account, functional=False) -> dict:
    s = account_moves(result.accounting_lines, account, functional)
    return {k: int(v) for k, v in s.items() if v != 0}


def quarterly(paid: bool = True, **invoice) -> Book:
    b = Book().invoice("in_1", "2019-01-01", [("il_1", 9000, "2019-01-01", "2019-04-01")],
                       **invoice)  # fmt: skip
    return b.pay("py_1", "in_1", 9000, "2019-01-01") if paid else b


def checked(book: Book):
    """Recognize, then check what a controller checks on every scenario: each journal
    balances per currency (transaction and functional) and the rollforward holds."""
    r = recognize(**book.frames())
    g = r.accounting_lines.groupby(["document_id", "event", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]
    ].sum()
    assert (g["debit"] == g["credit"]).all(), g[g["debit"] != g["credit"]]
    f = r.accounting_lines.groupby(["document_id", "event"])[
        ["debit_functional", "credit_functional"]
    ].sum()
    assert (f["debit_functional"] == f["credit_functional"]).all()
    roll = rollforward(r.schedule)
    drift = (roll["opening_deferred"] + roll["billings"] - roll["recognized"] - roll["credits"]
             - roll["closing_deferred"])  # fmt: skip
    assert (drift == 0).all(), roll
    # the ledger's deferred revenue is the schedule's, month by month
    ledger = pd.Series(moves(r, "DeferredRevenue")).reindex(roll["period"], fill_value=0)
    assert (-ledger.cumsum().to_numpy() == roll["closing_deferred"].to_numpy()).all()
    return r


def test_full_refund_without_credit_note():
    # Stripe "Refund": full refund on February 1
    r = checked(quarterly().pay("re_1", "in_1", 9000, "2019-02-01", kind="refund"))
    assert r.quarantine.empty
    assert moves(r, "Revenue") == {M[1]: -3100}  # nothing more is recognized
    assert moves(r, "DeferredRevenue") == {M[1]: -5900, M[2]: 5900}
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -9000}
    assert moves(r, "Refunds") == {M[2]: 3100}
    assert moves(r, "AccountsReceivable") == {}  # paid, and stays paid
    refund = r.accounting_lines[r.accounting_lines["document_id"] == "re_1"]
    assert set(refund["event"]) == {"refund"}


def test_partial_refund_is_proportional():
    # Stripe "Partial refund": 9 USD (10 %) on February 1
    r = checked(quarterly().pay("re_1", "in_1", 900, "2019-02-01", kind="refund"))
    assert moves(r, "Refunds") == {M[2]: 310}  # 10 % of January's 31
    assert moves(r, "DeferredRevenue") == {M[1]: -5900, M[2]: 3110, M[3]: 2790}
    assert moves(r, "Revenue") == {M[1]: -3100, M[2]: -2520, M[3]: -2790}
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -900}


def test_refund_takes_its_share_of_tax():
    # 90 USD + 10 % exclusive tax (Stripe "Tax liability" rate); a third is refunded on Feb 1
    b = Book().invoice("in_1", "2019-01-01", [("il_1", 9000, "2019-01-01", "2019-04-01")],
                       tax=900).pay("py_1", "in_1", 9900, "2019-01-01")  # fmt: skip
    r = checked(b.pay("re_1", "in_1", 3300, "2019-02-01", kind="refund"))
    assert moves(r, "TaxLiability") == {M[1]: -900, M[2]: 300}
    # net 30.00 (33.00 less its 3.00 of tax) over 31 / 28 / 31 days: 10.3333 / 9.3333 /
    # 10.3333, the spare cent to the earliest month (largest remainder)
    assert moves(r, "Refunds") == {M[2]: 1034}
    assert moves(r, "Cash") == {M[1]: 9900, M[2]: -3300}


def test_refund_fx_loss():
    # Stripe "FX loss from a refund or dispute": 30 EUR at 1.20, paid at 1.20, refunded at 1.30
    b = Book().invoice("in_1", "2019-01-01", [("il_1", 3000, "2019-01-01", "2019-02-01")],
                       currency="EUR", fx_rate="1.20")  # fmt: skip
    b.pay("py_1", "in_1", 3000, "2019-02-01", currency="EUR", fx_rate="1.20")
    b.pay("re_1", "in_1", 3000, "2019-03-01", currency="EUR", fx_rate="1.30", kind="refund")
    r = checked(b)
    assert moves(r, "AccountsReceivable", True) == {M[1]: 3600, M[2]: -3600}
    assert moves(r, "Revenue", True) == {M[1]: -3600}
    assert moves(r, "Refunds", True) == {M[3]: 3600}
    assert moves(r, "Cash", True) == {M[2]: 3600, M[3]: -3900}
    assert moves(r, "FxGainLoss", True) == {M[3]: 300}  # a loss


def test_credit_note_refund_goes_through_refunds_payable():
    # a 45 USD credit note on Feb 1, refunded in full the same day: the credit note books its
    # contra revenue (CreditNotes 15.50, Stripe "Credit note without line items" proportions)
    # and owes the refund on RefundsPayable, which its refund payment clears; Refunds, the
    # contra revenue account of refunds without a credit note, is not touched
    b = quarterly().credit_note("cn_1", "in_1", "2019-02-01", subtotal=4500, kind="post_payment")
    r = checked(b.pay("re_1", None, 4500, "2019-02-01", kind="refund", credit_note_id="cn_1"))
    assert moves(r, "CreditNotes") == {M[2]: 1550}
    assert moves(r, "RefundsPayable") == {}  # credited 45.00 and debited 45.00 in February
    payable = r.accounting_lines[r.accounting_lines["account"] == "RefundsPayable"]
    assert payable[["event", "debit", "credit"]].values.tolist() == [
        ["credit_note", 0, 4500], ["refund", 4500, 0]
    ]  # fmt: skip
    assert moves(r, "Refunds") == {}
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -4500}


def test_dispute_lost_with_fee():
    # Stripe "Refunds and disputes": disputed on February 1 (the funds and a 15 USD fee are
    # withdrawn then), lost on March 15; fees on a cash basis (Stripe "Fees")
    b = quarterly().dispute("dp_1", "py_1", 9000, "2019-02-01", status="lost",
                            closed_at="2019-03-15", fee=1500)  # fmt: skip
    r = checked(b)
    assert moves(r, "Revenue") == {M[1]: -3100}
    assert moves(r, "DeferredRevenue") == {M[1]: -5900, M[2]: 5900}
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -10500}  # 90.00 + the 15.00 fee
    assert moves(r, "Disputes") == {M[2]: 3100}
    assert moves(r, "Fees") == {M[2]: 1500}
    assert moves(r, "Recoverables") == {}
    lines = r.accounting_lines[r.accounting_lines["document_id"] == "dp_1"]
    assert set(lines["event"]) == {"dispute"}  # losing books nothing more


def test_dispute_won_returns_the_funds_to_recoverables():
    # Stripe "Dispute": disputed February 1, won April 1
    b = quarterly().dispute("dp_1", "py_1", 9000, "2019-02-01", status="won",
                            closed_at="2019-04-01")  # fmt: skip
    r = checked(b)
    assert moves(r, "Revenue") == {M[1]: -3100}  # recognized and deferred do not change
    assert moves(r, "DeferredRevenue") == {M[1]: -5900, M[2]: 5900}
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -9000, M[4]: 9000}
    assert moves(r, "Disputes") == {M[2]: 3100}
    assert moves(r, "Recoverables") == {M[4]: -9000}  # "Recoverables +90.00", a credit
    won = r.accounting_lines[r.accounting_lines["event"] == "dispute_won"]
    assert won["document_id"].unique().tolist() == ["dp_1"]


def test_dispute_inquiry_books_nothing():
    # a warning_* dispute is an inquiry: no funds are withdrawn
    b = quarterly().dispute("dp_1", "py_1", 9000, "2019-02-01", status="warning_needs_response")
    r = checked(b)
    assert not (r.accounting_lines["document_id"] == "dp_1").any()
    assert moves(r, "Revenue") == {M[1]: -3100, M[2]: -2800, M[3]: -3100}


def test_uncollectible_invoice():
    # Stripe "Uncollectible": unpaid, marked uncollectible on February 1
    r = checked(quarterly(paid=False, uncollectible_at="2019-02-01"))
    assert moves(r, "AccountsReceivable") == {M[1]: 9000, M[2]: -9000}
    assert moves(r, "Revenue") == {M[1]: -3100}
    assert moves(r, "DeferredRevenue") == {M[1]: -5900, M[2]: 5900}
    assert moves(r, "BadDebt") == {M[2]: 3100}
    assert moves(r, "Recoverables") == {}


def test_uncollectible_then_recovered():
    # Stripe "Uncollectible", then paid in April: BadDebt is cleared with part of the cash,
    # the rest is Recoverables
    b = quarterly(paid=False, uncollectible_at="2019-02-01")
    r = checked(b.pay("py_1", "in_1", 9000, "2019-04-10"))
    assert moves(r, "AccountsReceivable") == {M[1]: 9000, M[2]: -9000}
    assert moves(r, "BadDebt") == {M[2]: 3100, M[4]: -3100}
    assert moves(r, "Cash") == {M[4]: 9000}
    assert moves(r, "Recoverables") == {M[4]: -5900}  # "Recoverables +59.00", a credit
    assert moves(r, "Revenue") == {M[1]: -3100}
    recovery = r.accounting_lines[r.accounting_lines["document_id"] == "py_1"]
    assert set(recovery["event"]) == {"payment"}


def test_uncollectible_with_customer_balance_applied():
    # Stripe "Uncollectible invoice with applied customer credit balance": 31 USD from Jan 15,
    # 11 USD of credit balance applied, marked uncollectible on February 15. Stripe's table
    # rounds to whole dollars (BadDebt 11.00, Recoverables 5.00); in cents its own rule gives
    # paid revenue 11 x 17 / 31 = 6.03, so BadDebt 17.00 - 6.03 = 10.97, and Recoverables
    # 11 x 14 / 31 = 4.97
    b = Book().invoice("in_1", "2019-01-15", [("il_1", 3100, "2019-01-15", "2019-02-15")],
                       uncollectible_at="2019-02-15")  # fmt: skip
    b.invoices[-1]["balance_applied"] = 1100
    r = checked(b)
    assert moves(r, "AccountsReceivable") == {M[1]: 2000, M[2]: -2000}
    assert moves(r, "CustomerBalance") == {M[1]: 1100}  # the balance owed is used up
    assert moves(r, "Revenue") == {M[1]: -1700}
    assert moves(r, "DeferredRevenue") == {M[1]: -1400, M[2]: 1400}
    assert moves(r, "BadDebt") == {M[2]: 1097}  # the unpaid share of what was earned
    assert moves(r, "Recoverables") == {M[2]: -497}  # the paid share of what was deferred


@pytest.mark.parametrize(
    ("extra", "object_type", "source_id", "rule"),
    [
        # a refund larger than what was paid
        (lambda b: b.pay("re_1", "in_1", 9100, "2019-02-01", kind="refund"),
         "payments", "re_1", "refund_within_paid"),
        # a refund before any payment
        (lambda b: b.pay("re_0", "in_1", 100, "2018-12-31", kind="refund"),
         "payments", "re_0", "refund_within_paid"),
        # a dispute of a payment that does not exist
        (lambda b: b.disputes.append({**_dispute_row(b), "payment_id": "py_404"}),
         "disputes", "dp_1", "payment_exists"),
        # a dispute of more than was paid
        (lambda b: b.dispute("dp_1", "py_1", 9100, "2019-02-01", status="under_review"),
         "disputes", "dp_1", "dispute_within_paid"),
        # a fee in a currency that is neither the dispute's nor the functional currency
        (lambda b: b.dispute("dp_1", "py_1", 9000, "2019-02-01", fee=1500, fee_currency="EUR",
                             status="under_review"),
         "disputes", "dp_1", "fee_currency_supported"),
    ],
    ids=["refund-over-paid", "refund-before-payment", "dispute-unknown-payment",
         "dispute-over-paid", "fee-currency"],
)  # fmt: skip
def test_bad_refunds_and_disputes_are_quarantined_not_booked(extra, object_type, source_id,
                                                             rule):  # fmt: skip
    b = quarterly()
    extra(b)
    r = checked(b)
    q = r.quarantine
    held = q[(q["object_type"] == object_type) & (q["source_id"] == source_id)]
    assert held["rule"].tolist() == [rule]
    assert (held["owner"] == "integration").all()
    assert not (r.accounting_lines["document_id"] == source_id).any()
    # the invoice itself is untouched
    assert moves(r, "Revenue") == {M[1]: -3100, M[2]: -2800, M[3]: -3100}


def test_refund_and_dispute_together_within_what_was_paid():
    # 50 refunded on Feb 1, then a dispute of the remaining 40 on Feb 2: both book, and the
    # invoice has nothing left to recognize
    b = quarterly().pay("re_1", "in_1", 5000, "2019-02-01", kind="refund")
    r = checked(b.dispute("dp_1", "py_1", 4000, "2019-02-02", status="lost",
                          closed_at="2019-03-01"))  # fmt: skip
    assert r.quarantine.empty
    # 50 / 90 of January's 31.00 = 17.22; 40 / 90 = 13.78
    assert moves(r, "Refunds") == {M[2]: 1722}
    assert moves(r, "Disputes") == {M[2]: 1378}
    assert moves(r, "Revenue") == {M[1]: -3100}
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -9000}


def test_refund_after_uncollectible_is_held_with_its_reason():
    b = quarterly(paid=False, uncollectible_at="2019-02-01")
    b.pay("py_1", "in_1", 9000, "2019-04-01").pay("re_1", "in_1", 9000, "2019-05-01",
                                                  kind="refund")  # fmt: skip
    r = checked(b)
    held = r.quarantine[r.quarantine["source_id"] == "re_1"]
    assert held["rule"].tolist() == ["before_uncollectible"]
    assert "not supported yet" in held["message"].iloc[0]


def _dispute_row(b: Book) -> dict:
    return {"dispute_id": "dp_1", "payment_id": "py_1", "invoice_id": None,
            "customer_id": "cus_1", "amount": 9000, "currency": "USD", "fee": 0,
            "fee_currency": "USD", "status": "lost", "created_at": pd.Timestamp(
                "2019-02-01", tz="UTC"), "closed_at": pd.Timestamp("2019-03-01", tz="UTC"),
            "fx_rate": "1", "entity_id": b.entity, "period": M[2]}  # fmt: skip
