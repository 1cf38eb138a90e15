"""Document events the engine books beyond plain invoices: customer balance applied to an
invoice, out-of-band settlement of credit notes, prospective credit notes, downgrades billed
on the next invoice.

Figures are Stripe's and Chargebee's published examples where they exist (named in each
test), in minor units. Every scenario also checks that each journal balances (transaction
and functional currency) and that the deferred revenue rollforward holds month by month.
"""

from __future__ import annotations

import pandas as pd

from sync_core.revenue import recognize, rollforward
from tests.revenue.factory import Book, account_moves, per_month, ts

M = {m: pd.Timestamp(f"2026-{m:02d}-01", tz="UTC") for m in range(1, 13)}


def moves(result, account, functional=False) -> dict:
    s = account_moves(result.accounting_lines, account, functional)
    return {k: int(v) for k, v in s.items() if v != 0}


def by_month(result, column) -> dict:
    return {k: int(v) for k, v in per_month(result.schedule, column).items()}


def assert_books_hold(result):
    """Each journal balances in both currencies; the rollforward identity holds; deferred
    revenue is never negative (and nil before billing), unbilled AR not once billed."""
    g = result.accounting_lines.groupby(["document_id", "event", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]
    ].sum()
    assert (g["debit"] == g["credit"]).all(), g[g["debit"] != g["credit"]]
    assert (g["debit_functional"] == g["credit_functional"]).all()
    roll = rollforward(result.schedule)
    lhs = roll["opening_deferred"] + roll["billings"] - roll["recognized"] - roll["credits"]
    assert (lhs == roll["closing_deferred"]).all(), roll
    assert (roll["opening_deferred"].iloc[1:].to_numpy()
            == roll["closing_deferred"].iloc[:-1].to_numpy()).all()  # fmt: skip
    s = result.schedule
    assert (s["deferred_balance"] >= 0).all()
    billed = s["period"] >= s["document_period"]  # before, a credit may be negative unbilled
    assert (s.loc[billed, "unbilled_balance"] >= 0).all()
    assert (s.loc[~billed, "deferred_balance"] == 0).all()


def apply_balance(book: Book, invoice_id: str, amount: int) -> Book:
    """The invoice's ``balance_applied`` (Stripe: starting_balance - ending_balance)."""
    next(i for i in book.invoices if i["invoice_id"] == invoice_id)["balance_applied"] = amount
    return book


# ------------------------------------------------------------------------------------------
# 1. Customer balance applied to an invoice
# ------------------------------------------------------------------------------------------


def test_stripe_customer_credit_balance_example():
    """Stripe, revenue recognition examples / contra, "Customer credit balance": 31 USD a
    month from Jan 15, -11 USD credit balance applied to the invoice, 20 USD paid Feb 9.

    | Account | Jan | Feb |  (Stripe's table)
    | AccountsReceivable | +20.00 | -20.00 |
    | Cash | | +20.00 |
    | CustomerBalance | -11.00 | |
    | Revenue | +17.00 | +14.00 |
    | DeferredRevenue | +14.00 | -14.00 |
    """
    b = Book().invoice("in_cb", "2026-01-15", [("il_cb", 3100, "2026-01-15", "2026-02-15")])
    apply_balance(b, "in_cb", 1100)
    b.pay("py_cb", "in_cb", 2000, "2026-02-09")
    r = recognize(**b.frames())
    # net debit movement per month (a credit is negative)
    assert moves(r, "AccountsReceivable") == {M[1]: 2000, M[2]: -2000}
    assert moves(r, "Cash") == {M[2]: 2000}
    assert moves(r, "CustomerBalance") == {M[1]: 1100}  # the liability goes down by 11
    assert moves(r, "Revenue") == {M[1]: -1700, M[2]: -1400}
    assert moves(r, "DeferredRevenue") == {M[1]: -1400, M[2]: 1400}
    assert by_month(r, "recognized") == {M[1]: 1700, M[2]: 1400}
    assert by_month(r, "deferred_balance") == {M[1]: 1400, M[2]: 0}
    fin = r.accounting_lines.query("event == 'invoice_finalized'").set_index("account")
    assert fin.loc["AccountsReceivable", "debit"] == 2000
    assert fin.loc["CustomerBalance", "debit"] == 1100
    assert r.quarantine.empty
    assert_books_hold(r)


