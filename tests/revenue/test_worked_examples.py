"""The worked examples of the domain brief (shared/domain.md), as canonical frames.

Amounts in minor units. "AR +90" reads as: the month's invoices put 90 on accounts
receivable; "unbilled AR +10" as the month's movement of unbilled AR; "deferred" as the
deferred revenue balance at the month's end. Each example is checked on the schedule and on
the accounting lines, which must agree.
"""

from __future__ import annotations

import pandas as pd
import pytest

from sync_core.money import allocate, convert
from sync_core.revenue import expand_lines, recognize, rollforward
from tests.revenue.factory import Book, account_moves, per_month

M = {m: pd.Timestamp(f"2026-{m:02d}-01", tz="UTC") for m in range(1, 13)}


def moves(result, account, functional=False) -> dict:
    s = account_moves(result.accounting_lines, account, functional)
    return {k: int(v) for k, v in s.items() if v != 0}


def billed_to_ar(result) -> dict:
    lines = result.accounting_lines
    sel = lines[
        (lines["account"] == "AccountsReceivable") & (lines["event"] == "invoice_finalized")
    ]
    return {
        k: int(v) for k, v in (sel["debit"] - sel["credit"]).groupby(sel["period"]).sum().items()
    }


def assert_journals_balance(result):
    g = result.accounting_lines.groupby(["document_id", "event", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]
    ].sum()
    assert (g["debit"] == g["credit"]).all()
    assert (g["debit_functional"] == g["credit_functional"]).all()


def schedule_by_month(result, column) -> dict:
    return {k: int(v) for k, v in per_month(result.schedule, column).items()}


def test_example_1_monthly_from_jan_15():
    b = Book().invoice("in_1", "2026-01-15", [("il_1", 3100, "2026-01-15", "2026-02-15")])
    r = recognize(**b.frames())
    assert schedule_by_month(r, "recognized") == {M[1]: 1700, M[2]: 1400}
    assert schedule_by_month(r, "deferred_balance") == {M[1]: 1400, M[2]: 0}
    assert moves(r, "Revenue") == {M[1]: -1700, M[2]: -1400}
    assert moves(r, "DeferredRevenue") == {M[1]: -1400, M[2]: 1400}  # +14, then released
    assert moves(r, "AccountsReceivable") == {M[1]: 3100}
    assert_journals_balance(r)


def test_example_2_annual_from_2019():
    b = Book().invoice("in_2", "2019-01-01", [("il_2", 36500, "2019-01-01", "2020-01-01")])
    r = recognize(**b.frames())
    rev = schedule_by_month(r, "recognized")
    deferred = schedule_by_month(r, "deferred_balance")
    months = [pd.Timestamp(f"2019-{m:02d}-01", tz="UTC") for m in (1, 2, 3)]
    assert [rev[m] for m in months] == [3100, 2800, 3100]
    assert [deferred[m] for m in months] == [33400, 30600, 27500]
    roll = rollforward(r.schedule).set_index("period")
    assert roll.loc[months, "closing_deferred"].tolist() == [33400, 30600, 27500]
    assert sum(rev.values()) == 36500
    assert_journals_balance(r)


def test_example_3_upgrade_with_prorations_billed_next_month():
    b = Book()
    b.invoice("in_apr", "2026-04-01", [("il_90", 9000, "2026-04-01", "2026-05-01")])
    b.pay("py_apr", "in_apr", 9000, "2026-04-03")
    b.invoice("in_may", "2026-05-01", [
        ("il_unused", -3000, "2026-04-21", "2026-05-01"),
        ("il_upgrade", 4000, "2026-04-21", "2026-05-01"),
        ("il_120", 12000, "2026-05-01", "2026-06-01"),
    ])  # fmt: skip
    r = recognize(**b.frames())
    assert schedule_by_month(r, "recognized") == {M[4]: 10000, M[5]: 12000}
    assert moves(r, "Revenue") == {M[4]: -10000, M[5]: -12000}
    assert billed_to_ar(r) == {M[4]: 9000, M[5]: 13000}
    assert moves(r, "UnbilledAccountsReceivable") == {M[4]: 1000, M[5]: -1000}
    assert schedule_by_month(r, "unbilled_balance") == {M[4]: 1000, M[5]: 0}
    assert schedule_by_month(r, "deferred_balance") == {M[4]: 0, M[5]: 0}
    # paid in April: AR back to zero then
    assert moves(r, "AccountsReceivable") == {M[5]: 13000}
    assert (r.schedule["unbilled_balance"] >= 0).all() and (
        r.schedule["deferred_balance"] >= 0
    ).all()
    assert_journals_balance(r)


