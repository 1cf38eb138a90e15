"""Whole-document validation: a bad line or a total mismatch quarantines the whole document."""

import pandas as pd

from sync_core.ingest import prepare, prepare_document

P = pd.Timestamp("2025-01-01", tz="UTC")
TS = pd.Timestamp("2025-01-15", tz="UTC")


def header(invoice_id, subtotal, tax=0, currency="USD"):
    return {
        "entity_id": "US01",
        "period": P,
        "invoice_id": invoice_id,
        "number": None,
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "currency": currency,
        "status": "paid",
        "finalized_at": TS,
        "voided_at": pd.NaT,
        "subtotal": subtotal,
        "tax": tax,
        "total": subtotal + tax,
        "fx_rate": "1",
    }


def line(invoice_id, line_id, amount, tax=0, start="2025-01-15", end="2025-02-15", cur="USD"):
    return {
        "entity_id": "US01",
        "period": P,
        "line_key": f"{invoice_id}/{line_id}",
        "line_id": line_id,
        "invoice_id": invoice_id,
        "subscription_id": "sub_1",
        "subscription_item_id": "si_1",
        "product_id": "prod_1",
        "line_type": "subscription",
        "proration": False,
        "quantity": 1,
        "amount": amount,
        "tax_amount": tax,
        "tax_behavior": "exclusive",
        "currency": cur,
        "period_start": pd.Timestamp(start, tz="UTC"),
        "period_end": pd.Timestamp(end, tz="UTC"),
    }


def test_bad_line_quarantines_its_invoice_and_siblings_only():
    headers = pd.DataFrame([header("in_ok", 3100), header("in_bad", 5000)])
    lines = pd.DataFrame(
        [
            line("in_ok", "il_1", 3100),
            line("in_bad", "il_1", 2000),  # same source line id on another invoice: fine
            line("in_bad", "il_2", 3000, start="2025-02-15", end="2025-01-15"),
        ]
    )
    h, ln, exc = prepare_document("invoices", headers, lines)
    assert list(h["invoice_id"]) == ["in_ok"]
    assert list(ln["line_key"]) == ["in_ok/il_1"]
    rules = set(zip(exc["source_id"], exc["rule"], strict=True))
    assert rules == {
        ("in_bad/il_2", "period_start_before_end"),
        ("in_bad", "lines_valid"),
        ("in_bad/il_1", "header_quarantined"),
    }


def test_totals_and_currency_mismatch_and_orphan_lines():
    headers = pd.DataFrame(
        [header("in_sum", 3100, tax=310), header("in_cur", 1000), header("in_ok", 1000)]
    )
    lines = pd.DataFrame(
        [
            line("in_sum", "il_1", 3000, tax=310),
            line("in_cur", "il_1", 1000, cur="EUR"),
            line("in_ok", "il_1", 1000),
            line("in_gone", "il_1", 500),
        ]
    )
    h, ln, exc = prepare_document("invoices", headers, lines)
    assert list(h["invoice_id"]) == ["in_ok"]
    assert list(ln["line_key"]) == ["in_ok/il_1"]
    by_id = dict(zip(exc["source_id"], exc["rule"], strict=True))
    assert by_id["in_sum"] == "line_totals_match"
    assert (
        "3100 and tax 310, but its lines sum to 3000 and 310"
        in exc.set_index("source_id").loc["in_sum", "message"]
    )
    assert by_id["in_cur"] == "line_currency_matches"
    assert by_id["in_gone/il_1"] == "header_exists"
    assert by_id["in_sum/il_1"] == by_id["in_cur/il_1"] == "header_quarantined"


def test_redelivered_usage_event_is_deduplicated_but_a_conflict_is_quarantined():
    ev = {
        "entity_id": "US01",
        "period": P,
        "event_id": "mev_1",
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "subscription_item_id": "si_1",
        "metric": "api_calls",
        "quantity": 5,
        "timestamp": TS,
    }
    good, exc = prepare("usage_events", pd.DataFrame([ev, ev]))
    assert len(good) == 1 and exc.empty
    good, exc = prepare("usage_events", pd.DataFrame([ev, {**ev, "quantity": 6}]))
    assert good.empty
    assert list(exc["rule"]) == ["event_id.field_uniqueness"] * 2 or set(exc["rule"]) <= {
        "event_id.field_uniqueness",
        "event_id.unique",
    }