def test_balance_credited_by_a_credit_note_is_used_up_by_the_next_invoice():
    """The balance a credit note credits (credit_balance_amount) is what a later invoice
    applies: CustomerBalance goes -11 in January and back to 0 in February."""
    b = Book()
    b.invoice("in_jan", "2026-01-01", [("il_jan", 3100, "2026-01-01", "2026-02-01")])
    b.pay("py_jan", "in_jan", 3100, "2026-01-02")
    b.credit_note("cn_jan", "in_jan", "2026-01-20", [("in_jan/il_jan", 1100)],
                  kind="post_payment", credit_balance=1100)  # fmt: skip
    b.invoice("in_feb", "2026-02-01", [("il_feb", 2800, "2026-02-01", "2026-03-01")])
    apply_balance(b, "in_feb", 1100)
    b.pay("py_feb", "in_feb", 1700, "2026-02-03")
    r = recognize(**b.frames())
    assert moves(r, "CustomerBalance") == {M[1]: -1100, M[2]: 1100}
    assert sum(moves(r, "CustomerBalance").values()) == 0
    assert moves(r, "AccountsReceivable") == {}  # both invoices settled in full
    assert moves(r, "Cash") == {M[1]: 3100, M[2]: 1700}
    assert_books_hold(r)


def test_voided_invoice_gives_the_applied_balance_back():
    b = Book().invoice("in_v", "2026-01-15", [("il_v", 3100, "2026-01-15", "2026-02-15")],
                       status="void", voided_at="2026-01-20")  # fmt: skip
    apply_balance(b, "in_v", 1100)
    r = recognize(**b.frames())
    assert moves(r, "CustomerBalance") == {}  # +11 at finalization, -11 at the void
    void = r.accounting_lines.query("event == 'invoice_void'").set_index("account")
    assert void.loc["CustomerBalance", "credit"] == 1100
    assert void.loc["AccountsReceivable", "credit"] == 2000
    assert_books_hold(r)


def test_balance_applied_in_foreign_currency_at_the_invoice_rate():
    """30 EUR at 1.20 USD/EUR with 10 EUR from the balance, 20 EUR paid at 1.10: the
    balance leaves at 12 USD, AR is 24 USD, cash 22 USD, FX loss 2 USD."""
    b = Book()
    b.invoice("in_eur", "2026-01-01", [("il_eur", 3000, "2026-01-01", "2026-02-01")],
              currency="EUR", fx_rate="1.20")  # fmt: skip
    apply_balance(b, "in_eur", 1000)
    b.pay("py_eur", "in_eur", 2000, "2026-01-20", fx_rate="1.10", currency="EUR")
    r = recognize(**b.frames())
    assert moves(r, "CustomerBalance", functional=True) == {M[1]: 1200}
    assert moves(r, "Cash", functional=True) == {M[1]: 2200}
    assert moves(r, "FxGainLoss", functional=True) == {M[1]: 200}
    assert moves(r, "AccountsReceivable", functional=True) == {}
    assert moves(r, "Revenue", functional=True) == {M[1]: -3600}
    assert_books_hold(r)


def test_balance_applied_above_the_total_is_quarantined_with_its_reason():
    b = Book().invoice("in_x", "2026-01-15", [("il_x", 3100, "2026-01-15", "2026-02-15")])
    b.invoice("in_ok", "2026-01-15", [("il_ok", 3100, "2026-01-15", "2026-02-15")])
    apply_balance(b, "in_x", 3101)
    r = recognize(**b.frames(validate=False))
    q = r.quarantine.set_index("source_id")
    assert q.loc["in_x", "rule"] == "balance_applied_within_total"
    assert "3101 exceeds the invoice total 3100" in q.loc["in_x", "message"]
    assert set(r.schedule["invoice_id"]) == {"in_ok"}
    assert_books_hold(r)


def test_negative_balance_applied_is_quarantined():
    b = Book().invoice("in_n", "2026-01-15", [("il_n", 3100, "2026-01-15", "2026-02-15")])
    apply_balance(b, "in_n", -5)
    r = recognize(**b.frames(validate=False))
    assert r.quarantine.set_index("source_id").loc["in_n", "rule"] == "balance_applied_integer"
    assert r.schedule.empty


def test_absent_balance_applied_is_zero():
    b = Book().invoice("in_0", "2026-01-15", [("il_0", 3100, "2026-01-15", "2026-02-15")])
    frames = b.frames()
    frames["invoices"] = frames["invoices"].drop(columns="balance_applied")
    r = recognize(**frames)
    assert moves(r, "AccountsReceivable") == {M[1]: 3100}
    assert moves(r, "CustomerBalance") == {}


