"""The posting plan reads only what it needs of the ledger: the history of the proposed keys,
the journals whose events belong to the period (stale ones, a correction posted to a later
period included) and the invoices payments wait for. The proposal and the postings over that
view are those over the entity's whole ledger, and neither the view nor the SQL that reads it
grows with the ledger's other periods or entities. Figures: worked example 1 (31.00 USD a
month from the 15th: 17.00 in the first month, 14.00 in the next)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from sync_core.erp.ledger import SqlLedger
from sync_core.erp.poster import post_period
from sync_core.erp.queue import ExceptionQueue
from sync_core.posting import DEFAULT_CHART
from sync_core.posting_plan import ledger_view, plan_documents, plan_postings
from sync_core.proposal import propose, proposed_keys, ready_lines, rule_holds
from sync_core.revenue import recognize
from sync_core.subledger import with_sources
from sync_core.warehouse.store import _engine
from tests.revenue.factory import Book

MONTHS = pd.date_range("2025-01-01", "2025-06-01", freq="MS", tz="UTC")
JAN, FEB, MAR = MONTHS[:3]
CUSTOMERS = pd.DataFrame({"customer_id": ["cus_1"], "erp_customer_id": ["C-1"]})


def monthly_book() -> Book:
    """An invoice a month (31.00, service from the 15th to the 15th), each paid on the 20th."""
    book = Book()
    for m in MONTHS:
        start, end = m + pd.Timedelta(days=14), m + pd.DateOffset(months=1, days=14)
        book.invoice(f"in_{m:%m}", start, [("l1", 3100, start, end)])
        book.pay(f"py_{m:%m}", f"in_{m:%m}", 3100, m + pd.Timedelta(days=19))
    return book


class Books:
    def __init__(self, tmp_path):
        self.ledger = SqlLedger(_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}"))
        self.queue = ExceptionQueue(self.ledger.engine)

    def propose(self, book: Book, period, *, whole: bool, closed=frozenset()):
        frames = book.frames()
        lines = with_sources(recognize(**frames).accounting_lines, frames)
        lines = lines[lines["period"] == period].reset_index(drop=True)
        posted = (
            self.ledger.journals("US01")
            if whole
            else lambda docs: ledger_view(self.ledger, "US01", period, docs)
        )
        proposal = propose(
            lines, customers=CUSTOMERS, subsidiary="1", chart=DEFAULT_CHART, posted=posted,
            ledger_lines=self.ledger.lines, period=period, closed_periods=set(closed),
            policy="next_open", open_exceptions=self.queue.open("US01"),
        )  # fmt: skip
        return proposal, lines

    def close(self, book: Book, period, closed=frozenset()):
        proposal, lines = self.propose(book, period, whole=False, closed=closed)
        return post_period(
            ready_lines(proposal), rule_holds(proposal), entity_id="US01", period=period,
            ledger=self.ledger, queue=self.queue, known_keys=proposed_keys(proposal),
            accounting_lines=lines, closed_periods=set(closed),
        )  # fmt: skip


def other_entity_history(ledger: SqlLedger, months: int = 24, per_month: int = 50) -> None:
    """Two years of another entity's journals: what the US01 plan must never read."""
    heads, lines = [], []
    for m in pd.date_range("2023-01-01", periods=months, freq="MS"):
        for i in range(per_month):
            eid = f"CA01-INV-in_{m:%Y%m}_{i}-v1"
            heads.append({
                "external_id": eid, "entity_id": "CA01", "erp_subsidiary_id": "2", "period": m,
                "source_period": m, "event": "invoice_finalized",
                "document_id": f"in_{m:%Y%m}_{i}", "version": 1, "currency": "CAD",
                "total_debit": 100, "line_count": 2, "content_hash": "x", "reverses": None,
                "correction": False, "run_id": None,
            })  # fmt: skip
            for n, (dr, cr) in enumerate([(100, 0), (0, 100)], start=1):
                lines.append({
                    "external_id": eid, "line_no": n, "account": "A", "erp_account": "1",
                    "erp_customer_id": None, "debit": dr, "credit": cr, "currency": "CAD",
                    "debit_functional": dr, "credit_functional": cr,
                    "functional_currency": "CAD", "correlation_id": eid,
                })  # fmt: skip
    ledger.post(pd.DataFrame(heads), pd.DataFrame(lines))


