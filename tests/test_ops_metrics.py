"""The ops metrics' pure computations (sync_core.ops_metrics) on constructed frames."""

import pandas as pd

from sync_core import ops_metrics as om
from sync_core.status import markdown, stage_of, status_frame, status_row

T0 = pd.Timestamp("2025-03-01 00:00:00", tz="UTC")


def _journals(rows):
    """Posting-log headers: (document, event, seconds after T0, reverses)."""
    return pd.DataFrame(
        [{"document_id": d, "event": e, "posted_at": T0 + pd.Timedelta(seconds=s),
          "reverses": r} for d, e, s, r in rows]
    )  # fmt: skip


def test_percentiles_interpolate_between_ranks():
    assert om.percentiles([10, 20, 30, 40, 100]) == {"p50": 30.0, "p95": 88.0}
    assert om.percentiles([5]) == {"p50": 5.0, "p95": 5.0}
    assert om.percentiles([]) == {"p50": None, "p95": None}


def test_event_lag_and_invoice_latency_from_documents_and_the_posting_log():
    invoices = pd.DataFrame({
        "invoice_id": ["in_1", "in_2", "in_3", "in_4"],
        "finalized_at": [T0] * 4,
        "voided_at": [None, None, T0 + pd.Timedelta(seconds=100), None],
        "uncollectible_at": [None] * 4,
    })  # fmt: skip
    payments = pd.DataFrame({"payment_id": ["py_1"], "kind": ["payment"],
                             "created_at": [T0 + pd.Timedelta(seconds=50)]})  # fmt: skip
    events = om.event_times({"invoices": invoices, "payments": payments})
    assert len(events) == 6  # four finalized, one void, one payment
    journals = _journals(
        [
            ("in_1", "invoice_finalized", 10, None),
            ("in_1", "invoice_finalized", 500, None),  # a repost: the first posting counts
            ("in_2", "invoice_finalized", 20, None),
            ("in_3", "invoice_finalized", 40, None),
            ("in_3", "invoice_void", 130, None),
            ("in_3", "invoice_finalized", 135, "J-in_3-v1"),  # a reversal is not a posting
            ("py_1", "payment", 70, None),
        ]
    )  # fmt: skip  (in_4 is not posted yet)
    lags = om.posting_lags(journals, events)
    assert list(lags["lag_s"]) == [10.0, 20.0, 40.0, 30.0, 20.0]
    assert om.lag_stats(lags) == {"n": 5, "p50_s": 20.0, "p95_s": 38.0}
    assert om.lag_stats(lags, "invoice_finalized") == {"n": 3, "p50_s": 20.0, "p95_s": 38.0}
    assert om.lag_stats(lags, "dispute") == {"n": 0, "p50_s": None, "p95_s": None}


def test_failed_posting_rate_counts_erp_refusals_over_attempts():
    journals = _journals([("in_1", "invoice_finalized", 1, None),
                          ("in_2", "invoice_finalized", 1, None),
                          ("in_3", "invoice_finalized", 1, None)])  # fmt: skip
    queue = pd.DataFrame({
        "document_id": ["in_3", "in_4", "in_5"],
        "event": ["invoice_finalized"] * 3,
        "stage": ["erp", "erp", "rules"],  # refused then posted; refused; held by a rule
        "status": ["resolved", "open", "open"],
    })  # fmt: skip
    assert om.failed_posting_rate(journals, queue) == {"failed": 2, "attempted": 4, "rate": 0.5}
    assert om.failed_posting_rate(journals.iloc[:0], queue.iloc[:0])["rate"] == 0.0


def test_open_exceptions_oldest_first_with_age_by_owner():
    now = pd.Timestamp("2025-03-10 12:00:00", tz="UTC")
    queue = pd.DataFrame({
        "entity_id": ["US01"] * 4, "period": [T0] * 4,
        "document_id": ["in_1", "in_2", "in_3", "in_4"],
        "journal_key": ["K1", "K2", "K3", "K4"],
        "reason_code": ["customer_erp_id", "period_closed", "account_mapped", "erp_refused"],
        "owner": ["master_data", "finance", "finance", "integration"],
        "stage": ["rules", "period", "rules", "erp"],
        "attempts": [1, 3, 2, 5],
        "first_seen": [now - pd.Timedelta(days=1.5), now - pd.Timedelta(days=4),
                       now - pd.Timedelta(hours=6), now - pd.Timedelta(days=9)],
        "message": ["m"] * 4,
        "status": ["open", "open", "open", "resolved"],
    })  # fmt: skip
    rows = om.open_exceptions(queue, now)
    assert list(rows["journal_key"]) == ["K2", "K1", "K3"]
    assert list(rows["age_days"]) == [4.0, 1.5, 0.2]
    assert om.by_owner(rows) == {"finance": {"open": 2, "oldest_days": 4.0},
                                 "master_data": {"open": 1, "oldest_days": 1.5}}  # fmt: skip


