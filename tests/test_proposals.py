"""Proposed journals before posting: the diff against the ERP, held documents held whole, stale
journals reversed, the blocking checks failing when they should, and a GL line traced back
to the invoice lines it summarizes. Figures: the domain brief's worked example 1 (31.00 USD
monthly from Jan 15: January 17.00, February 14.00)."""

from __future__ import annotations

import pandas as pd
import pytest

from sync_core.erp.ledger import SqlLedger
from sync_core.erp.poster import post_period
from sync_core.erp.queue import ExceptionQueue
from sync_core.posting import DEFAULT_CHART, journal_key
from sync_core.proposal import propose, proposed_keys, ready_lines, rule_holds
from sync_core.proposal_checks import proposal_checks
from sync_core.revenue import recognize
from sync_core.subledger import with_sources
from sync_core.warehouse.store import _engine
from tests.revenue.factory import Book

JAN, FEB = pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-02-01", tz="UTC")
MONTHLY = [("l1", 3100, "2025-01-15", "2025-02-15")]


def customers(**erp_ids) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(erp_ids), "erp_customer_id": list(erp_ids.values())})


class Books:
    """A ledger and queue, and a month closed through propose + post."""

    def __init__(self, tmp_path):
        eng = _engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
        self.ledger, self.queue = SqlLedger(eng), ExceptionQueue(eng)

    def month(self, book: Book, cust: pd.DataFrame, period: pd.Timestamp):
        frames = book.frames()
        result = recognize(**frames)
        lines = with_sources(result.accounting_lines, frames)
        lines = lines[lines["period"] == period].reset_index(drop=True)
        proposal = propose(
            lines, customers=cust, subsidiary="1", chart=DEFAULT_CHART,
            posted=self.ledger.journals("US01"), ledger_lines=self.ledger.lines, period=period,
            closed_periods=set(), policy="next_open", open_exceptions=self.queue.open("US01"),
        )  # fmt: skip
        schedule = result.schedule[result.schedule["period"] == period]
        checks = {c.name: c for c in proposal_checks(proposal, schedule, set())}
        return proposal, checks, lines

    def close(self, book: Book, cust: pd.DataFrame, period: pd.Timestamp):
        proposal, checks, lines = self.month(book, cust, period)
        assert all(c.passed for c in checks.values()), [c for c in checks.values()]
        report = post_period(
            ready_lines(proposal), rule_holds(proposal), entity_id="US01", period=period,
            ledger=self.ledger, queue=self.queue, known_keys=proposed_keys(proposal),
            accounting_lines=lines,
        )  # fmt: skip
        return proposal, report

    def gl(self, account: str) -> int:
        """Net credit of an account over the whole ledger (minor units)."""
        lines = self.ledger.lines()
        sel = lines[lines["account"] == account]
        return int((sel["credit"] - sel["debit"]).sum())


def journals(proposal: pd.DataFrame) -> pd.DataFrame:
    return proposal.drop_duplicates("journal_key").set_index("journal_key")


def test_a_full_credit_in_a_posted_month_reverses_the_stale_revenue_journal(tmp_path):
    books, cust = Books(tmp_path), customers(cus_1="C-1")
    book = Book().invoice("in_1", "2025-01-15", MONTHLY)
    books.close(book, cust, JAN)
    assert books.gl("Revenue") == 1700
    # a credit note for the whole invoice in January: January's revenue nets to zero and the
    # revenue journal disappears from the proposal
    book.credit_note("cn_1", "in_1", "2025-01-20", subtotal=3100)
    proposal, checks, _ = books.month(book, cust, JAN)
    j = journals(proposal)
    assert j.loc["US01-REV-REV-202501-USD", "action"] == "reverse_stale"
    stale = proposal[proposal["journal_key"] == "US01-REV-REV-202501-USD"]
    assert stale.set_index("account")["debit"].to_dict()["Revenue"] == 1700
    assert j.loc["US01-CN-cn_1", "action"] == "new"
    _, report = books.close(book, cust, JAN)
    assert "US01-REV-REV-202501-USD-v1-REV" in report.posted
    assert books.gl("Revenue") == 0  # the GL no longer keeps revenue the schedule dropped
    assert books.gl("DeferredRevenue") == 0 and books.gl("AccountsReceivable") == 0
    # a rerun proposes nothing more: the stale journal is reversed once
    proposal, _, _ = books.month(book, cust, JAN)
    assert "reverse_stale" not in set(proposal["action"])