# ------------------------------------------------------------------------------------------
# 2. Out-of-band settlement of a credit note
# ------------------------------------------------------------------------------------------


def stripe_credit_after_payment() -> Book:
    """Stripe, revenue recognition examples / credit notes, "Credit note after a payment":
    90 USD for Jan 1 - Apr 1, paid at once; on Feb 1 a 45 USD credit note: 15 refunded, 10
    to the customer balance, 20 out of band ("an external customer balance")."""
    b = Book().invoice("in_q", "2026-01-01", [("il_q", 9000, "2026-01-01", "2026-04-01")])
    b.pay("py_q", "in_q", 9000, "2026-01-01")
    b.credit_note("cn_q", "in_q", "2026-02-01", [("in_q/il_q", 4500)], kind="post_payment",
                  refund=1500, credit_balance=1000, out_of_band=2000)  # fmt: skip
    b.pay("re_q", None, 1500, "2026-02-01", kind="refund", credit_note_id="cn_q")
    return b


def test_stripe_credit_note_after_payment_with_an_out_of_band_part():
    """Stripe's table (Jan / Feb / Mar 2026):

    | Cash | +90.00 | -15.00 | |
    | Revenue | +31.00 | +14.00 | +15.50 |
    | DeferredRevenue | +59.00 | -43.50 | -15.50 |
    | Refunds | | +5.10 | |
    | CreditNotes | | +10.40 | |
    | CustomerBalance | | +10.00 | |
    | ExternalCustomerBalance | | +20.00 | |

    Stripe splits the 15.50 of contra revenue for January between Refunds and CreditNotes;
    the engine books all of a credit note's contra revenue to CreditNotes (Refunds is the
    contra account of refunds without a credit note), so the test checks the 15.50 total.
    """
    r = recognize(**stripe_credit_after_payment().frames())
    assert moves(r, "Cash") == {M[1]: 9000, M[2]: -1500}
    assert moves(r, "Revenue") == {M[1]: -3100, M[2]: -1400, M[3]: -1550}
    assert moves(r, "DeferredRevenue") == {M[1]: -5900, M[2]: 4350, M[3]: 1550}
    assert moves(r, "CreditNotes") == {M[2]: 1550}  # 5.10 + 10.40 in Stripe's table
    assert moves(r, "CustomerBalance") == {M[2]: -1000}
    assert moves(r, "ExternalCustomerBalance") == {M[2]: -2000}
    # the paid invoice keeps no AR credit balance: the out-of-band part is owed elsewhere
    assert moves(r, "AccountsReceivable") == {}
    assert_books_hold(r)


def test_voided_post_payment_note_clears_the_external_customer_balance():
    b = Book().invoice("in_o", "2026-01-01", [("il_o", 9000, "2026-01-01", "2026-04-01")])
    b.pay("py_o", "in_o", 9000, "2026-01-01")
    b.credit_note("cn_o", "in_o", "2026-02-01", [("in_o/il_o", 4500)], kind="post_payment",
                  out_of_band=4500, status="void", voided_at="2026-02-10")  # fmt: skip
    r = recognize(**b.frames())
    assert moves(r, "ExternalCustomerBalance") == {}
    void = r.accounting_lines.query("event == 'credit_note_void'").set_index("account")
    assert void.loc["ExternalCustomerBalance", "debit"] == 4500
    assert moves(r, "AccountsReceivable") == {}
    assert_books_hold(r)


def test_pre_payment_note_out_of_band_part_reduces_what_the_customer_owes():
    """Before payment the note reduces the amount due (Stripe: pre_payment_amount), the
    out-of-band part included: AR 90 - 30 = 60, and the 60 paid clears it."""
    b = Book().invoice("in_p", "2026-01-01", [("il_p", 9000, "2026-01-01", "2026-04-01")])
    b.credit_note("cn_p", "in_p", "2026-01-10", [("in_p/il_p", 3000)], kind="pre_payment",
                  out_of_band=3000)  # fmt: skip
    b.pay("py_p", "in_p", 6000, "2026-02-01")
    r = recognize(**b.frames())
    assert moves(r, "AccountsReceivable") == {M[1]: 6000, M[2]: -6000}
    assert moves(r, "ExternalCustomerBalance") == {}
    assert moves(r, "Cash") == {M[2]: 6000}
    assert_books_hold(r)


