"""Reconciliation, pure functions: subledger vs GL balances, reconciling items, drift severity
by materiality, completeness.

The book is Stripe's first worked example (docs.stripe.com/revenue-recognition, "monthly
subscription from January 15"): 31.00 USD for 2026-01-15 to 2026-02-15, recognized 17.00 in
January and 14.00 in February, so 14.00 is deferred at the end of January; plus 3.10 tax and
the customer paying 34.10 on January 20. The GL is written by hand, line by line, as the ERP
would hold it.
"""

import pandas as pd
import pytest

from sync_core.erp.config import load_erp_config
from sync_core.reconcile import (
    completeness,
    drift,
    expected_postings,
    gl_balances,
    reconciling_items,
    subledger_balances,
)
from sync_core.revenue import recognize
from tests.revenue.factory import Book

JAN, FEB = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-02-01", tz="UTC")
ACCOUNTS = {"Cash": "1000", "AccountsReceivable": "1100", "TaxLiability": "2300",
            "DeferredRevenue": "2400", "Revenue": "4000"}  # fmt: skip
# external id, posted in, events of, document, event, reverses, [(account, debit, credit)]
LEDGER = [
    ("US01-INV-in_1-v1", JAN, JAN, "in_1", "invoice_finalized", None,
     [("AccountsReceivable", 3410, 0), ("DeferredRevenue", 0, 3100), ("TaxLiability", 0, 310)]),
    ("US01-PAY-py_1-v1", JAN, JAN, "py_1", "payment", None,
     [("Cash", 3410, 0), ("AccountsReceivable", 0, 3410)]),
    ("US01-REV-REV-202601-USD-v1", JAN, JAN, "REV-202601-USD", "revenue", None,
     [("DeferredRevenue", 1700, 0), ("Revenue", 0, 1700)]),
    ("US01-REV-REV-202602-USD-v1", FEB, FEB, "REV-202602-USD", "revenue", None,
     [("DeferredRevenue", 1400, 0), ("Revenue", 0, 1400)]),
]  # fmt: skip


def book():
    b = Book()
    b.invoice("in_1", "2026-01-15", [("il_1", 3100, "2026-01-15", "2026-02-15")], tax=310)
    b.pay("py_1", "in_1", 3410, "2026-01-20")
    return b


@pytest.fixture(scope="module")
def subledger():
    r = recognize(**book().frames())
    return r.schedule, r.accounting_lines


def ledger(entries=LEDGER):
    heads, lines = [], []
    for eid, posted, source, doc, event, reverses, rows in entries:
        heads.append({"external_id": eid, "entity_id": "US01", "period": posted.date(),
                      "source_period": source.date(), "event": event, "document_id": doc,
                      "reverses": reverses})  # fmt: skip
        for n, (account, debit, credit) in enumerate(rows, 1):
            lines.append({"external_id": eid, "line_no": n, "account": account,
                          "erp_account": ACCOUNTS[account], "debit": debit, "credit": credit,
                          "currency": "USD", "debit_functional": debit,
                          "credit_functional": credit, "functional_currency": "USD",
                          "correlation_id": doc})  # fmt: skip
    return pd.DataFrame(heads), pd.DataFrame(lines)


def posting_rows(eid, doc, event, rows, status="posted", reason=None, owner=None, period=JAN):
    """erp_postings rows of one journal (the columns reconciliation reads)."""
    key = eid.rsplit("-v", 1)[0]
    return pd.DataFrame(
        [{"entity_id": "US01", "period": period, "journal_key": key, "line_no": n,
          "event": event, "document_id": doc, "account": a, "debit": d, "credit": c,
          "currency": "USD", "debit_functional": d, "credit_functional": c,
          "functional_currency": "USD", "posting_status": status, "reason_code": reason,
          "owner": owner, "external_id": eid if status == "posted" else None}
         for n, (a, d, c) in enumerate(rows, 1)]
    )  # fmt: skip


def functional(balances) -> dict:
    f = balances[balances["kind"] == "functional"]
    return {a: int(b) for a, b in zip(f["account"], f["balance"], strict=True) if b != 0}


def by_account(result, column="drift") -> dict:
    f = result[result["kind"] == "functional"]
    return dict(zip(f["account"], f[column], strict=True))


def test_gl_and_subledger_balances_at_month_end(subledger):
    schedule, lines = subledger
    journals, jlines = ledger()
    expected_jan = {"Cash": 3410, "DeferredRevenue": -1400, "Revenue": -1700,
                    "TaxLiability": -310}  # fmt: skip
    assert functional(gl_balances(journals, jlines, JAN, "US01")) == expected_jan
    assert functional(subledger_balances(schedule, lines, JAN, "US01")) == expected_jan
    expected_feb = {"Cash": 3410, "Revenue": -3100, "TaxLiability": -310}
    assert functional(gl_balances(journals, jlines, FEB, "US01")) == expected_feb
    assert functional(subledger_balances(schedule, lines, FEB, "US01")) == expected_feb