def test_an_invoice_held_for_master_data_holds_its_revenue_and_payment(tmp_path):
    books = Books(tmp_path)
    book = (
        Book()
        .invoice("in_1", "2025-01-15", MONTHLY, customer="cus_1")
        .invoice("in_2", "2025-01-15", [("l1", 6200, "2025-01-15", "2025-02-15")],
                 customer="cus_2")
        .pay("py_2", "in_2", 6200, "2025-02-01")
    )  # fmt: skip
    waiting = customers(cus_1="C-1", cus_2=None)
    proposal, _ = books.close(book, waiting, JAN)
    j = journals(proposal)
    assert j.loc["US01-INV-in_2", "reason_code"] == "customer_erp_id"
    own = "US01-REV-REV-202501-USD-in_2"
    assert (j.loc[own, "reason_code"], j.loc[own, "owner"]) == ("document_held", "master_data")
    held_rev = proposal[(proposal["journal_key"] == own) & (proposal["account"] == "Revenue")]
    assert int(held_rev["credit"].sum()) == 3400
    # the GL has in_1 only: revenue 17.00 and deferred 14.00, never a debit balance
    assert books.gl("Revenue") == 1700 and books.gl("DeferredRevenue") == 1400
    # the payment of the held invoice waits for it in February
    feb, _ = books.close(book, waiting, FEB)
    assert journals(feb).loc["US01-PAY-py_2", "reason_code"] == "waiting_for_invoice"

    # the customer's ERP id arrives: January releases the invoice and its revenue
    known = customers(cus_1="C-1", cus_2="C-2")
    proposal, report = books.close(book, known, JAN)
    j = journals(proposal)
    assert j.loc["US01-INV-in_2", "action"] == "new" and j.loc["US01-INV-in_2", "status"] == "ready"
    assert j.loc["US01-REV-REV-202501-USD", "action"] == "repost"
    assert {"US01-REV-REV-202501-USD-v1-REV", "US01-REV-REV-202501-USD-v2"} <= set(report.posted)
    assert books.gl("Revenue") == 1700 + 3400 + 1400  # and in_1's February, posted before
    books.close(book, known, FEB)
    assert books.gl("Revenue") == 3100 + 6200
    assert books.queue.open("US01").empty  # the held revenue and the payment are resolved
    assert books.gl("AccountsReceivable") == -3100  # a debit: in_1 unpaid, in_2 paid 62.00


def test_checks_fail_on_a_tampered_proposal(tmp_path):
    books, cust = Books(tmp_path), customers(cus_1="C-1")
    book = Book().invoice("in_1", "2025-01-15", MONTHLY)
    frames = book.frames()
    result = recognize(**frames)
    lines = with_sources(result.accounting_lines, frames)
    proposal = propose(
        lines[lines["period"] == JAN], customers=cust, subsidiary="1", chart=DEFAULT_CHART,
        posted=books.ledger.journals("US01"), ledger_lines=books.ledger.lines, period=JAN,
        closed_periods=set(), policy="next_open", open_exceptions=books.queue.open("US01"),
    )  # fmt: skip
    schedule = result.schedule[result.schedule["period"] == JAN]

    def failing(p, closed=frozenset()):
        return {c.name: c for c in proposal_checks(p, schedule, set(closed)) if not c.passed}

    assert failing(proposal) == {}
    lost = proposal[~((proposal["journal_key"] == "US01-REV-REV-202501-USD")
                      & (proposal["account"] == "Revenue"))]  # fmt: skip
    bad = failing(lost)
    assert set(bad) == {"proposal_balanced", "schedule_equals_proposed_gl"}
    assert bad["schedule_equals_proposed_gl"].metadata["max_drift_minor"] == 1700
    assert "revenue (functional USD): schedule -1700 != proposed 0" in (
        bad["schedule_equals_proposed_gl"].problems
    )
    unmapped = proposal.copy()
    unmapped.loc[unmapped["account"] == "DeferredRevenue", "erp_account"] = None
    assert set(failing(unmapped)) == {"proposal_accounts_mapped"}
    anonymous = proposal.copy()
    anonymous.loc[anonymous["event"] == "invoice_finalized", "erp_customer_id"] = None
    assert set(failing(anonymous)) == {"proposal_customers_known"}
    assert set(failing(proposal, {JAN})) == {"proposal_periods_open"}