# ------------------------------------------------------------------------------------------
# 3. Prospective credit notes (a service period on the credit note line)
# ------------------------------------------------------------------------------------------


def credit_period(book: Book, note_id: str, start, end) -> Book:
    """Give the last line of ``note_id`` a service period (a prospective credit)."""
    line = [n for n in book.note_lines if n["credit_note_id"] == note_id][-1]
    line["period_start"], line["period_end"] = ts(start), ts(end)
    return book


def test_chargebee_future_discount_reduces_only_the_months_to_come():
    """Chargebee RevRec, "Recognizing Chargebee credit notes", use case Future Discounts:
    a 6-month contract of 600 (100 a month); in April a future discount of 60 makes it 540.

    | Original | 100 | 100 | 100 | 100 | 100 | 100 |  (Jan .. Jun)
    | Roll forward | 100 | 100 | 100 | 80 | 80 | 80 |
    """
    b = Book(method="month")  # Chargebee's example is by month
    b.invoice("in_cb6", "2026-01-01", [("il_6", 60000, "2026-01-01", "2026-07-01")])
    b.credit_note("cn_fd", "in_cb6", "2026-04-01", [("in_cb6/il_6", 6000)])
    credit_period(b, "cn_fd", "2026-04-01", "2026-07-01")
    r = recognize(**b.frames())
    assert by_month(r, "recognized") == {M[1]: 10000, M[2]: 10000, M[3]: 10000,
                                         M[4]: 8000, M[5]: 8000, M[6]: 8000}  # fmt: skip
    assert moves(r, "Revenue") == {M[1]: -10000, M[2]: -10000, M[3]: -10000,
                                   M[4]: -8000, M[5]: -8000, M[6]: -8000}  # fmt: skip
    assert moves(r, "CreditNotes") == {}  # no contra revenue for January - March
    # the whole credit comes off deferred revenue (30000 left at the end of March)
    assert by_month(r, "deferred_balance") == {M[1]: 50000, M[2]: 40000, M[3]: 30000,
                                               M[4]: 16000, M[5]: 8000, M[6]: 0}  # fmt: skip
    assert moves(r, "AccountsReceivable") == {M[1]: 60000, M[4]: -6000}
    assert r.quarantine.empty
    assert_books_hold(r)


def test_same_credit_without_a_period_is_retrospective():
    """The contrast: without a service period the 60 follows the whole line (10 a month),
    and January - March's 30 is contra revenue in April."""
    b = Book(method="month")
    b.invoice("in_cb6", "2026-01-01", [("il_6", 60000, "2026-01-01", "2026-07-01")])
    b.credit_note("cn_rt", "in_cb6", "2026-04-01", [("in_cb6/il_6", 6000)])
    r = recognize(**b.frames())
    assert moves(r, "CreditNotes") == {M[4]: 3000}
    assert moves(r, "Revenue") == {M[1]: -10000, M[2]: -10000, M[3]: -10000,
                                   M[4]: -9000, M[5]: -9000, M[6]: -9000}  # fmt: skip
    assert_books_hold(r)


def test_prospective_credit_by_day_over_the_rest_of_an_annual_line():
    """365.00 for 2026 by day (1.00 a day); on July 1 a credit of 92.00 for Jul 1 - Jan 1
    (184 days, 0.50 a day): July 15.50, August 15.50, September 15.00, October 15.50,
    November 15.00, December 15.50 of revenue; the first half year keeps 181.00."""
    b = Book().invoice("in_y", "2026-01-01", [("il_y", 36500, "2026-01-01", "2027-01-01")])
    b.credit_note("cn_y", "in_y", "2026-07-01", [("in_y/il_y", 9200)])
    credit_period(b, "cn_y", "2026-07-01", "2027-01-01")
    r = recognize(**b.frames())
    rec = by_month(r, "recognized")
    assert [rec[M[m]] for m in range(1, 7)] == [3100, 2800, 3100, 3000, 3100, 3000]
    assert [rec[M[m]] for m in range(7, 13)] == [1550, 1550, 1500, 1550, 1500, 1550]
    assert moves(r, "CreditNotes") == {}
    cn = r.accounting_lines.query("event == 'credit_note'").set_index("account")
    assert cn.loc["DeferredRevenue", "debit"] == 9200
    assert cn.loc["AccountsReceivable", "credit"] == 9200
    assert_books_hold(r)