def test_untouched_ledger_has_zero_drift_on_every_account(subledger):
    schedule, lines = subledger
    journals, jlines = ledger()
    for p in (JAN, FEB):
        d = drift(subledger_balances(schedule, lines, p, "US01"),
                  gl_balances(journals, jlines, p, "US01"), None, {"default": 100})  # fmt: skip
        assert (d["drift"] == 0).all() and set(d["severity"]) == {"PASS"}


@pytest.mark.parametrize(
    ("credit", "materiality", "expected_drift", "severity"),
    [
        (1650, {"default": 100}, -50, "WARN"),  # 0.50 under a 1.00 threshold
        (1650, {"default": 100, "Revenue": 0}, -50, "ERROR"),  # Revenue must tie exactly
        (1550, {"default": 100}, -150, "ERROR"),  # 1.50 over a 1.00 threshold
        (1800, {"default": 100}, 100, "WARN"),  # exactly the threshold is still immaterial
    ],
)
def test_a_tampered_ledger_line_is_exactly_that_drift(subledger, credit, materiality,
                                                      expected_drift, severity):  # fmt: skip
    schedule, lines = subledger
    journals, jlines = ledger()
    rev = (jlines["external_id"] == "US01-REV-REV-202601-USD-v1") & (jlines["account"] == "Revenue")
    jlines.loc[rev, ["credit", "credit_functional"]] = credit
    d = drift(subledger_balances(schedule, lines, JAN, "US01"),
              gl_balances(journals, jlines, JAN, "US01"), None, materiality)  # fmt: skip
    drifts = {a: v for a, v in by_account(d).items() if v != 0}
    assert drifts == {"Revenue": expected_drift}
    assert by_account(d, "severity")["Revenue"] == severity
    assert by_account(d, "severity")["Cash"] == "PASS"


def test_a_held_journal_is_a_reconciling_item_and_leaves_no_drift(subledger):
    schedule, lines = subledger
    journals, jlines = ledger([e for e in LEDGER if e[0] != "US01-PAY-py_1-v1"])
    held = posting_rows("US01-PAY-py_1-v1", "py_1", "payment",
                        [("Cash", 3410, 0), ("AccountsReceivable", 0, 3410)],
                        status="held", reason="customer_erp_id", owner="master_data")  # fmt: skip
    gl = gl_balances(journals, jlines, JAN, "US01")
    assert functional(gl)["AccountsReceivable"] == 3410  # the GL still has the receivable
    items = reconciling_items(held, journals, jlines, JAN, entity_id="US01")
    got = items[["item_type", "account", "document_id", "amount", "reason_code", "owner"]]
    assert got.to_dict("records") == [
        {"item_type": "held", "account": "AccountsReceivable", "document_id": "py_1",
         "amount": -3410, "reason_code": "customer_erp_id", "owner": "master_data"},
        {"item_type": "held", "account": "Cash", "document_id": "py_1", "amount": 3410,
         "reason_code": "customer_erp_id", "owner": "master_data"},
    ]  # fmt: skip
    d = drift(subledger_balances(schedule, lines, JAN, "US01"), gl, items, {"default": 0})
    assert by_account(d, "reconciling")["Cash"] == 3410
    assert (d["drift"] == 0).all() and set(d["severity"]) == {"PASS"}
    # without the item the same gap is unexplained drift, an error at zero materiality
    bare = drift(subledger_balances(schedule, lines, JAN, "US01"), gl, None, {"default": 0})
    assert by_account(bare)["Cash"] == 3410 and by_account(bare, "severity")["Cash"] == "ERROR"


def test_held_reason_and_owner_come_from_the_queue_when_the_row_has_none():
    rows = posting_rows(
        "US01-PAY-py_1-v1",
        "py_1",
        "payment",
        [("Cash", 3410, 0), ("AccountsReceivable", 0, 3410)],
        status="held",
    )
    queue = pd.DataFrame(
        [
            {
                "journal_key": "US01-PAY-py_1",
                "status": "open",
                "reason_code": "waiting_for_invoice",
                "owner": "integration",
            }
        ]
    )
    items = reconciling_items(rows, None, None, JAN, exceptions=queue)
    assert set(items["reason_code"]) == {"waiting_for_invoice"}
    assert set(reconciling_items(rows, None, None, JAN)["reason_code"]) == {
        "held_without_exception"
    }