def test_example_4_metered_usage_recognized_when_used():
    b = Book()
    b.invoice("in_4", "2026-02-14",
              [("il_use", 3200, "2026-01-14", "2026-02-14", "usage", "si_units")])  # fmt: skip
    b.use("si_units", "2026-01-25T10:00:00Z", 15).use("si_units", "2026-02-04T08:00:00Z", 17)
    r = recognize(**b.frames())
    assert schedule_by_month(r, "recognized") == {M[1]: 1500, M[2]: 1700}
    assert moves(r, "Revenue") == {M[1]: -1500, M[2]: -1700}
    assert moves(r, "UnbilledAccountsReceivable") == {M[1]: 1500, M[2]: -1500}
    assert moves(r, "AccountsReceivable") == {M[2]: 3200}
    assert schedule_by_month(r, "unbilled_balance") == {M[1]: 1500, M[2]: 0}
    assert_journals_balance(r)


def test_example_5_tax_is_never_revenue():
    b = Book().invoice("in_5", "2026-01-01", [("il_5", 3100, "2026-01-01", "2026-02-01")], tax=310)
    b.pay("py_5", "in_5", 3410, "2026-01-05")
    r = recognize(**b.frames())
    assert moves(r, "Revenue") == {M[1]: -3100}
    assert moves(r, "Cash") == {M[1]: 3410}
    assert moves(r, "TaxLiability") == {M[1]: -310}
    assert moves(r, "AccountsReceivable") == {}
    assert r.schedule["recognized"].sum() == 3100
    assert_journals_balance(r)


def test_example_5_fx_loss_at_payment():
    b = Book()  # USD entity
    b.invoice("in_eur", "2026-01-01", [("il_eur", 3000, "2026-01-01", "2026-02-01")],
              currency="EUR", fx_rate="1.20")  # fmt: skip
    b.pay("py_eur", "in_eur", 3000, "2026-01-20", fx_rate="1.10", currency="EUR")
    r = recognize(**b.frames())
    assert r.schedule["recognized_functional"].sum() == 3600
    assert moves(r, "Revenue", functional=True) == {M[1]: -3600}
    assert billed_to_ar(r) == {M[1]: 3000}
    fin = r.accounting_lines.query(
        "event == 'invoice_finalized' and account == 'AccountsReceivable'"
    )
    assert fin["debit_functional"].sum() == 3600
    assert moves(r, "Cash", functional=True) == {M[1]: 3300}
    assert moves(r, "FxGainLoss", functional=True) == {M[1]: 300}  # a loss is a debit
    assert moves(r, "FxGainLoss") == {}  # functional only
    assert moves(r, "AccountsReceivable", functional=True) == {}
    assert_journals_balance(r)


STRIPE = pd.DataFrame({
    "line_key": ["in_s/il_s"], "amount": [12000],
    "period_start": [pd.Timestamp("2026-06-15T12:00:00Z")],
    "period_end": [pd.Timestamp("2026-10-13T12:00:00Z")],
})  # fmt: skip
STRIPE_EXPECTED = {
    "day": [1600, 3100, 3100, 3000, 1200],
    "millisecond": [1550, 3100, 3100, 3000, 1250],
    "month": [3000, 3000, 3000, 3000],
}


@pytest.mark.parametrize("method", ["day", "millisecond", "month"])
def test_stripe_120_usd_by_method(method):
    out = expand_lines(STRIPE, method)
    assert out["recognized"].tolist() == STRIPE_EXPECTED[method]
    months = pd.date_range("2026-06-01", periods=len(out), freq="MS", tz="UTC")
    assert list(out["period"]) == list(months)
    assert out["recognized"].dtype == "int64"


@pytest.mark.parametrize("method", ["day", "millisecond", "month"])
def test_stripe_120_usd_through_the_engine_uses_the_entity_method(method):
    b = Book(method=method)
    b.invoice("in_s", "2026-06-15T12:00:00Z",
              [("il_s", 12000, "2026-06-15T12:00:00Z", "2026-10-13T12:00:00Z")])  # fmt: skip
    r = recognize(**b.frames())
    rec = r.schedule.groupby("period")["recognized"].sum()
    assert rec[rec != 0].tolist() == STRIPE_EXPECTED[method]


def test_jpy_exponent_0_split_and_conversion():
    lines = pd.DataFrame({
        "line_key": ["in_j/il_j"], "amount": [10000],
        "period_start": [pd.Timestamp("2026-01-15", tz="UTC")],
        "period_end": [pd.Timestamp("2026-04-15", tz="UTC")],
    })  # fmt: skip
    out = expand_lines(lines)
    # 90 days: 17 / 28 / 31 / 14; the two spare yen go to the largest remainders
    assert out["recognized"].tolist() == [1889, 3111, 3444, 1556]
    assert out["recognized"].tolist() == allocate(10000, [17, 28, 31, 14]).tolist()

    b = Book()  # a JPY invoice in a USD entity at 0.0067 USD per yen
    b.invoice("in_j", "2026-01-15", [("il_j", 10000, "2026-01-15", "2026-04-15")],
              currency="JPY", fx_rate="0.0067")  # fmt: skip
    r = recognize(**b.frames())
    s = r.schedule
    assert s["recognized"].tolist() == [1889, 3111, 3444, 1556]
    assert s["recognized_functional"].tolist() == [1266, 2084, 2307, 1043]
    assert s["recognized_functional"].sum() == convert(10000, "0.0067", "JPY", "USD") == 6700
    assert_journals_balance(r)


