"""The warehouse: migrations, and partition writes that are delete + insert in one transaction."""

import pandas as pd
import pytest
import sqlalchemy as sa

from sync_core.warehouse import TABLES, Warehouse
from sync_core.warehouse.migrations import MIGRATIONS, current_version, migrate

P1 = pd.Timestamp("2025-03-01", tz="UTC")


def invoices(*ids, entity="US01", total=1100):
    n = len(ids)
    return pd.DataFrame(
        {
            "entity_id": [entity] * n,
            "period": [P1] * n,
            "invoice_id": list(ids),
            "number": [None] * n,
            "customer_id": ["cus_1"] * n,
            "subscription_id": [None] * n,
            "currency": ["USD"] * n,
            "status": ["paid"] * n,
            "finalized_at": [pd.Timestamp("2025-03-02", tz="UTC")] * n,
            "voided_at": [pd.NaT] * n,
            "subtotal": [1000] * n,
            "tax": [total - 1000] * n,
            "total": [total] * n,
            "fx_rate": ["1"] * n,
            "balance_applied": [0] * n,
        }
    )


def exceptions(*source_ids):
    return pd.DataFrame(
        {
            "object_type": "invoices",
            "source_id": list(source_ids),
            "rule": "currency.isin",
            "message": "column currency fails isin(...): got 'XXX'",
            "owner": "integration",
        }
    )


def test_migrations_run_once_and_match_the_table_definitions(warehouse_url):
    wh = Warehouse(warehouse_url)
    assert current_version(wh.engine) == MIGRATIONS[-1][0]
    assert migrate(wh.engine) == []  # idempotent
    inspector = sa.inspect(wh.engine)
    for name, table in TABLES.items():
        cols = {c["name"] for c in inspector.get_columns(name)}
        assert cols == {c.name for c in table.columns}, name
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(name)}
        for ix in table.indexes:
            assert indexes.get(ix.name) == [c.name for c in ix.columns], (name, ix.name)
        if {"entity_id", "period"} <= set(table.c.keys()):
            assert indexes[f"ix_{name}_partition"] == ["entity_id", "period"], name


def test_migration_7_adds_the_partition_indexes_to_an_older_database(warehouse_url):
    """A warehouse whose tables lack the (entity_id, period) index gets it, once; one that has
    it is left as it is."""
    wh = Warehouse(warehouse_url)
    partitioned = [n for n, t in TABLES.items() if {"entity_id", "period"} <= set(t.c.keys())]
    assert {"invoices", "revenue_schedules", "exceptions"} <= set(partitioned)
    with wh.engine.begin() as conn:  # back to the shape before version 7
        for name in ("invoices", "exceptions"):
            conn.execute(sa.text(f"DROP INDEX ix_{name}_partition"))
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version = 7"))
    assert "ix_invoices_partition" not in {
        ix["name"] for ix in sa.inspect(wh.engine).get_indexes("invoices")
    }
    assert migrate(wh.engine) == [7]
    assert migrate(wh.engine) == []
    inspector = sa.inspect(wh.engine)
    for name in partitioned:
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(name)}
        assert indexes[f"ix_{name}_partition"] == ["entity_id", "period"], name


def test_partition_round_trip_and_replacement(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.replace_partition("US01", P1, {"invoices": invoices("in_1", "in_2")})
    wh.replace_partition("UK01", P1, {"invoices": invoices("in_9", entity="UK01")})
    wh.replace_partition("US01", P1, {"invoices": invoices("in_3")})
    got = wh.read("invoices", "US01", P1)
    assert list(got["invoice_id"]) == ["in_3"]
    assert got["total"].tolist() == [1100] and got["period"].iloc[0] == P1
    assert list(wh.read("invoices", "UK01")["invoice_id"]) == ["in_9"]  # untouched


def test_failure_mid_write_leaves_previous_partition_intact(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.replace_partition(
        "US01",
        P1,
        {"invoices": invoices("in_1", "in_2")},
        exceptions=exceptions("in_bad"),
        exception_scope=("ingest", ["invoices"]),
    )
    broken = invoices("in_3", "in_4")
    broken.loc[1, "customer_id"] = None  # NOT NULL violation on the second row, after the delete
    with pytest.raises(sa.exc.IntegrityError):
        wh.replace_partition(
            "US01",
            P1,
            {"invoices": broken},
            exceptions=exceptions(),
            exception_scope=("ingest", ["invoices"]),
        )
    assert sorted(wh.read("invoices", "US01", P1)["invoice_id"]) == ["in_1", "in_2"]
    assert list(wh.read("exceptions", "US01", P1)["source_id"]) == ["in_bad"]


def test_rows_outside_the_partition_are_refused(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.replace_partition("US01", P1, {"invoices": invoices("in_1")})
    with pytest.raises(ValueError, match="rows outside partition US01"):
        wh.replace_partition("US01", P1, {"invoices": invoices("in_2", entity="UK01")})
    assert list(wh.read("invoices", "US01", P1)["invoice_id"]) == ["in_1"]


def test_exception_seen_again_keeps_its_first_detection(warehouse_url):
    wh = Warehouse(warehouse_url)
    scope = ("ingest", ["invoices"])
    wh.replace_partition("US01", P1, {}, exceptions("in_x"), scope, run_id="run-1")
    first = wh.read("exceptions", "US01", P1)
    wh.replace_partition("US01", P1, {}, exceptions("in_x", "in_y"), scope, run_id="run-2")
    again = wh.read("exceptions", "US01", P1).set_index("source_id")
    assert again.loc["in_x", "run_id"] == "run-1"
    assert again.loc["in_x", "detected_at"] == first["detected_at"].iloc[0]
    assert again.loc["in_y", "run_id"] == "run-2"
    wh.replace_partition("US01", P1, {}, exceptions(), scope, run_id="run-3")
    assert wh.read("exceptions", "US01", P1).empty  # fixed at the source: cleared


def test_migration_4_adds_the_contract_1_1_columns_to_an_older_database(warehouse_url):
    """A warehouse created before contract 1.1 gains invoices.balance_applied (0 on the
    rows it holds) and the credit note lines' service period, once."""
    wh = Warehouse(warehouse_url)
    wh.replace_partition("US01", P1, {"invoices": invoices("in_old")})
    with wh.engine.begin() as conn:  # back to the shape before version 4
        conn.execute(sa.text('ALTER TABLE invoices DROP COLUMN "balance_applied"'))
        for col in ("period_start", "period_end"):
            conn.execute(sa.text(f'ALTER TABLE credit_note_lines DROP COLUMN "{col}"'))
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version = 4"))
    assert migrate(wh.engine) == [4]
    assert migrate(wh.engine) == []
    inspector = sa.inspect(wh.engine)
    assert "balance_applied" in {c["name"] for c in inspector.get_columns("invoices")}
    cnl = {c["name"] for c in inspector.get_columns("credit_note_lines")}
    assert {"period_start", "period_end"} <= cnl
    assert wh.read("invoices", "US01", P1)["balance_applied"].tolist() == [0]
