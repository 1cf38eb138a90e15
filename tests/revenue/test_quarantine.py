"""What cannot be recognized is quarantined with its rule; the rest of the batch goes on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue import recognize
from tests.revenue.factory import Book


def good_and_bad() -> Book:
    b = Book()
    b.invoice("in_ok", "2026-01-01", [("il_ok", 3100, "2026-01-01", "2026-02-01")])
    b.invoice("in_rev", "2026-01-01", [("il_rev", 1000, "2026-03-01", "2026-02-01")])
    b.invoice("in_cur", "2026-01-01", [("il_cur", 1000, "2026-01-01", "2026-02-01")],
              currency="XXX")  # fmt: skip
    b.invoice(
        "in_nan",
        "2026-01-01",
        [
            ("il_nan", 1000, "2026-01-01", "2026-02-01"),
            ("il_fine", 500, "2026-01-01", "2026-02-01"),
        ],
    )
    return b


def frames_with_defects(b: Book) -> dict[str, pd.DataFrame]:
    f = b.frames(validate=False)
    lines = f["invoice_lines"]
    lines["amount"] = lines["amount"].astype(float)
    lines.loc[lines["line_key"] == "in_nan/il_nan", "amount"] = np.nan
    return f


def rules(result) -> set[tuple[str, str, str]]:
    q = result.quarantine
    return set(zip(q["object_type"], q["source_id"], q["rule"]))


def test_bad_lines_are_quarantined_with_a_reason_and_the_rest_is_recognized():
    r = recognize(**frames_with_defects(good_and_bad()))
    got = rules(r)
    assert ("invoice_lines", "in_rev/il_rev", "period_start_before_end") in got
    assert ("invoice_lines", "in_cur/il_cur", "currency_known") in got
    assert ("invoices", "in_cur", "currency_known") in got
    assert ("invoice_lines", "in_nan/il_nan", "amount_integer") in got
    # an invoice with a bad line is held whole, with its good line
    assert ("invoices", "in_nan", "lines_valid") in got
    assert ("invoices", "in_rev", "lines_valid") in got
    q = r.quarantine
    assert (q["owner"] == "integration").all()
    assert q["message"].str.len().gt(0).all()
    assert list(q.columns) == ["entity_id", "period", "object_type", "source_id", "rule",
                               "message", "owner"]  # fmt: skip
    # the good invoice is recognized in full, nothing of the held ones
    s = r.schedule
    assert set(s["invoice_id"]) == {"in_ok"}
    assert s["recognized"].sum() == 3100
    assert set(r.accounting_lines["document_id"]) == {"in_ok"}


def test_credit_note_on_an_unknown_invoice_is_quarantined():
    b = Book()
    b.invoice("in_ok", "2026-01-01", [("il_ok", 3100, "2026-01-01", "2026-02-01")])
    b.credit_note("cn_ok", "in_ok", "2026-01-20", [("in_ok/il_ok", 100)])
    b.invoice("in_gone", "2026-01-01", [("il_g", 1000, "2026-01-01", "2026-02-01")])
    b.credit_note("cn_orphan", "in_gone", "2026-01-20", [("in_gone/il_g", 100)])
    f = b.frames()
    f["invoices"] = f["invoices"][f["invoices"]["invoice_id"] != "in_gone"]
    f["invoice_lines"] = f["invoice_lines"][f["invoice_lines"]["invoice_id"] != "in_gone"]
    r = recognize(**f)
    assert ("credit_notes", "cn_orphan", "header_exists") in rules(r)
    assert r.schedule["recognized"].sum() == 3000
    assert "cn_orphan" not in set(r.accounting_lines["document_id"])


def test_lines_that_do_not_add_up_hold_the_invoice():
    b = Book().invoice("in_sum", "2026-01-01", [("il_1", 1000, "2026-01-01", "2026-02-01")])
    f = b.frames(validate=False)
    f["invoices"]["subtotal"] = 1500
    f["invoices"]["total"] = 1500
    r = recognize(**f)
    assert ("invoices", "in_sum", "line_totals_match") in rules(r)
    assert r.schedule.empty


def test_unknown_entity_and_bad_rate_are_quarantined():
    b = Book()
    b.invoice("in_x", "2026-01-01", [("il_x", 1000, "2026-01-01", "2026-02-01")], entity="ZZ99")
    b.invoice("in_r", "2026-01-01", [("il_r", 1000, "2026-01-01", "2026-02-01")],
              currency="EUR", fx_rate="1,2")  # fmt: skip
    b.invoice("in_ok", "2026-01-01", [("il_ok", 700, "2026-01-01", "2026-02-01")])
    r = recognize(**b.frames(validate=False))
    got = rules(r)
    assert ("invoices", "in_x", "entity_known") in got
    assert ("invoices", "in_r", "fx_rate_valid") in got
    assert ("invoice_lines", "in_x/il_x", "header_exists") in got
    assert r.schedule["recognized"].sum() == 700


def test_empty_batch():
    r = recognize(**Book().frames())
    assert r.schedule.empty and r.accounting_lines.empty and r.quarantine.empty


def test_payment_before_its_invoice_or_in_another_entity_is_quarantined():
    b = Book()
    b.add_entity("DE01", "EUR")
    b.invoice("in_de", "2026-01-01", [("il", 1000, "2026-01-01", "2026-02-01")], entity="DE01",
              currency="EUR")  # fmt: skip
    b.pay("py_early", "in_not_yet", 500, "2026-01-02")
    b.pay("py_wrong_entity", "in_de", 1000, "2026-01-03", currency="EUR", fx_rate="1.1")
    r = recognize(**b.frames())
    got = rules(r)
    assert ("payments", "py_early", "header_exists") in got
    assert ("payments", "py_wrong_entity", "entity_matches") in got
    assert r.schedule["recognized"].sum() == 1000
    assert not r.accounting_lines["event"].isin(["payment"]).any()