def ledger_selects(engine: sa.Engine, run) -> list[str]:
    """The SELECTs on ledger_journals that ``run()`` issues."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM ledger_journals" in statement:
            seen.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_proposal_over_the_view_is_the_proposal_over_the_whole_ledger(tmp_path):
    books, book = Books(tmp_path), monthly_book()
    for m in MONTHS:
        books.close(book, m)
    # late changes in March: a new invoice, and a credit note for the whole March invoice
    book.invoice("in_late", MAR + pd.Timedelta(days=20), [("l1", 6200, "2025-03-21", "2025-04-21")])
    book.credit_note("cn_03", "in_03", MAR + pd.Timedelta(days=25), subtotal=3100)
    whole, _ = books.propose(book, MAR, whole=True)
    view, _ = books.propose(book, MAR, whole=False)
    pd.testing.assert_frame_equal(view, whole)
    actions = whole.drop_duplicates("journal_key").set_index("journal_key")["action"]
    assert actions["US01-INV-in_late"] == "new"
    assert actions["US01-REV-REV-202503-USD"] == "repost"
    assert actions["US01-PAY-py_03"] == "unchanged"
    # and the posting plan too (what post_period hands the ledger)
    ready = ready_lines(whole)
    kw = {"closed_periods": set(), "period": MAR, "known_keys": proposed_keys(whole)}
    everything = plan_postings(ready, books.ledger.journals("US01"), **kw)
    needed = plan_postings(
        ready, ledger_view(books.ledger, "US01", MAR, plan_documents(ready)), **kw
    )
    pd.testing.assert_frame_equal(needed.headers, everything.headers)
    pd.testing.assert_frame_equal(needed.lines, everything.lines)
    assert needed.unchanged == everything.unchanged


def test_a_stale_correction_posted_to_a_later_period_is_found_by_its_source_period(tmp_path):
    """February is closed in the ERP: its revenue posts in March as a correction. A full
    credit then nets February's revenue to zero: the stale journal (source period February,
    posted in March) is reversed, in March, exactly as when the plan reads the whole ledger."""
    books = Books(tmp_path)
    book = Book().invoice("in_1", "2025-02-15", [("l1", 3100, "2025-02-15", "2025-03-15")])
    books.close(book, FEB, closed={FEB})
    heads = books.ledger.journals("US01").set_index("external_id")
    rev = heads.loc["US01-REV-REV-202502-USD-v1"]
    assert (str(rev["period"]), str(rev["source_period"]), rev["correction"]) == (
        "2025-03-01", "2025-02-01", True)  # fmt: skip
    book.credit_note("cn_1", "in_1", "2025-02-20", subtotal=3100)
    whole, _ = books.propose(book, FEB, whole=True, closed={FEB})
    view, _ = books.propose(book, FEB, whole=False, closed={FEB})
    pd.testing.assert_frame_equal(view, whole)
    stale = view[view["action"] == "reverse_stale"]
    assert set(stale["journal_key"]) == {"US01-REV-REV-202502-USD"}
    assert set(stale["posting_period"]) == {MAR}
    assert int(stale.loc[stale["account"] == "Revenue", "debit"].sum()) == 1550  # 14 of 28 days
    report = books.close(book, FEB, closed={FEB})
    assert "US01-REV-REV-202502-USD-v1-REV" in report.posted


def test_the_plan_reads_no_more_when_the_ledger_holds_other_periods_and_entities(tmp_path):
    books, book = Books(tmp_path), monthly_book()
    for m in MONTHS[:3]:
        books.close(book, m)
    before = ledger_view(books.ledger, "US01", FEB, {"in_02", "py_02", "REV-202502-USD"})
    proposal_before, _ = books.propose(book, FEB, whole=False)
    # three more months of US01 and two years of another entity
    for m in MONTHS[3:]:
        books.close(book, m)
    other_entity_history(books.ledger)
    assert len(books.ledger.journals()) > 10 * len(before)
    after = ledger_view(books.ledger, "US01", FEB, {"in_02", "py_02", "REV-202502-USD"})
    pd.testing.assert_frame_equal(after.drop(columns="posted_at"),
                                  before.drop(columns="posted_at"))  # fmt: skip
    # February's own journals: its invoice, its payment, its revenue (January's invoice earns
    # 14.00 there, in the same journal)
    assert sorted(after["external_id"]) == [
        "US01-INV-in_02-v1", "US01-PAY-py_02-v1", "US01-REV-REV-202502-USD-v1",
    ]  # fmt: skip
    proposal_after, _ = books.propose(book, FEB, whole=False)
    pd.testing.assert_frame_equal(proposal_after, proposal_before)
    assert set(proposal_after["action"]) == {"unchanged"}
    # every read of the journals, proposing or posting, is narrowed to US01 and by document
    # or source period (the indexed columns)
    propose_feb = lambda: books.propose(book, FEB, whole=False)  # noqa: E731
    close_feb = lambda: books.close(book, FEB)  # noqa: E731
    for run, reads in ((propose_feb, 2), (close_feb, 4)):  # closing proposes, then posts
        sql = ledger_selects(books.ledger.engine, run)
        assert len(sql) == reads, sql  # each time: the period's documents, their journals
        for statement in sql:
            assert "ledger_journals.entity_id = ?" in statement, statement
            assert (
                "ledger_journals.document_id IN" in statement
                or "ledger_journals.source_period = ?" in statement
            ), statement