def test_close_backlog_is_the_open_months_before_the_current_one():
    months = pd.date_range("2025-01-01", "2025-05-01", freq="MS", tz="UTC")
    now = pd.Timestamp("2025-05-10", tz="UTC")
    assert om.close_backlog(months, pd.Timestamp("2025-02-01", tz="UTC"), now) == [
        pd.Timestamp("2025-03-01", tz="UTC"), pd.Timestamp("2025-04-01", tz="UTC")]  # fmt: skip
    assert len(om.close_backlog(months, None, now)) == 4
    assert om.close_backlog(months, pd.Timestamp("2025-04-01", tz="UTC"), now) == []


def test_status_row_stage_and_who_must_act():
    proposed = pd.DataFrame({"journal_key": ["A", "A", "B", "C"],
                             "action": ["new", "new", "new", "reverse_stale"],
                             "status": ["ready", "ready", "held", "ready"]})  # fmt: skip
    postings = pd.DataFrame({"journal_key": ["A", "A", "B"],
                             "posting_status": ["posted", "posted", "held"]})  # fmt: skip
    rec = pd.DataFrame({"account": ["Revenue", "Revenue", "AR"],
                        "kind": ["functional", "transaction", "functional"],
                        "currency": ["EUR", "EUR", "EUR"], "drift": [-250, -250, 0],
                        "severity": ["WARN", "WARN", "PASS"]})  # fmt: skip
    totals = pd.DataFrame({"functional_currency": ["EUR", "EUR"],
                           "recognized_functional": [1000, 500],
                           "contra_revenue_functional": [100, 0],
                           "deferred_balance_functional": [300, 0]})  # fmt: skip
    ex = pd.DataFrame({"stage": ["ingest", "posting"], "owner": ["integration", "master_data"]})
    row = status_row("DE01", "2025-03-01", ingested_at=T0, records={"invoices": 4, "payments": 2},
                     exceptions=ex, schedule_rows=7, schedule_totals=totals, proposed=proposed,
                     postings=postings, reconciliation=rec, updated_at=T0)  # fmt: skip
    assert (row["records"], row["quarantined"], row["exceptions_integration"],
            row["exceptions_master_data"]) == (6, 1, 1, 1)  # fmt: skip
    assert (row["revenue_functional"], row["deferred_functional"]) == (1400, 300)
    assert (row["proposed_journals"], row["posted_journals"], row["held_journals"]) == (2, 1, 1)
    assert (row["accounts_with_drift"], row["drift_functional"], row["drift_severity"]) == (
        1, 250, "WARN")  # fmt: skip
    assert row["stage"] == "posting_held" and not row["reconciled"]
    assert row["waiting_on"] == ("integration: 1 exception; master_data: 1 exception; "
                                 "finance: drift on 1 account")  # fmt: skip
    closed = status_row("DE01", "2025-03-01", records={"invoices": 1},
                        closed_through=pd.Timestamp("2025-04-01", tz="UTC"),
                        erp_period_closed=True,
                        close={"closed_by": "carol", "closed_at": T0})  # fmt: skip
    assert closed["stage"] == "closed" and closed["closed_by"] == "carol"
    # revenue closed, the ERP period still open: the close did not finish
    half = status_row("DE01", "2025-03-01", records={"invoices": 1},
                      closed_through=pd.Timestamp("2025-04-01", tz="UTC"),
                      close={"closed_by": "carol", "closed_at": T0})  # fmt: skip
    assert half["stage"] == "close_incomplete"
    assert half["waiting_on"] == "finance: ERP period still open (run the close again, or reopen)"
    assert stage_of({**closed, "revenue_closed": False}) == "ingested"
    table = markdown(status_frame([row]), ["entity_id", "period", "stage", "held_journals"])
    assert table.splitlines()[2] == "| DE01 | 2025-03 | posting_held | 1 |"
