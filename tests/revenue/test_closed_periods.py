"""Closed periods: late documents land in the first open month as corrections; closed months
keep what was booked."""

from __future__ import annotations

import pandas as pd

from sync_core.revenue import apply_closed_periods, recognize, rollforward
from tests.revenue.factory import Book

M = {m: pd.Timestamp(f"2026-{m:02d}-01", tz="UTC") for m in range(1, 13)}
VALUE_COLS = ["recognized", "recognized_functional"]


def closed_rows(schedule, through):
    return schedule[schedule["period"] <= through]


def test_late_usage_into_a_closed_month_lands_in_the_first_open_month():
    b = Book()
    b.invoice("in_u", "2026-02-14",
              [("il_u", 3200, "2026-01-14", "2026-02-14", "usage", "si_u")])  # fmt: skip
    b.use("si_u", "2026-01-25", 15).use("si_u", "2026-02-04", 17)
    sched = recognize(**b.frames()).schedule
    assert sched.set_index("period")["recognized"].to_dict() == {M[1]: 1500, M[2]: 1700}

    # January was closed with nothing booked for this invoice (it did not exist yet)
    out = apply_closed_periods(sched, {"US01": M[1]}, None)
    jan = out[out["period"] == M[1]]
    assert jan["recognized"].sum() == 0  # the closed month is not rewritten
    fix = out[out["correction"]]
    assert len(fix) == 1
    row = fix.iloc[0]
    assert row["period"] == M[2] and row["original_period"] == M[1]
    assert row["recognized"] == 1500 and row["recognized_functional"] == 1500
    assert out.groupby("period")["recognized"].sum().to_dict() == {M[1]: 0, M[2]: 3200}
    assert out["recognized"].sum() == sched["recognized"].sum()
    assert (out.loc[~out["correction"], "original_period"].isna()).all()
    # balances stay consistent: nothing unbilled in January any more, rollforward holds
    assert out.loc[out["period"] == M[1], "unbilled_balance"].sum() == 0
    roll = rollforward(out)
    assert (roll["opening_deferred"] + roll["billings"] - roll["recognized"] - roll["credits"]
            == roll["closing_deferred"]).all()  # fmt: skip


def test_late_credit_note_into_a_closed_month_is_corrected_in_the_first_open_month():
    b = Book()
    b.invoice("in_y", "2026-01-01", [("il_y", 120000, "2026-01-01", "2027-01-01")])
    before = recognize(**b.frames()).schedule
    booked = closed_rows(before, M[3])[["entity_id", "source_id", "period", "recognized"]]

    # a credit note issued in February reaches us after March was closed
    b.credit_note("cn_late", "in_y", "2026-02-10", [("in_y/il_y", 30000)])
    result = recognize(**b.frames(), closed_through={"US01": M[3]}, booked=booked)
    out = result.schedule

    # closed months: exactly what was booked, per source and month
    got = closed_rows(out, M[3]).groupby(["source_id", "period"])["recognized"].sum()
    got = got[got != 0]
    want = booked.groupby(["source_id", "period"])["recognized"].sum()
    pd.testing.assert_series_equal(got, want, check_names=False)
    # the credit's Feb and March rows move to April as corrections
    fix = out[out["correction"]]
    assert set(fix["source_id"]) == {"cn_late/in_y/il_y"}
    assert set(fix["period"]) == {M[4]}
    assert set(fix["original_period"]) == {M[2], M[3]}
    credit = out[out["source_type"] == "credit_note"]
    assert credit["recognized"].sum() == -30000
    assert credit.loc[credit["period"] <= M[3], "recognized"].sum() == 0
    # the note itself is booked in April, the first open month
    assert (credit["document_period"] == M[4]).all()
    cn_lines = result.accounting_lines.query("document_id == 'cn_late'")
    assert set(cn_lines["period"]) == {M[4]}
    # journals balance, totals unchanged
    g = result.accounting_lines.groupby(["document_id", "event", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]].sum()  # fmt: skip
    assert (g["debit"] == g["credit"]).all() and (
        g["debit_functional"] == g["credit_functional"]).all()  # fmt: skip
    assert out["recognized"].sum() == 90000


def test_booked_amounts_that_differ_are_trued_up_and_unknown_sources_left_alone():
    b = Book().invoice("in_a", "2026-01-01", [("il_a", 9000, "2026-01-01", "2026-04-01")])
    sched = recognize(**b.frames()).schedule
    booked = pd.DataFrame({
        "entity_id": ["US01", "US01", "US01"],
        "source_id": ["in_a/il_a", "in_a/il_a", "gone/il"],
        "period": [M[1], M[2], M[1]],
        "recognized": [3000, 2500, 777],  # February was booked 300 short
    })  # fmt: skip
    out = apply_closed_periods(sched, {"US01": M[2]}, booked)
    by_month = out.groupby("period")["recognized"].sum()
    assert by_month[M[1]] == 3000 and by_month[M[2]] == 2500
    fix = out[out["correction"]]
    assert len(fix) == 2  # January (+100 vs 3100 scheduled) and February (+300)
    assert fix.set_index("original_period")["recognized"].to_dict() == {M[1]: 100, M[2]: 300}
    assert set(fix["period"]) == {M[3]}
    assert out["recognized"].sum() == 9000
    assert "gone/il" not in set(out["source_id"])


def test_entities_not_closed_are_untouched():
    b = Book().invoice(
        "in_u", "2026-02-14", [("il_u", 3200, "2026-01-14", "2026-02-14", "usage", "si_u")]
    )
    b.use("si_u", "2026-01-25", 15)
    sched = recognize(**b.frames()).schedule
    out = apply_closed_periods(sched, {"OTHER": M[1]}, None)
    pd.testing.assert_frame_equal(out.reset_index(drop=True), sched.reset_index(drop=True))
