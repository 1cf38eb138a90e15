"""The subledger's monthly totals (``sync_core.warehouse.totals``): kept with every partition
write of ``accounting_lines`` and ``revenue_schedules``, in the same transaction, so they
always equal the sums of the rows; filled from the rows by the migration of an older
database; what reconciliation reads instead of every line (on SQLite and PostgreSQL)."""

import pandas as pd
import pytest
import sqlalchemy as sa

from sync_core.warehouse import TABLES, Warehouse
from sync_core.warehouse.migrations import MIGRATIONS
from sync_core.warehouse.schema import schema_migrations

JAN, FEB, MAR = (pd.Timestamp(f"2025-0{m}-01", tz="UTC") for m in (1, 2, 3))


def lines(period, rows) -> pd.DataFrame:
    """Accounting lines of one month: rows of (account, currency, debit, credit, debit
    functional, credit functional)."""
    return pd.DataFrame(
        [
            {"entity_id": "US01", "period": period, "event": "invoice_finalized",
             "document_id": f"in_{i}", "account": account, "debit": d, "credit": c,
             "currency": cur, "debit_functional": df, "credit_functional": cf,
             "functional_currency": "USD", "correlation_id": f"c{i}", "customer_id": "cus_1",
             "invoice_id": f"in_{i}", "transaction_date": period}
            for i, (account, cur, d, c, df, cf) in enumerate(rows)
        ]
    )  # fmt: skip


def schedule(period, rows) -> pd.DataFrame:
    """Schedule rows of one month: rows of (currency, recognized, deferred balance)."""
    zero = {c.name: 0 for c in TABLES["revenue_schedules"].columns if str(c.type) == "BIGINT"}
    return pd.DataFrame(
        [
            {**zero, "entity_id": "US01", "period": period, "source_type": "invoice_line",
             "source_id": f"il_{i}", "document_id": f"in_{i}", "invoice_id": f"in_{i}",
             "line_key": None, "reverses": None, "currency": cur, "functional_currency": "USD",
             "fx_rate": "1", "document_period": period, "recognized": rec,
             "recognized_functional": rec, "deferred_balance": deferred,
             "deferred_balance_functional": deferred, "correction": False,
             "original_period": None}
            for i, (cur, rec, deferred) in enumerate(rows)
        ]
    )  # fmt: skip


def totals(wh: Warehouse, name: str) -> list[tuple]:
    t = wh.totals(name, "US01")
    cols = ["period", "account", "currency", "debit", "credit"] if name == "accounting_lines" else [
        "period", "currency", "recognized", "deferred_balance"]  # fmt: skip
    t = t.sort_values(cols[:3]).reset_index(drop=True)
    return [(r[0].strftime("%Y-%m"), *r[1:]) for r in t[cols].itertuples(index=False)]


def test_totals_follow_every_partition_write(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.replace_partitions(
        "US01", [JAN, FEB],
        {"accounting_lines": pd.concat([
            lines(JAN, [("AccountsReceivable", "USD", 10025, 0, 10025, 0),
                        ("AccountsReceivable", "USD", 5000, 0, 5000, 0),
                        ("DeferredRevenue", "USD", 0, 15025, 0, 15025)]),
            lines(FEB, [("AccountsReceivable", "EUR", 900, 0, 1000, 0)])]),
         "revenue_schedules": pd.concat([schedule(JAN, [("USD", 1200, 3800), ("USD", 300, 0)]),
                                         schedule(FEB, [("EUR", 450, 450)])])},
    )  # fmt: skip
    assert totals(wh, "accounting_lines") == [
        ("2025-01", "AccountsReceivable", "USD", 15025, 0),
        ("2025-01", "DeferredRevenue", "USD", 0, 15025),
        ("2025-02", "AccountsReceivable", "EUR", 900, 0),
    ]
    assert totals(wh, "revenue_schedules") == [("2025-01", "USD", 1500, 3800),
                                               ("2025-02", "EUR", 450, 450)]  # fmt: skip
    # February again, different rows: January's totals stay, February's are the new rows';
    # an emptied month has no totals
    wh.replace_partitions(
        "US01", [FEB, MAR],
        {"accounting_lines": lines(FEB, [("Cash", "EUR", 700, 0, 800, 0),
                                         ("Cash", "EUR", 1, 0, 2, 0)]),
         "revenue_schedules": schedule(FEB, [])},
    )  # fmt: skip
    assert totals(wh, "accounting_lines") == [
        ("2025-01", "AccountsReceivable", "USD", 15025, 0),
        ("2025-01", "DeferredRevenue", "USD", 0, 15025),
        ("2025-02", "Cash", "EUR", 701, 0),
    ]
    assert totals(wh, "revenue_schedules") == [("2025-01", "USD", 1500, 3800)]
    feb = wh.totals("accounting_lines", "US01", periods=(FEB, FEB))
    assert (feb["debit_functional"].tolist(), feb["known"].tolist()) == ([802], [True])
    # the totals are what summing the rows gives
    by = ["entity_id", "period", "account", "currency", "functional_currency"]
    money = ["debit", "credit", "debit_functional", "credit_functional"]
    summed = wh.sums("accounting_lines", "US01", by, money).sort_values(by, ignore_index=True)
    kept = wh.totals("accounting_lines", "US01").sort_values(by, ignore_index=True)
    pd.testing.assert_frame_equal(kept[by + money], summed[by + money])


def test_a_failed_write_leaves_rows_and_totals_as_they_were(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.replace_partition("US01", JAN, {"accounting_lines": lines(JAN, [
        ("Cash", "USD", 100, 0, 100, 0)])})  # fmt: skip
    bad = lines(JAN, [("Cash", "USD", 5, 0, 5, 0)]).assign(account=None)  # NOT NULL
    with pytest.raises(sa.exc.IntegrityError):
        wh.replace_partition("US01", JAN, {"accounting_lines": bad})
    assert totals(wh, "accounting_lines") == [("2025-01", "Cash", "USD", 100, 0)]


def test_migration_fills_the_totals_of_an_older_database(sqlite_url):
    """A warehouse written before migration 9 gets its totals from the rows it holds."""
    wh = Warehouse(sqlite_url)
    wh.replace_partition("US01", JAN, {"accounting_lines": lines(JAN, [
        ("Cash", "USD", 100, 0, 100, 0), ("Cash", "USD", 23, 0, 23, 0)])})  # fmt: skip
    totals_table = TABLES["accounting_line_totals"]
    with wh.engine.begin() as conn:  # as migration 8 left it: no totals, not version 9
        conn.execute(sa.delete(totals_table))
        conn.execute(sa.delete(schema_migrations).where(schema_migrations.c.version == 9))
    assert wh.totals("accounting_lines", "US01").empty
    step = next(fn for version, _, fn in MIGRATIONS if version == 9)
    with wh.engine.begin() as conn:
        step(conn)
    assert totals(wh, "accounting_lines") == [("2025-01", "Cash", "USD", 123, 0)]