def test_ledger_keeps_memo_date_and_the_sources_of_a_summarized_line(tmp_path):
    books, cust = Books(tmp_path), customers(cus_1="C-1", cus_2="C-2")
    book = (
        Book()
        .invoice("in_1", "2025-01-15", MONTHLY)
        .invoice("in_2", "2025-01-20", [("l1", 6200, "2025-01-15", "2025-02-15")],
                 customer="cus_2")
    )  # fmt: skip
    books.close(book, cust, JAN)
    heads = books.ledger.journals("US01").set_index("external_id")
    assert heads.loc["US01-INV-in_1-v1", "memo"] == "Invoice finalized in_1"
    assert str(heads.loc["US01-INV-in_2-v1", "transaction_date"]) == "2025-01-20"
    assert heads.loc["US01-REV-REV-202501-USD-v1", "memo"] == "Revenue recognized REV-202501-USD"
    assert str(heads.loc["US01-REV-REV-202501-USD-v1", "transaction_date"]) == "2025-01-31"
    # GL line -> the schedule sources (invoice lines) it summarizes: one join
    rows = pd.read_sql(
        "select l.line_no, l.credit, s.source_id, s.invoice_id, s.credit as source_credit "
        "from ledger_journal_lines l join ledger_journal_line_sources s "
        "on s.external_id = l.external_id and s.line_no = l.line_no "
        "where l.external_id = 'US01-REV-REV-202501-USD-v1' and l.account = 'Revenue' "
        "order by s.source_id",
        books.ledger.engine,
    )
    assert rows["credit"].tolist() == [5100, 5100]
    assert rows["source_id"].tolist() == ["in_1/l1", "in_2/l1"]
    assert rows["source_credit"].tolist() == [1700, 3400]


@pytest.mark.parametrize(
    ("document_id", "key"),
    [
        ("in_1003", "US01-INV-in_1003"),
        ("in.1003", "US01-INV-in_1003-71db2b1c"),
        ("in 1003", "US01-INV-in_1003-3ae0d191"),
    ],
)
def test_ids_that_differ_only_in_unsafe_characters_get_distinct_keys(document_id, key):
    assert journal_key("US01", "invoice_finalized", document_id) == key


def test_a_journal_whose_sums_would_wrap_int64_is_an_error_not_a_balance():
    from sync_core.money import AmountOverflow
    from sync_core.posting import journal_balance_problems

    half = 2**62  # two of them wrap to -2**63 in an int64 sum
    lines = pd.DataFrame({"journal_key": ["K", "K", "K"], "currency": ["USD"] * 3,
                          "debit": [half, half, 0], "credit": [0, 0, 0],
                          "debit_functional": [0, 0, 0], "credit_functional": [0, 0, 0]})  # fmt: skip
    with pytest.raises(AmountOverflow, match="journal balance"):
        journal_balance_problems(lines)


def test_a_payment_proposed_before_its_invoice_posted_still_posts_or_waits_in_the_queue(tmp_path):
    """A backfill may propose February before January's invoice is posted: the payment is
    proposed as waiting, and the posting run judges it again against the ledger then."""
    books, cust = Books(tmp_path), customers(cus_1="C-1")
    book = Book().invoice("in_1", "2025-01-15", MONTHLY).pay("py_1", "in_1", 3100, "2025-02-03")
    feb, _, feb_lines = books.month(book, cust, FEB)  # proposed while the ledger is empty
    assert journals(feb).loc["US01-PAY-py_1", "reason_code"] == "waiting_for_invoice"
    books.close(book, cust, JAN)  # January's invoice posts
    report = post_period(
        ready_lines(feb), rule_holds(feb), entity_id="US01", period=FEB, ledger=books.ledger,
        queue=books.queue, known_keys=proposed_keys(feb), accounting_lines=feb_lines,
    )  # fmt: skip
    assert "US01-PAY-py_1-v1" in report.posted
    assert books.gl("Cash") == -3100 and books.gl("AccountsReceivable") == 0
    # and had January not posted, the payment would wait in the queue, never vanish
    other = Books(tmp_path / "b")
    post_period(
        ready_lines(feb), rule_holds(feb), entity_id="US01", period=FEB, ledger=other.ledger,
        queue=other.queue, known_keys=proposed_keys(feb), accounting_lines=feb_lines,
    )  # fmt: skip
    waiting = other.queue.open("US01").set_index("journal_key")
    assert waiting.loc["US01-PAY-py_1", "reason_code"] == "waiting_for_invoice"