def test_a_held_new_version_is_only_the_change_against_the_live_one():
    journals, jlines = ledger()  # py_1 -v1 (34.10) is live
    v2 = posting_rows("US01-PAY-py_1-v2", "py_1", "payment",
                      [("Cash", 3000, 0), ("AccountsReceivable", 0, 3000)],
                      status="held", reason="period_closed", owner="finance")  # fmt: skip
    items = reconciling_items(v2, journals, jlines, JAN)
    assert items.groupby("account")["amount"].sum().to_dict() == {
        "AccountsReceivable": 410, "Cash": -410,
    }  # fmt: skip


def test_a_correction_posted_in_a_later_period_is_a_timing_item_until_then(subledger):
    schedule, lines = subledger
    late = [(e[0], FEB, *e[2:]) if e[0] == "US01-PAY-py_1-v1" else e for e in LEDGER]
    journals, jlines = ledger(late)
    items = reconciling_items(None, journals, jlines, JAN)
    assert set(items["item_type"]) == {"timing"}
    assert dict(zip(items["account"], items["amount"], strict=True)) == {
        "AccountsReceivable": -3410, "Cash": 3410,
    }  # fmt: skip
    assert set(items["reason_code"]) == {"posted_in_later_period"}
    d = drift(subledger_balances(schedule, lines, JAN, "US01"),
              gl_balances(journals, jlines, JAN, "US01"), items, {"default": 0})  # fmt: skip
    assert (d["drift"] == 0).all()
    assert reconciling_items(None, journals, jlines, FEB).empty  # in the GL by February


def _expected():
    f = book().frames()
    return expected_postings(JAN, f["invoices"], f["credit_notes"], f["payments"])


def test_every_document_posted_once_is_complete():
    exp = _expected()
    assert sorted(zip(exp["document_id"], exp["event"], strict=True)) == [
        ("in_1", "invoice_finalized"), ("py_1", "payment"),
    ]  # fmt: skip
    assert completeness(exp, ledger()[0], None).empty


def test_a_document_posted_twice_or_not_at_all_fails_completeness():
    journals = ledger()[0]
    twice = pd.concat([journals, journals[journals["document_id"] == "py_1"].assign(
        external_id="US01-PAY-py_1-v2")], ignore_index=True)  # fmt: skip
    bad = completeness(_expected(), twice, None)
    assert bad[["document_id", "reason", "live_postings"]].to_dict("records") == [
        {"document_id": "py_1", "reason": "posted_twice", "live_postings": 2}
    ]
    assert bad["external_ids"].tolist() == ["US01-PAY-py_1-v1,US01-PAY-py_1-v2"]

    missing = journals[journals["document_id"] != "py_1"]
    bad = completeness(_expected(), missing, None)
    assert bad[["document_id", "event", "reason"]].to_dict("records") == [
        {"document_id": "py_1", "event": "payment", "reason": "no_posting"}
    ]
    queue = pd.DataFrame([{"entity_id": "US01", "document_id": "py_1", "event": "payment",
                           "journal_key": "US01-PAY-py_1", "status": "open"}])  # fmt: skip
    assert completeness(_expected(), missing, queue).empty  # held with a reason: complete
    bad = completeness(_expected(), journals, queue)  # posted and still open in the queue
    assert bad["reason"].tolist() == ["posted_and_held"]


def test_a_reversed_posting_is_not_live_and_a_zero_invoice_needs_none():
    journals = ledger()[0]
    rev = journals[journals["document_id"] == "py_1"].assign(
        external_id="US01-PAY-py_1-v1-REV", reverses="US01-PAY-py_1-v1"
    )
    bad = completeness(_expected(), pd.concat([journals, rev], ignore_index=True), None)
    assert bad[["document_id", "reason"]].to_dict("records") == [
        {"document_id": "py_1", "reason": "no_posting"}
    ]
    b = Book().invoice("in_0", "2026-01-03", [("il_0", 0, "2026-01-03", "2026-02-03")])
    f = b.frames()
    zero = expected_postings(JAN, f["invoices"], f["credit_notes"], f["payments"])
    assert completeness(zero, journals.iloc[:0], None).empty


def test_materiality_comes_from_config_and_a_bad_value_is_a_clear_error(tmp_path):
    assert load_erp_config().materiality("US01") == {"default": 100, "Cash": 0}
    cfg = tmp_path / "erp.yaml"
    cfg.write_text(
        "defaults:\n  accounts: {Cash: '1000', Revenue: '4000'}\n"
        "  materiality: {default: 100, accounts: {Cash: 0}}\n"
        "entities:\n  UK01:\n    materiality: {default: 500, accounts: {Revenue: 50}}\n"
    )
    c = load_erp_config(cfg)
    assert c.materiality("UK01") == {"default": 500, "Cash": 0, "Revenue": 50}
    assert c.materiality("US01") == {"default": 100, "Cash": 0}
    for bad, message in (
        ("{default: 1.5}", "threshold 1.5 must be a whole number of minor units"),
        ("{default: -1}", "threshold -1 must be a whole number"),
        ("{accounts: {Cahs: 0}}", "Cahs: not a canonical account"),
        ("{threshold: 5}", "must be a mapping of 'default' and 'accounts'"),
    ):
        cfg.write_text(f"defaults:\n  accounts: {{Cash: '1000'}}\n  materiality: {bad}\n")
        with pytest.raises(ValueError, match=message):
            load_erp_config(cfg)