def test_voided_prospective_credit_restores_the_schedule():
    b = Book().invoice("in_y", "2026-01-01", [("il_y", 36500, "2026-01-01", "2027-01-01")])
    b.credit_note("cn_y", "in_y", "2026-07-01", [("in_y/il_y", 9200)], status="void",
                  voided_at="2026-08-20")  # fmt: skip
    credit_period(b, "cn_y", "2026-07-01", "2027-01-01")
    r = recognize(**b.frames())
    rec = by_month(r, "recognized")
    # July's 15.50 reduction is caught up in August; from September the original schedule
    assert [rec[M[m]] for m in range(7, 13)] == [1550, 3100 + 1550, 3000, 3100, 3000, 3100]
    assert sum(rec.values()) == 36500
    assert moves(r, "CreditNotes") == {}
    assert_books_hold(r)


def test_prospective_and_retrospective_lines_of_one_note():
    """One note: 10.00 spread over the whole line (Jan - Mar earned: contra in April) and a
    prospective 30.00 for the months still to come, by month."""
    b = Book(method="month")
    b.invoice("in_m", "2026-01-01", [("il_m", 60000, "2026-01-01", "2026-07-01")])
    b.credit_note("cn_m", "in_m", "2026-04-01", [("in_m/il_m", 600), ("in_m/il_m", 3000)])
    credit_period(b, "cn_m", "2026-04-01", "2026-07-01")
    r = recognize(**b.frames())
    assert moves(r, "CreditNotes") == {M[4]: 300}
    assert by_month(r, "recognized") == {M[1]: 10000, M[2]: 10000, M[3]: 10000,
                                         M[4]: 10000 - 100 - 300 - 1000,
                                         M[5]: 10000 - 100 - 1000,
                                         M[6]: 10000 - 100 - 1000}  # fmt: skip
    assert_books_hold(r)


def quarantined_rule(b: Book, note_id: str) -> dict:
    r = recognize(**b.frames(validate=False))
    q = r.quarantine
    assert note_id not in set(r.schedule["document_id"])
    assert "in_ok" in set(r.schedule["invoice_id"])  # the rest of the batch goes on
    assert q.set_index("source_id").loc[note_id, "rule"] == "lines_valid"
    lines = q[q["object_type"] == "credit_note_lines"]
    return dict(zip(lines["rule"], lines["message"], strict=True))


def _book_with_other_invoice() -> Book:
    b = Book()
    b.invoice("in_ok", "2026-01-01", [("il_ok", 3100, "2026-01-01", "2026-02-01")])
    b.invoice("in_q", "2026-01-01", [("il_q", 36500, "2026-01-01", "2027-01-01")])
    return b


def test_credit_period_outside_the_credited_line_is_quarantined():
    b = _book_with_other_invoice()
    b.credit_note("cn_out", "in_q", "2026-07-01", [("in_q/il_q", 9200)])
    credit_period(b, "cn_out", "2026-07-01", "2027-02-01")  # past the line's end
    rules = quarantined_rule(b, "cn_out")
    assert list(rules) == ["credit_period_within_line"]
    assert "inside that line's service period" in rules["credit_period_within_line"]


def test_credit_period_on_a_line_naming_no_invoice_line_is_quarantined():
    b = _book_with_other_invoice()
    b.credit_note("cn_loose", "in_q", "2026-07-01", [(None, 9200)])
    credit_period(b, "cn_loose", "2026-07-01", "2026-12-01")
    assert list(quarantined_rule(b, "cn_loose")) == ["credit_period_within_line"]


def test_credit_period_starting_before_the_notes_month_is_quarantined():
    """Months already recognized cannot take a prospective credit (that is contra revenue:
    a note without a period)."""
    b = _book_with_other_invoice()
    b.credit_note("cn_past", "in_q", "2026-07-01", [("in_q/il_q", 9200)])
    credit_period(b, "cn_past", "2026-06-01", "2026-12-01")
    rules = quarantined_rule(b, "cn_past")
    assert list(rules) == ["credit_period_not_past"]
    assert "before its credit note's month" in rules["credit_period_not_past"]


def test_credit_period_with_a_start_and_no_end_is_quarantined():
    b = _book_with_other_invoice()
    b.credit_note("cn_half", "in_q", "2026-07-01", [("in_q/il_q", 9200)])
    line = b.note_lines[-1]
    line["period_start"], line["period_end"] = ts("2026-07-01"), pd.NaT
    assert list(quarantined_rule(b, "cn_half")) == ["credit_period_complete"]


# ------------------------------------------------------------------------------------------
# 4. A downgrade's proration credit billed on the next invoice
# ------------------------------------------------------------------------------------------


