"""The column-wise posting plan and SQLite ledger writes keep their observable contract:
the order of headers, lines, held rows and unchanged keys, the header dtypes, the content
hash, the overflow error, and the text SQLite stores for dates, timestamps and booleans."""

import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa

from sync_core.erp.ledger import SqlLedger
from sync_core.money import AmountOverflow
from sync_core.posting_plan import content_hash, plan_postings

JAN, FEB = pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-02-01", tz="UTC")
STAMP = pd.Timestamp("2030-03-04 05:06:07.891234", tz="UTC")


def journal(doc, event="invoice_finalized", period=FEB, amount=100, invoice=None, day=3):
    """A balanced two-line journal of ``doc``, keyed like the proposal keys it."""
    key = f"US01-{event[:3].upper()}-{doc}"
    tx = period + pd.Timedelta(days=day)
    rows = [(1, "ar", "1100", amount, 0), (2, "revenue", "4000", 0, amount)]
    return pd.DataFrame(
        {"entity_id": "US01", "period": period, "journal_key": key, "line_no": n, "event": event,
         "document_id": doc, "account": a, "erp_account": e, "erp_subsidiary_id": "1",
         "erp_customer_id": "C-1" if n == 1 else None, "debit": d, "credit": c,
         "currency": "USD", "debit_functional": d, "credit_functional": c,
         "functional_currency": "USD", "correlation_id": f"{doc}/{n}", "memo": f"{event} {doc}",
         "transaction_date": tx, "invoice_id": invoice or doc}
        for n, a, e, d, c in rows
    )  # fmt: skip


def proposal(*journals):
    return pd.concat(journals, ignore_index=True)


@pytest.fixture
def ledger(tmp_path):
    return SqlLedger(sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))


def post(ledger, plan):
    return ledger.post(plan.headers.assign(posted_at=STAMP), plan.lines)


def test_plan_order_dtypes_and_lines(ledger):
    first = plan_postings(proposal(journal("b"), journal("c"), journal("s")), ledger.journals(),
                          set(), period=FEB)  # fmt: skip
    post(ledger, first)
    now = proposal(
        journal("a"),
        journal("b", amount=150),  # changed: reversal of v1, then v2
        journal("c"),  # unchanged
        journal("p", event="payment", invoice="in_missing"),  # waits for its invoice
        journal("e", period=JAN, day=5),  # closed January: moves to February (its last day)
    )  # "s" is no longer proposed: stale
    plan = plan_postings(now, ledger.journals("US01"), {JAN}, run_id="r2", period=FEB)
    h = plan.headers
    assert list(h["external_id"]) == [
        "US01-INV-a-v1", "US01-INV-b-v1-REV", "US01-INV-b-v2", "US01-INV-e-v1", "US01-INV-s-v1-REV",
    ]  # fmt: skip
    assert list(h["reverses"]) == [None, "US01-INV-b-v1", None, None, "US01-INV-s-v1"]
    assert list(h["version"]) == [1, 1, 2, 1, 1] and list(h["total_debit"]) == [100, 100, 150] + [
        100, 100]  # fmt: skip
    assert list(h["correction"]) == [False, False, False, True, False]
    assert list(h["memo"]) == ["invoice_finalized a", "Reversal of US01-INV-b-v1",
                               "invoice_finalized b", "invoice_finalized e",
                               "Reversal of US01-INV-s-v1"]  # fmt: skip
    feb_end = pd.Timestamp("2025-02-28", tz="UTC")
    assert list(h["transaction_date"]) == [FEB + pd.Timedelta(days=3), feb_end,
                                           FEB + pd.Timedelta(days=3), feb_end, feb_end]  # fmt: skip
    assert (h["period"] == FEB).all() and h.loc[3, "source_period"] == JAN
    assert h.dtypes.astype(str).to_dict() == {
        "external_id": "object", "entity_id": "object", "erp_subsidiary_id": "object",
        "period": "datetime64[ns, UTC]", "source_period": "datetime64[ns, UTC]",
        "event": "object", "document_id": "object", "version": "int64", "currency": "object",
        "total_debit": "int64", "line_count": "int64", "content_hash": "object",
        "reverses": "object", "correction": "bool", "run_id": "object", "memo": "object",
        "transaction_date": "datetime64[ns, UTC]",
    }  # fmt: skip
    # lines: new journals' lines with reversal placeholders in place, in header order
    assert list(plan.lines["external_id"]) == [
        "US01-INV-a-v1", "US01-INV-a-v1", "US01-INV-b-v1-REV", "US01-INV-b-v2", "US01-INV-b-v2",
        "US01-INV-e-v1", "US01-INV-e-v1", "US01-INV-s-v1-REV",
    ]  # fmt: skip
    assert plan.lines["reverses"].notna().tolist() == [False, False, True] + [False] * 4 + [True]
    assert plan.unchanged == ["US01-INV-c"]
    assert list(plan.held["journal_key"]) == ["US01-PAY-p"]
    assert list(plan.held["reason_code"]) == ["waiting_for_invoice"]

    hold = plan_postings(now, ledger.journals("US01"), {JAN, FEB}, "hold", period=FEB)
    assert hold.headers.empty and hold.unchanged == ["US01-INV-c"]
    assert list(hold.held["journal_key"]) == [
        "US01-INV-a", "US01-INV-b", "US01-PAY-p", "US01-INV-e", "US01-INV-s"]  # fmt: skip
    assert list(hold.held["reason_code"]) == ["period_closed"] * 2 + ["waiting_for_invoice"] + [
        "period_closed"] * 2  # fmt: skip