def test_kwd_exponent_3_split_and_conversion():
    lines = pd.DataFrame({
        "line_key": ["in_k/il_k"], "amount": [1000],  # 1.000 KWD
        "period_start": [pd.Timestamp("2026-01-01", tz="UTC")],
        "period_end": [pd.Timestamp("2026-04-01", tz="UTC")],
    })  # fmt: skip
    out = expand_lines(lines)
    # 31 / 28 / 31 days: January and March tie for the spare fils, January is earlier
    assert out["recognized"].tolist() == [345, 311, 344]

    b = Book()
    b.invoice("in_k", "2026-01-01", [("il_k", 1000, "2026-01-01", "2026-04-01")],
              currency="KWD", fx_rate="3.25")  # fmt: skip
    r = recognize(**b.frames())
    assert r.schedule["recognized_functional"].tolist() == [112, 101, 112]
    assert r.schedule["recognized_functional"].sum() == convert(1000, "3.25", "KWD", "USD")
    assert_journals_balance(r)


def test_credit_note_earned_part_is_contra_revenue_rest_reduces_deferred():
    b = Book()
    b.invoice("in_y", "2026-01-01", [("il_y", 120000, "2026-01-01", "2027-01-01")])
    b.credit_note("cn_y", "in_y", "2026-04-01", [("in_y/il_y", 60000)])
    r = recognize(**b.frames())
    s = r.schedule
    credit = s[s["source_type"] == "credit_note"].set_index("period")
    # the credit follows the line's days; Jan-Mar is earned already: contra-revenue in April
    share = allocate(60000, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    assert credit.index.min() == M[4]
    assert credit.loc[M[4], "contra_revenue"] == -share[:3].sum()
    assert credit.loc[M[4], "recognized"] == -share[:4].sum()
    assert credit["recognized"].loc[M[5] :].tolist() == (-share[4:]).tolist()
    assert moves(r, "CreditNotes") == {M[4]: int(share[:3].sum())}
    # the unearned part comes off deferred revenue in April
    cn = r.accounting_lines.query("event == 'credit_note' and account == 'DeferredRevenue'")
    assert (cn["debit"] - cn["credit"]).sum() == 60000 - share[:3].sum()
    assert moves(r, "AccountsReceivable") == {M[1]: 120000, M[4]: -60000}
    assert s["recognized"].sum() == 60000
    assert_journals_balance(r)


def test_void_reverses_what_was_recognized_in_the_void_month_and_nothing_after():
    b = Book()
    b.invoice("in_v", "2026-01-10", [("il_v", 36500, "2026-01-01", "2027-01-01")], tax=1000,
              status="void", voided_at="2026-03-10")  # fmt: skip
    r = recognize(**b.frames())
    net = r.schedule.groupby("period")["recognized"].sum()
    assert net[M[1]] == 3100 and net[M[2]] == 2800
    assert net[M[3]] == -5900
    assert (net.loc[M[4] :] == 0).all()
    assert moves(r, "AccountsReceivable") == {M[1]: 37500, M[3]: -37500}
    assert moves(r, "TaxLiability") == {M[1]: -1000, M[3]: 1000}
    assert_journals_balance(r)


def test_voided_credit_note_restores_the_original_schedule():
    b = Book()
    b.invoice("in_y", "2026-01-01", [("il_y", 120000, "2026-01-01", "2027-01-01")])
    b.credit_note("cn_y", "in_y", "2026-04-01", [("in_y/il_y", 60000)], status="void",
                  voided_at="2026-08-15")  # fmt: skip
    r = recognize(**b.frames())
    s = r.schedule
    net = s.groupby("period")["recognized"].sum()
    line = s[s["source_type"] == "invoice_line"].set_index("period")["recognized"]
    assert (net.loc[M[9] :] == line.loc[M[9] :]).all()  # original schedule after the void
    assert net.sum() == 120000
    assert net.loc[: M[8]].sum() == line.loc[: M[8]].sum()  # caught up in the void month
    earned = -int(s.loc[s["source_type"] == "credit_note", "contra_revenue"].sum())
    assert earned > 0
    assert moves(r, "CreditNotes") == {M[4]: earned, M[8]: -earned}
    assert moves(r, "AccountsReceivable") == {M[1]: 120000, M[4]: -60000, M[8]: 60000}
    assert_journals_balance(r)


def test_schedule_meets_the_derived_contract():
    derived = pytest.importorskip("sync_core.contracts.derived")
    b = Book()
    b.invoice("in_apr", "2026-04-01", [("il_90", 9000, "2026-04-01", "2026-05-01")])
    b.invoice(
        "in_may",
        "2026-05-01",
        [
            ("il_unused", -3000, "2026-04-21", "2026-05-01"),
            ("il_upgrade", 4000, "2026-04-21", "2026-05-01"),
        ],
    )
    b.credit_note("cn_1", "in_apr", "2026-04-10", [("in_apr/il_90", 1000)], status="void",
                  voided_at="2026-06-01")  # fmt: skip
    r = recognize(**b.frames())
    derived.RevenueScheduleModel.validate(r.schedule)