def downgrade_book() -> Book:
    """The mirror of the domain brief's worked example 3 (Stripe's upgrade example): 120 USD
    a month from Apr 1, paid; on Apr 21 downgraded to 90 USD. The May 1 invoice has lines
    -40 (unused time at 120) and +30 (remaining time at 90), both Apr 21 - May 1, and +90
    (May)."""
    b = Book()
    b.invoice("in_apr", "2026-04-01", [("il_120", 12000, "2026-04-01", "2026-05-01")])
    b.pay("py_apr", "in_apr", 12000, "2026-04-03")
    b.invoice("in_may", "2026-05-01", [
        ("il_unused", -4000, "2026-04-21", "2026-05-01"),
        ("il_down", 3000, "2026-04-21", "2026-05-01"),
        ("il_90", 9000, "2026-05-01", "2026-06-01"),
    ])  # fmt: skip
    return b


def test_downgrade_proration_credit_billed_next_month_is_unbilled_ar_not_deferred():
    """April: revenue 110 (120 - 40 + 30), AR +120 (paid), unbilled AR -10: the net credit
    of 10 is revenue given back before it is billed, which Stripe carries in unbilled AR.
    May: revenue 90, AR +80, unbilled AR +10. Deferred revenue never holds the credit."""
    r = recognize(**downgrade_book().frames())
    assert by_month(r, "recognized") == {M[4]: 11000, M[5]: 9000}
    assert moves(r, "Revenue") == {M[4]: -11000, M[5]: -9000}
    fin = r.accounting_lines.query("event == 'invoice_finalized' and account == "
                                   "'AccountsReceivable'")  # fmt: skip
    assert (fin["debit"] - fin["credit"]).groupby(fin["period"]).sum().to_dict() == {
        M[4]: 12000, M[5]: 8000}  # fmt: skip
    assert moves(r, "UnbilledAccountsReceivable") == {M[4]: -1000, M[5]: 1000}
    assert by_month(r, "unbilled_balance") == {M[4]: -1000, M[5]: 0}
    assert moves(r, "DeferredRevenue") == {}  # May's 90 is booked and released in May
    assert by_month(r, "deferred_balance") == {M[4]: 0, M[5]: 0}
    # the May invoice: Dr AR 80 + Dr unbilled AR 10 (the April credit billed) / Cr deferred 90
    may = r.accounting_lines.query("event == 'invoice_finalized' and document_id == 'in_may'")
    net = (may["debit"] - may["credit"]).groupby(may["account"]).sum().to_dict()
    assert net == {"AccountsReceivable": 8000, "UnbilledAccountsReceivable": 1000,
                   "DeferredRevenue": -9000}  # fmt: skip
    assert_books_hold(r)
    derived = __import__("sync_core.contracts.derived", fromlist=["RevenueScheduleModel"])
    derived.RevenueScheduleModel.validate(r.schedule)


def test_an_invoice_made_only_of_a_proration_credit():
    """The same downgrade with the credit alone on the May invoice (-40): April's revenue is
    80 and unbilled AR -40 until May bills the credit (AR -40, a credit to the customer)."""
    b = Book()
    b.invoice("in_apr", "2026-04-01", [("il_120", 12000, "2026-04-01", "2026-05-01")])
    b.invoice("in_cr", "2026-05-01", [("il_unused", -4000, "2026-04-21", "2026-05-01")])
    r = recognize(**b.frames())
    assert moves(r, "Revenue") == {M[4]: -8000}
    assert moves(r, "UnbilledAccountsReceivable") == {M[4]: -4000, M[5]: 4000}
    assert moves(r, "AccountsReceivable") == {M[4]: 12000, M[5]: -4000}
    assert moves(r, "DeferredRevenue") == {}
    assert_books_hold(r)


def test_derived_contract_refuses_negative_unbilled_ar_once_billed():
    r = recognize(**downgrade_book().frames())
    s = r.schedule.copy()
    may = (s["period"] == M[5]) & (s["source_type"] == "invoice_line")
    s.loc[may.idxmax(), "unbilled_balance"] = -1
    derived = __import__("sync_core.contracts.derived", fromlist=["RevenueScheduleModel"])
    try:
        derived.RevenueScheduleModel.validate(s)
    except Exception as err:  # pandera SchemaError
        assert "unbilled_negative_only_before_billing" in str(err)
    else:
        raise AssertionError("a negative unbilled balance after billing passed the contract")