def test_content_hash_is_pinned_and_line_order_free():
    lines = journal("x")
    expected = pd.Series(["25202aa527a1caeaccc5a78d2da647bd"], dtype=object,
                         index=pd.Index(["US01-INV-x"], name="journal_key"))  # fmt: skip
    pd.testing.assert_series_equal(content_hash(lines), expected)
    pd.testing.assert_series_equal(content_hash(lines.iloc[::-1]), expected)


def test_overflowing_total_names_the_journal(ledger):
    big = journal("x", amount=2**62)
    big = proposal(big, big.assign(line_no=[3, 4], correlation_id=["x/3", "x/4"]))
    with pytest.raises(AmountOverflow, match="total debit of US01-INV-x-v1"):
        plan_postings(big, ledger.journals(), set(), period=FEB)


def test_sqlite_stores_dates_stamps_and_booleans_as_text_and_ints(ledger, tmp_path):
    plan = plan_postings(proposal(journal("a"), journal("e", period=JAN)), ledger.journals(),
                         {JAN}, period=FEB)  # fmt: skip
    first = post(ledger, plan)
    assert first.inserted == list(plan.headers["external_id"]) and not first.already_posted
    again = post(ledger, plan)
    assert not again.inserted and again.already_posted == first.inserted
    con = sqlite3.connect(tmp_path / "ledger.db")
    rows = con.execute(
        "SELECT period, source_period, transaction_date, posted_at, correction, "
        "typeof(correction), typeof(total_debit) FROM ledger_journals ORDER BY external_id"
    ).fetchall()
    lines = con.execute("SELECT count(*), typeof(debit), typeof(erp_customer_id) FROM "
                        "ledger_journal_lines GROUP BY 2, 3 ORDER BY 3").fetchall()  # fmt: skip
    con.close()
    stamp = "2030-03-04 05:06:07.891234"
    assert rows == [
        ("2025-02-01", "2025-02-01", "2025-02-04", stamp, 0, "integer", "integer"),
        ("2025-02-01", "2025-01-01", "2025-02-28", stamp, 1, "integer", "integer"),
    ]
    assert lines == [(2, "integer", "null"), (2, "integer", "text")]
