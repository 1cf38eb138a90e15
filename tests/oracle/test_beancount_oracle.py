"""An independent double-entry oracle: the SQL ledger of a finished demo run, exported to
beancount with balance assertions generated from the billing subledger, passes beancount's
checker on SQLite and PostgreSQL, and fails on a tampered ledger.

The oracle's own figures come from Stripe's revenue recognition example 1 (a 31.00 USD monthly
subscription from January 15: January revenue 17.00, deferred revenue 14.00 at month end).
"""

from __future__ import annotations

import os
import uuid

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sync_assets.partitions import entity_partitions, partition_key
from sync_assets.runner import derived_assets, ingest_assets
from sync_core.demo.generator import generate
from tests.helpers import make_resources, materialize
from tests.oracle.beancount_export import (
    _ar_moves,
    _cumulative,
    _ledger,
    balance_text,
    check,
    export,
    ledger_frames,
    ledger_text,
    subledger_balances,
    units,
)

ENTITY = "US01"
MONTHS = [f"2025-{m:02d}-01" for m in range(1, 13)]


def messages(errors) -> list[str]:
    return [e.message for e in errors]


# --------------------------------------------------------------------- the oracle itself


def _example_ledger(revenue_jan: int = 1700) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripe example 1 as two journals: the invoice (Dr AR 31 / Cr deferred 31) and
    January's revenue (Dr deferred 17 / Cr revenue 17)."""
    journals = pd.DataFrame(
        {
            "external_id": ["US01-INV-in_1-v1", "US01-REV-202401-USD-v1"],
            "entity_id": ["US01", "US01"],
            "period": [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01")],
            "event": ["invoice_finalized", "revenue"],
            "document_id": ["in_1", "REV-202401-USD"],
        }
    )
    line = {"currency": "USD", "erp_account": None}
    lines = pd.DataFrame(
        [
            {**line, "external_id": "US01-INV-in_1-v1", "line_no": 1,
             "account": "AccountsReceivable", "debit": 3100, "credit": 0},
            {**line, "external_id": "US01-INV-in_1-v1", "line_no": 2,
             "account": "DeferredRevenue", "debit": 0, "credit": 3100},
            {**line, "external_id": "US01-REV-202401-USD-v1", "line_no": 1,
             "account": "DeferredRevenue", "debit": revenue_jan, "credit": 0},
            {**line, "external_id": "US01-REV-202401-USD-v1", "line_no": 2,
             "account": "Revenue", "debit": 0, "credit": 1700},
        ]
    )  # fmt: skip
    return journals, lines


def _expected(deferred: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_id": ["US01", "US01"],
            "month": [pd.Timestamp("2024-01-01")] * 2,
            "account": ["DeferredRevenue", "AccountsReceivable"],
            "currency": ["USD", "USD"],
            "amount": [-deferred, 3100],
        }
    )


def test_stripe_example_one_passes_and_a_cent_off_fails():
    journals, lines = _example_ledger()
    text, opened = _ledger(journals, lines)
    assert "2024-01-01 open Liabilities:US01:DeferredRevenue" in text
    assert "  Liabilities:US01:DeferredRevenue  -31.00 USD" in text
    assert '  external_id: "US01-REV-202401-USD-v1"' in text
    assert check(text + balance_text(_expected(1400), opened)) == []
    assert "2024-02-01 balance Liabilities:US01:DeferredRevenue  -14.00 ~ 0 USD" in balance_text(
        _expected(1400), opened
    )
    assert messages(check(text + balance_text(_expected(1401), opened))) == [
        "Balance failed for 'Liabilities:US01:DeferredRevenue': "
        "expected -14.01 USD != accumulated -14.00 USD (0.01 too much)"
    ]


def test_an_unbalanced_journal_fails_by_one_cent():
    journals, lines = _example_ledger(revenue_jan=1701)
    errors = check(ledger_text(journals, lines))
    assert messages(errors) == ["Transaction does not balance: (0.01 USD)"]
    assert errors[0].entry.meta["external_id"] == "US01-REV-202401-USD-v1"