def test_disputes_voids_and_write_offs_need_their_own_posting():
    t = pd.Timestamp
    invoices = pd.DataFrame([
        {"entity_id": "US01", "invoice_id": "in_v", "status": "void", "total": 3100,
         "finalized_at": t("2026-01-10", tz="UTC"), "voided_at": t("2026-02-03", tz="UTC"),
         "uncollectible_at": pd.NaT},
        {"entity_id": "US01", "invoice_id": "in_u", "status": "uncollectible", "total": 3100,
         "finalized_at": t("2026-01-10", tz="UTC"), "voided_at": pd.NaT,
         "uncollectible_at": t("2026-02-20", tz="UTC")},
    ])  # fmt: skip
    disputes = pd.DataFrame([
        {"entity_id": "US01", "dispute_id": "dp_1", "amount": 3410, "status": "won",
         "created_at": t("2026-01-25", tz="UTC"), "closed_at": t("2026-02-14", tz="UTC")},
    ])  # fmt: skip
    feb = expected_postings(FEB, invoices, None, None, disputes)
    assert sorted(zip(feb["document_id"], feb["event"], strict=True)) == [
        ("dp_1", "dispute_won"), ("in_u", "invoice_uncollectible"), ("in_v", "invoice_void"),
    ]  # fmt: skip
    jan = expected_postings(JAN, invoices, None, None, disputes)
    posted = pd.DataFrame([
        {"external_id": f"US01-INV-{i}-v1", "entity_id": "US01", "document_id": i,
         "event": "invoice_finalized", "reverses": None} for i in ("in_v", "in_u")
    ])  # fmt: skip
    bad = completeness(jan, posted, None)
    assert bad[["document_id", "event", "reason"]].to_dict("records") == [
        {"document_id": "dp_1", "event": "dispute", "reason": "no_posting"}
    ]


def test_a_document_refused_at_recognition_counts_as_one_open_exception():
    from sync_core.reconcile import quarantined

    jan = pd.Timestamp("2025-01-01", tz="UTC")
    expected = pd.DataFrame(
        [{"entity_id": "US01", "period": jan, "document_type": "payment",
          "document_id": "py_262", "event": "payment", "amount": 9000}]
    )  # fmt: skip
    empty = pd.DataFrame(columns=["external_id", "entity_id", "document_id", "event", "reverses"])
    assert completeness(expected, empty, None)["reason"].tolist() == ["no_posting"]
    refused = pd.DataFrame(
        [{"entity_id": "US01", "stage": "recognition", "object_type": "payments",
          "source_id": "py_262", "rule": "header_exists",
          "message": "invoice 'in_280' is unknown or quarantined", "owner": "integration"}]
    )  # fmt: skip
    waiting = quarantined(expected, refused)
    assert waiting["journal_key"].tolist() == ["exception:header_exists"]
    assert completeness(expected, empty, waiting).empty


def test_a_late_credit_note_booked_in_the_next_open_month_is_checked_there():
    from sync_core.reconcile import by_accounting_period

    feb, mar = (pd.Timestamp(m, tz="UTC") for m in ("2025-02-01", "2025-03-01"))
    expected = pd.DataFrame(
        [{"entity_id": "US01", "period": feb, "document_type": "credit_note",
          "document_id": "cn_late", "event": "credit_note", "amount": 1500}]
    )  # fmt: skip
    lines = pd.DataFrame(  # February was closed: the engine booked the note in March
        [{"entity_id": "US01", "period": mar, "event": "credit_note", "document_id": "cn_late",
          "account": a, "debit": d, "credit": c} for a, d, c in
         (("CreditNotes", 1500, 0), ("AccountsReceivable", 0, 1500))]
    )  # fmt: skip
    assert by_accounting_period(expected, lines, feb).empty
    # before March is recomputed, the note has no lines anywhere: closed February still
    # does not expect it, an open February would
    assert by_accounting_period(expected, lines.iloc[:0], feb, closed=True).empty
    assert len(by_accounting_period(expected, lines.iloc[:0], feb)) == 1
    march = by_accounting_period(expected.iloc[:0], lines, mar)
    assert march[["document_type", "document_id", "event", "amount"]].values.tolist() == [
        ["credit_note", "cn_late", "credit_note", 1500]
    ]
