"""One amount is bounded (|amount| <= 10**15 minor units) at the contract and in the engine's
pre-check, and a sum that would not fit int64 raises a named error instead of wrapping.

numpy and pandas int64 sums wrap silently: two amounts of 2**62 sum to -2**63
(``-9223372036854775808``). 10**15 minor units is 10,000,000,000,000.00 USD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sync_core.contracts import MODELS, split_valid
from sync_core.money import MAX_AMOUNT, AmountOverflow, checked_group_sum, checked_sum
from sync_core.revenue import recognize
from tests.revenue.factory import Book

LIMIT = 1_000_000_000_000_000  # 10**15, written out
OVER = 1_000_000_000_000_001


def test_the_bound_is_ten_to_the_fifteen():
    assert MAX_AMOUNT == LIMIT


# ---------------------------------------------------------------------------- the contract


def _contract(name: str, frames: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_valid(frames[name], MODELS[name], name)


def test_an_invoice_of_ten_to_the_fifteen_passes_and_one_more_is_quarantined():
    b = Book()
    b.invoice("in_max", "2026-01-01", [("il_max", LIMIT, "2026-01-01", "2026-02-01")])
    b.invoice("in_over", "2026-01-01", [("il_over", OVER, "2026-01-01", "2026-02-01")])
    frames = b.frames(validate=False)
    good, bad = _contract("invoices", frames)
    assert list(good["invoice_id"]) == ["in_max"]
    assert int(good["total"].iloc[0]) == 1_000_000_000_000_000
    over = bad[bad["source_id"] == "in_over"]
    assert set(over["rule"]) == {"subtotal.in_range", "total.in_range"}
    assert over["message"].str.contains("1000000000000001").all()
    good_lines, bad_lines = _contract("invoice_lines", frames)
    assert list(good_lines["line_key"]) == ["in_max/il_max"]
    assert list(bad_lines["rule"]) == ["amount.in_range"]
    assert "1000000000000001" in bad_lines["message"].iloc[0]


def test_a_negative_amount_beyond_the_bound_is_quarantined():
    b = Book()
    b.invoice("in_neg", "2026-01-01", [("il_neg", -OVER, "2026-01-01", "2026-02-01")])
    _, bad = _contract("invoice_lines", b.frames(validate=False))
    assert list(bad["rule"]) == ["amount.in_range"]
    assert "-1000000000000001" in bad["message"].iloc[0]


def test_a_payment_beyond_the_bound_is_quarantined():
    b = Book()
    b.invoice("in_1", "2026-01-01", [("il_1", 3100, "2026-01-01", "2026-02-01")])
    b.pay("py_over", "in_1", OVER, "2026-01-05")
    b.pay("py_ok", "in_1", 3100, "2026-01-06")
    good, bad = _contract("payments", b.frames(validate=False))
    assert list(good["payment_id"]) == ["py_ok"]
    assert list(bad["rule"]) == ["amount.less_than_or_equal_to"]


# ---------------------------------------------------------------------------- the engine


def test_the_engine_quarantines_an_amount_beyond_the_bound_it_was_handed():
    b = Book()
    b.invoice("in_ok", "2026-01-01", [("il_ok", 3100, "2026-01-01", "2026-02-01")])
    b.invoice("in_over", "2026-01-01", [("il_over", OVER, "2026-01-01", "2026-02-01")])
    r = recognize(**b.frames(validate=False))
    got = set(zip(r.quarantine["source_id"], r.quarantine["rule"]))
    assert ("in_over/il_over", "amount_integer") in got
    assert ("in_over", "subtotal_integer") in got
    assert set(r.schedule["invoice_id"]) == {"in_ok"}
    assert int(r.schedule["recognized"].sum()) == 3100


# ---------------------------------------------------------------------------- sums


def test_numpy_wraps_where_checked_sum_raises():
    values = np.array([2**62, 2**62], dtype=np.int64)
    assert int(values.sum()) == -9_223_372_036_854_775_808  # the silent wrap
    with pytest.raises(
        AmountOverflow, match=r"AR balance US01 2026-01 USD: the sum 9223372036854775808"
    ):
        checked_sum(values, "AR balance US01 2026-01 USD")


def test_ten_thousand_maximal_amounts_overflow_nine_thousand_do_not():
    assert checked_sum(np.full(9_000, LIMIT, dtype=np.int64), "t") == 9_000_000_000_000_000_000
    with pytest.raises(AmountOverflow, match="journal total: the sum 10000000000000000000 "):
        checked_sum(np.full(10_000, LIMIT, dtype=np.int64), "journal total")
    with pytest.raises(AmountOverflow, match="the sum -10000000000000000000 "):
        checked_sum(np.full(10_000, -LIMIT, dtype=np.int64), "credits")


def test_checked_sum_is_exact_at_the_edge():
    edge = [9_223_372_036_854_775_807, 5, -5]
    assert checked_sum(np.array(edge, dtype=np.int64), "edge") == 9_223_372_036_854_775_807
    assert checked_sum(edge, "edge") == 9_223_372_036_854_775_807
    assert checked_sum(np.array([310, 3100, -410], dtype=np.int64), "small") == 3000
    assert checked_sum(np.array([], dtype=np.int64), "none") == 0


def test_checked_group_sum_names_the_group_that_overflows():
    frame = pd.DataFrame(
        {
            "account": ["Cash", "Cash", "Revenue", "Revenue"],
            "debit": np.array([5 * 10**18, 5 * 10**18, 3100, 410], dtype=np.int64),
            "credit": np.array([0, 0, 0, 0], dtype=np.int64),
        }
    )
    assert int(frame.groupby("account")["debit"].sum()["Cash"]) == -8_446_744_073_709_551_616
    with pytest.raises(AmountOverflow, match=r"GL totals \(debit, account='Cash'\)"):
        checked_group_sum(frame, "account", ["debit", "credit"], "GL totals")
    fine = checked_group_sum(frame[frame["account"] == "Revenue"], "account", "debit", "GL")
    assert int(fine.loc["Revenue", "debit"]) == 3510


def test_checked_group_sum_by_several_keys():
    frame = pd.DataFrame(
        {
            "journal_key": ["j1", "j1", "j2"],
            "currency": ["USD", "USD", "EUR"],
            "debit": np.array([3100, 310, 2000], dtype=np.int64),
        }
    )
    out = checked_group_sum(frame, ["journal_key", "currency"], "debit", "journals")
    assert int(out.loc[("j1", "USD"), "debit"]) == 3410
    assert int(out.loc[("j2", "EUR"), "debit"]) == 2000