def test_amounts_are_written_with_iso_digits():
    assert units(2618, "EUR") == "26.18"
    assert units(500, "JPY") == "500"
    assert units(5120, "KWD") == "5.120"
    assert units(-1400, "USD") == "-14.00"


# --------------------------------------------------------------------- the demo ledger


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oracle-source")
    generate(folder, subscriptions=60, seed=11, year=2025)
    return folder


def _postgres_schema_url():
    """A fresh schema on the test PostgreSQL for this module (as conftest's postgres_url)."""
    url = os.getenv("SYNC_TEST_POSTGRES_URL")
    if not url:
        if os.getenv("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("SYNC_TEST_POSTGRES_URL is not set: PostgreSQL tests are required")
        pytest.skip("SYNC_TEST_POSTGRES_URL not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    return eng, schema, f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def demo_ledger(request, demo_source, tmp_path_factory):
    """One finished demo run (ENTITY x 12 months) per backend: its database engine."""
    cleanup = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('oracle-wh') / 'warehouse.sqlite'}"
    else:
        base, schema, url = _postgres_schema_url()
        cleanup = (base, schema)
    resources = make_resources(demo_source, url)
    with dg.instance_for_test() as instance:
        assert materialize(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, [ENTITY])
        for selection in (ingest_assets(), derived_assets()):
            for month in MONTHS:
                key = partition_key(ENTITY, month)
                assert materialize(instance, resources, selection, key).success, key
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()
    if cleanup:
        base, schema = cleanup
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()


def test_demo_ledger_passes_beancount_with_subledger_balances(demo_ledger):
    text = export(demo_ledger)
    errors = check(text)
    assert messages(errors) == []
    journals, _ = ledger_frames(demo_ledger)
    assert text.count(' * "') == len(journals) > 100
    # the assertions are there: every month for deferred revenue and AR, and unbilled AR
    for account, at_least in (
        (f"Liabilities:{ENTITY}:DeferredRevenue", 12),
        (f"Assets:{ENTITY}:AccountsReceivable", 12),
        (f"Assets:{ENTITY}:UnbilledAccountsReceivable", 1),
    ):
        assert text.count(f" balance {account}  ") >= at_least, account


def _first(lines, journals, event: str, account: str):
    ids = set(journals.loc[journals["event"] == event, "external_id"])
    hit = lines[lines["external_id"].isin(ids) & (lines["account"] == account)]
    hit = hit[(hit["debit"] != 0) | (hit["credit"] != 0)]
    return hit.index[0], hit.loc[hit.index[0], "external_id"]


def _failures(engine, journals, lines) -> tuple[list, list]:
    """(unbalanced transactions, failed balance assertions) the tamper adds to the ledger's
    own result (which the test above requires to be empty)."""
    before = set(messages(check(export(engine))))
    errors = [e for e in check(export(engine, journals, lines)) if e.message not in before]
    unbalanced = [e for e in errors if e.message.startswith("Transaction does not balance")]
    balance = [e for e in errors if e.message.startswith("Balance failed")]
    assert len(unbalanced) + len(balance) == len(errors), messages(errors)
    return unbalanced, balance


def test_a_changed_line_amount_fails(demo_ledger):
    journals, lines = ledger_frames(demo_ledger)
    i, external_id = _first(lines, journals, "invoice_finalized", "AccountsReceivable")
    lines.loc[i, "debit"] = int(lines.loc[i, "debit"]) + 1
    unbalanced, balance = _failures(demo_ledger, journals, lines)
    assert [e.entry.meta["external_id"] for e in unbalanced] == [external_id]
    assert balance and all(f"'Assets:{ENTITY}:AccountsReceivable'" in e.message for e in balance)


def test_a_deleted_line_fails(demo_ledger):
    journals, lines = ledger_frames(demo_ledger)
    i, external_id = _first(lines, journals, "revenue", "DeferredRevenue")
    unbalanced, balance = _failures(demo_ledger, journals, lines.drop(index=i))
    assert [e.entry.meta["external_id"] for e in unbalanced] == [external_id]
    assert balance and all(f"'Liabilities:{ENTITY}:DeferredRevenue'" in e.message for e in balance)


def test_a_balanced_tamper_fails_on_the_subledger_assertion(demo_ledger):
    """One cent more revenue released from deferred revenue: the journal still balances, the
    subledger's deferred revenue balance catches it."""
    journals, lines = ledger_frames(demo_ledger)
    i, external_id = _first(lines, journals, "revenue", "DeferredRevenue")
    j = lines[(lines["external_id"] == external_id) & (lines["account"] == "Revenue")].index[0]
    lines.loc[i, "debit"] = int(lines.loc[i, "debit"]) + 1
    lines.loc[j, "credit"] = int(lines.loc[j, "credit"]) + 1
    unbalanced, balance = _failures(demo_ledger, journals, lines)
    assert unbalanced == []
    assert balance and all(f"'Liabilities:{ENTITY}:DeferredRevenue'" in e.message for e in balance)
    assert "(0.01 too much)" in balance[0].message


def test_subledger_balances_cover_every_month(demo_ledger):
    expected = subledger_balances(demo_ledger)
    deferred = expected[expected["account"] == "DeferredRevenue"]
    assert sorted(deferred["month"].dt.strftime("%Y-%m").unique()) == [m[:7] for m in MONTHS]


def test_ar_from_documents_writes_off_an_uncollectible_invoice(tmp_path):
    """31.00 USD invoiced in January, 10.00 paid in February, marked uncollectible in March,
    5.00 recovered in April: AR 31.00, 21.00, 0.00, 0.00 (the recovery is not AR)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'docs.sqlite'}")
    doc = {"entity_id": "US01", "currency": "USD"}
    pd.DataFrame(
        [{**doc, "invoice_id": "in_1", "period": "2025-01-01", "total": 3100,
          "balance_applied": 0, "finalized_at": "2025-01-15T00:00:00Z", "voided_at": None,
          "uncollectible_at": "2025-03-20T00:00:00Z"}]
    ).to_sql("invoices", engine, index=False)  # fmt: skip
    pd.DataFrame(
        columns=["entity_id", "currency", "credit_note_id", "invoice_id", "type", "period",
                 "issued_at", "voided_at", "total"]
    ).to_sql("credit_notes", engine, index=False)  # fmt: skip
    pd.DataFrame(
        [{**doc, "payment_id": pid, "invoice_id": "in_1", "kind": "payment",
          "status": "succeeded", "period": p, "created_at": at, "amount": a}
         for pid, p, at, a in (("py_1", "2025-02-01", "2025-02-09T00:00:00Z", 1000),
                               ("py_2", "2025-04-01", "2025-04-02T00:00:00Z", 500))]
    ).to_sql("payments", engine, index=False)  # fmt: skip
    pd.DataFrame(columns=["stage", "object_type", "source_id"]).to_sql(
        "exceptions", engine, index=False
    )
    months = [pd.Timestamp(f"2025-{m:02d}-01") for m in range(1, 5)]
    ar = _cumulative(_ar_moves(engine), months, "AccountsReceivable")
    assert ar["amount"].tolist() == [3100, 2100, 0, 0]


def test_demo_ledger_balances_in_the_functional_currency(demo_ledger):
    journals, lines = ledger_frames(demo_ledger)
    assert messages(check(ledger_text(journals, lines, functional=True))) == []
    i, external_id = _first(lines, journals, "payment", "Cash")
    lines.loc[i, "debit_functional"] = int(lines.loc[i, "debit_functional"]) + 1
    errors = check(ledger_text(journals, lines, functional=True))
    assert [e.entry.meta["external_id"] for e in errors] == [external_id]
    assert errors[0].message.startswith("Transaction does not balance: (0.01 ")
