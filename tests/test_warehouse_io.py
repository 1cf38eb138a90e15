"""The warehouse's bulk paths (``sync_core.warehouse.fast_io``): what they store and read back
is exactly what the SQLAlchemy row-by-row path stored and read, on SQLite and PostgreSQL;
``read`` with ``columns`` / ``periods``; ``replace_partitions`` atomic over several months;
concurrent writers of one partition serialized on PostgreSQL."""

import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sync_core.warehouse import TABLES, Warehouse, fast_io
from sync_core.warehouse.store import _typed

JAN, FEB, MAR = (pd.Timestamp(f"2025-0{m}-01", tz="UTC") for m in (1, 2, 3))
TEXTS = [
    "a,b",
    'say "hi"',
    "line1\nline2",
    "tab\there",
    "back\\slash",
    "\\N",
    "",
    "ünïcødé € 東京",
    "crlf\r\n",
    " padded ",
    "NULL",
    "NaN",
]
INTS = [2**62, -(2**62), 0, 1, -1, 10**12, 7, 8, 9, 10, 11, 12]
STAMPS = [
    pd.Timestamp("2025-03-02 03:04:05.123456", tz="UTC") + pd.Timedelta(hours=i) for i in range(12)
]
PARTITIONED = [n for n, t in TABLES.items() if {"entity_id", "period"} <= set(t.c.keys())]


# -- the SQLAlchemy row-by-row path these bulk paths replaced, kept as the reference -------
def old_records(df: pd.DataFrame, table: sa.Table) -> list[dict]:
    cols = [c.name for c in table.columns if c.name in df.columns]
    out = {}
    for name in cols:
        s, coltype = df[name], table.c[name].type
        if isinstance(coltype, sa.Date):
            vals = [None if pd.isna(v) else pd.Timestamp(v).date() for v in s]
        elif isinstance(coltype, sa.DateTime):
            ts = pd.to_datetime(s, utc=True)
            vals = [None if pd.isna(v) else v.to_pydatetime() for v in ts]
        elif isinstance(coltype, sa.BigInteger):
            vals = [None if pd.isna(v) else int(v) for v in s]
        elif isinstance(coltype, sa.Boolean):
            vals = [None if pd.isna(v) else bool(v) for v in s]
        else:
            vals = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in s]
        out[name] = vals
    return [{k: out[k][i] for k in cols} for i in range(len(df))]


def old_read(engine, table: sa.Table, *criteria) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(sa.select(table).where(*criteria))
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return _typed(df, table)


def raw_rows(engine, table: sa.Table, entity: str) -> list[tuple]:
    """The stored values as the driver returns them, without the entity column."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT * FROM \"{table.name}\" WHERE entity_id = '{entity}'")
        return sorted((tuple(r[1:]) for r in rows), key=repr)


def sample(table: sa.Table, entity: str, period=MAR) -> pd.DataFrame:
    """Every column type with awkward values: text with separators, quotes, newlines,
    backslashes, ``\\N``, empty and unicode; microsecond timestamps; 2**62; NULLs."""
    n = len(TEXTS)
    out = {}
    for i, col in enumerate(table.columns):
        t = col.type
        if col.name == "entity_id":
            vals = [entity] * n
        elif col.name == "period":
            vals = [period] * n
        elif isinstance(t, sa.DateTime):
            vals = STAMPS[i % 3 :] + STAMPS[: i % 3]
        elif isinstance(t, sa.Date):
            vals = [pd.Timestamp("2024-12-01", tz="UTC")] * n
        elif isinstance(t, sa.Integer):
            vals = INTS[i % 5 :] + INTS[: i % 5]
        elif isinstance(t, sa.Boolean):
            vals = [bool(k % 2) for k in range(n)]
        else:
            vals = TEXTS[i % 4 :] + TEXTS[: i % 4]
        s = pd.Series(vals)
        if col.nullable and col.name not in ("entity_id", "period"):
            s[[1, 4]] = None
        out[col.name] = s
    return pd.DataFrame(out)


def invoices(ids, period, entity="US01", total=1100):
    n = len(ids)
    return pd.DataFrame(
        {
            "entity_id": [entity] * n,
            "period": [period] * n,
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


def exceptions(ids, period):
    return pd.DataFrame(
        {
            "period": [period] * len(ids),
            "object_type": "invoices",
            "source_id": list(ids),
            "rule": "currency.isin",
            "message": 'bad currency, "XXX"\nsee\tdocs',
            "owner": "integration",
        }
    )


# -- identical to the SQLAlchemy path -------------------------------------------------------
def test_every_table_round_trips_exactly_like_the_sqlalchemy_path(warehouse_url):
    wh = Warehouse(warehouse_url)
    for name in PARTITIONED:
        if name == "exceptions":
            continue  # written through exception scopes, below
        table = TABLES[name]
        df = sample(table, "NEW1")
        wh.replace_partition("NEW1", MAR, {name: df})
        with wh.engine.begin() as conn:  # the same rows the old way
            conn.execute(sa.insert(table), old_records(df.assign(entity_id="OLD1"), table))
        assert raw_rows(wh.engine, table, "NEW1") == raw_rows(wh.engine, table, "OLD1"), name
        got = wh.read(name, "NEW1", MAR)
        same = (table.c.entity_id == "NEW1", table.c.period == MAR.date())  # same query plan
        pd.testing.assert_frame_equal(got, old_read(wh.engine, table, *same))
        empty = wh.read(name, "NONE", MAR)
        pd.testing.assert_frame_equal(empty, old_read(wh.engine, table, sa.false()))
        assert list(empty.columns) == [c.name for c in table.columns] and len(empty) == 0
    # the awkward texts themselves come back verbatim
    rs = TABLES["revenue_schedules"]
    got = wh.read("revenue_schedules", "NEW1", MAR, columns=["source_id"])
    i = list(rs.c.keys()).index("source_id")
    assert got["source_id"].tolist() == TEXTS[i % 4 :] + TEXTS[: i % 4]
    assert got.dtypes["source_id"] == np.dtype(object)


def test_legal_entities_round_trip(warehouse_url):
    wh = Warehouse(warehouse_url)
    le = pd.DataFrame(
        {
            "entity_id": ["US01", "FR01"],
            "name": ["Acme, Inc.", 'Acmé "SAS"\nParis'],
            "functional_currency": ["USD", "EUR"],
            "country": ["US", "FR"],
            "erp_subsidiary_id": ["1", "\\N"],
            "recognition_method": ["daily", ""],
        }
    )
    assert wh.replace_table("legal_entities", le) == 2
    got = wh.read("legal_entities").sort_values("entity_id", ignore_index=True)
    assert got["name"].tolist() == ['Acmé "SAS"\nParis', "Acme, Inc."]
    assert got["erp_subsidiary_id"].tolist() == ["\\N", "1"]
    assert got["recognition_method"].tolist() == ["", "daily"]
    pd.testing.assert_frame_equal(
        wh.read("legal_entities"), old_read(wh.engine, TABLES["legal_entities"])
    )


def test_nullable_integers_booleans_dates_like_the_sqlalchemy_path(warehouse_url):
    """No contract table has a nullable integer or boolean yet: a probe table does."""
    wh = Warehouse(warehouse_url)
    probe = sa.Table(
        "io_probe",
        sa.MetaData(),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("period", sa.Date, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=True),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("day", sa.Date, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    probe.create(wh.engine)
    df = pd.DataFrame(
        {
            "entity_id": "US01",
            "period": [MAR, MAR, MAR],
            "n": [2**62, None, -5],
            "flag": [True, None, False],
            "at": [STAMPS[0], pd.NaT, STAMPS[1]],
            "day": [pd.Timestamp("2025-03-31"), pd.NaT, date(2025, 1, 2)],
            "note": ["x", None, ""],
        }
    )
    extension = df.assign(  # pandas' nullable dtypes, as a caller may hand them over
        entity_id="EXT1",
        n=pd.array([2**62, None, -5], dtype="Int64"),
        flag=pd.array([True, None, False], dtype="boolean"),
        note=pd.array(["x", None, ""], dtype="string"),
    )
    with wh.engine.begin() as conn:
        fast_io.insert_frame(conn, probe, df)
        fast_io.insert_frame(conn, probe, extension)
        conn.execute(sa.insert(probe), old_records(df.assign(entity_id="OLD1"), probe))
    assert raw_rows(wh.engine, probe, "US01") == raw_rows(wh.engine, probe, "OLD1")
    assert raw_rows(wh.engine, probe, "EXT1") == raw_rows(wh.engine, probe, "OLD1")
    with wh.engine.connect() as conn:
        names = [c.name for c in probe.columns]
        got = _typed(fast_io.read_rows(conn, probe, names, [probe.c.entity_id == "US01"]), probe)
    pd.testing.assert_frame_equal(got, old_read(wh.engine, probe, probe.c.entity_id == "US01"))
    assert got["n"].dtype == "Int64" and got["n"].tolist()[::2] == [2**62, -5]
    assert got["n"].isna().tolist() == [False, True, False]
    assert got["flag"].tolist() == [True, False, False]  # NULL reads as False, as before
    assert got["day"].tolist()[::2] == [
        pd.Timestamp("2025-03-31", tz="UTC"),
        pd.Timestamp("2025-01-02", tz="UTC"),
    ]
    assert got["at"].tolist()[0] == pd.Timestamp("2025-03-02 03:04:05.123456", tz="UTC")
    assert got["note"].tolist() == ["x", None, ""]


# -- read: columns, periods, where ----------------------------------------------------------
def test_read_columns_and_periods(warehouse_url):
    wh = Warehouse(warehouse_url)
    for p, ids in ((JAN, ["in_j"]), (FEB, ["in_f1", "in_f2"]), (MAR, ["in_m"])):
        wh.replace_partition("US01", p, {"invoices": invoices(ids, p)})
    wh.replace_partition("UK01", FEB, {"invoices": invoices(["in_uk"], FEB, entity="UK01")})

    got = wh.read("invoices", "US01", columns=["total", "invoice_id"], periods=("2025-02-15", MAR))
    assert list(got.columns) == ["invoice_id", "total"]  # table order
    assert sorted(got["invoice_id"]) == ["in_f1", "in_f2", "in_m"]
    assert got["total"].dtype == np.int64 and got["total"].tolist() == [1100, 1100, 1100]

    got = wh.read("invoices", periods=(date(2025, 2, 1), pd.Timestamp("2025-02-28", tz="UTC")))
    assert sorted(got["invoice_id"]) == ["in_f1", "in_f2", "in_uk"]
    assert list(got.columns) == [c.name for c in TABLES["invoices"].c]
    assert sorted(wh.read("invoices", periods=(None, JAN))["invoice_id"]) == ["in_j"]
    assert sorted(wh.read("invoices", "US01", periods=(MAR, None))["invoice_id"]) == ["in_m"]

    got = wh.read("invoices", "US01", FEB, columns=["entity_id", "period", "finalized_at"])
    assert list(got.columns) == ["entity_id", "period", "finalized_at"]
    assert got["period"].tolist() == [FEB, FEB]
    assert str(got["finalized_at"].dtype) == "datetime64[ns, UTC]"

    none = wh.read("invoices", "US01", periods=("2024-01-01", "2024-12-01"), columns=["total"])
    assert list(none.columns) == ["total"] and none["total"].dtype == np.int64 and none.empty

    t = TABLES["invoices"]
    got = wh.read("invoices", where=t.c.period.in_([date(2025, 1, 1), date(2025, 3, 1)]))
    assert sorted(got["invoice_id"]) == ["in_j", "in_m"]
    with pytest.raises(ValueError, match="unknown or no columns"):
        wh.read("invoices", columns=["total", "nope"])


# -- replace_partitions -----------------------------------------------------------------------
def test_replace_partitions_replaces_several_months_at_once(warehouse_url):
    wh = Warehouse(warehouse_url)
    scope = ("ingest", ["invoices"])
    for p, ids in ((JAN, ["in_j"]), (FEB, ["in_f"]), (MAR, ["in_m"])):
        wh.replace_partition(
            "US01",
            p,
            {"invoices": invoices(ids, p)},
            exceptions([f"x{p.month}"], p),
            scope,
            run_id="run-1",
        )
    first = wh.read("exceptions", "US01", JAN)["detected_at"].iloc[0]

    new = pd.concat(
        [invoices(["in_j2", "in_j3"], JAN), invoices(["in_m2"], MAR)], ignore_index=True
    )
    exc = pd.concat([exceptions(["x1"], JAN), exceptions(["y3"], MAR)], ignore_index=True)
    written = wh.replace_partitions(
        "US01", [JAN, FEB, MAR], {"invoices": new}, exc, scope, run_id="run-2"
    )
    assert written == {"invoices": 3, "exceptions": 2}
    assert sorted(wh.read("invoices", "US01", JAN)["invoice_id"]) == ["in_j2", "in_j3"]
    assert wh.read("invoices", "US01", FEB).empty  # no new rows: the month becomes empty
    assert wh.read("invoices", "US01", MAR)["invoice_id"].tolist() == ["in_m2"]
    ex = wh.read("exceptions", "US01").sort_values("source_id", ignore_index=True)
    assert ex["source_id"].tolist() == ["x1", "y3"]
    assert ex["run_id"].tolist() == ["run-1", "run-2"]  # x1 seen again keeps its first run
    assert ex["detected_at"].iloc[0] == first
    assert ex["message"].iloc[0] == 'bad currency, "XXX"\nsee\tdocs'
    assert ex["period"].tolist() == [JAN, MAR]


def test_replace_partitions_failure_leaves_every_month_intact(warehouse_url):
    wh = Warehouse(warehouse_url)
    scope = ("ingest", ["invoices"])
    for p, ids in ((JAN, ["in_j"]), (FEB, ["in_f"]), (MAR, ["in_m"])):
        wh.replace_partition("US01", p, {"invoices": invoices(ids, p)}, exceptions(["x"], p), scope)
    broken = pd.concat(
        [invoices(["a"], JAN), invoices(["b"], FEB), invoices(["c", "d"], MAR)], ignore_index=True
    )
    broken.loc[3, "customer_id"] = None  # NOT NULL violation on the last row, after the deletes
    with pytest.raises(sa.exc.IntegrityError):
        wh.replace_partitions(
            "US01", [JAN, FEB, MAR], {"invoices": broken}, exceptions([], JAN), scope
        )
    got = wh.read("invoices", "US01").sort_values("invoice_id")
    assert got["invoice_id"].tolist() == ["in_f", "in_j", "in_m"]
    assert wh.read("exceptions", "US01")["period"].tolist() == [JAN, FEB, MAR]


def test_replace_partitions_refuses_rows_outside_its_partitions(warehouse_url):
    wh = Warehouse(warehouse_url)
    wh.replace_partition("US01", JAN, {"invoices": invoices(["in_j"], JAN)})
    with pytest.raises(
        ValueError, match=r"invoices: 1 rows outside partition US01\|2025-01-01,2025-02-01"
    ):
        wh.replace_partitions("US01", [JAN, FEB], {"invoices": invoices(["in_m"], MAR)})
    with pytest.raises(ValueError, match="invoices: 1 rows outside partition US01"):
        wh.replace_partitions("US01", [JAN], {"invoices": invoices(["in_u"], JAN, entity="UK01")})
    scope = ("ingest", ["invoices"])
    with pytest.raises(ValueError, match="exceptions: 1 rows outside partition US01"):
        wh.replace_partitions("US01", [JAN], {}, exceptions(["x"], FEB), scope)
    assert wh.read("invoices", "US01")["invoice_id"].tolist() == ["in_j"]


# -- concurrency --------------------------------------------------------------------------------
def test_concurrent_writers_of_one_partition_never_double_its_rows(postgres_url):
    """Both writers are held just before their DELETE until the other arrives there too
    (or 1.5 s passed): without the entity lock both delete, then both insert."""
    wh = Warehouse(postgres_url)
    wh.replace_partition("US01", MAR, {"invoices": invoices(["in_0"], MAR)})
    arrived = threading.Barrier(2)

    def hold(conn, cursor, statement, *args):
        if statement.startswith("DELETE FROM invoices"):
            try:
                arrived.wait(timeout=1.5)
            except threading.BrokenBarrierError:
                pass

    errors = []

    def write(ids):
        try:
            wh.replace_partition("US01", MAR, {"invoices": invoices(ids, MAR)})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    sa.event.listen(wh.engine, "before_cursor_execute", hold)
    try:
        threads = [
            threading.Thread(target=write, args=(ids,)) for ids in (["a1", "a2"], ["b1", "b2"])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        sa.event.remove(wh.engine, "before_cursor_execute", hold)
    assert errors == []
    assert sorted(wh.read("invoices", "US01", MAR)["invoice_id"]) in (["a1", "a2"], ["b1", "b2"])


def test_copy_frame_keeps_every_text_and_writes_missing_values_as_null(postgres_url):
    """The COPY helper for callers with their own tables (the SQL ledger's staging tables)."""
    wh = Warehouse(postgres_url)
    df = pd.DataFrame(
        {
            "k": ["a", "b", "c", "d"],
            "memo": ["tab\there", "\\N", "", None],
            "day": [date(2025, 3, 1), None, date(2025, 3, 31), date(2024, 2, 29)],
            "n": [1, 2, 3, 4],
            "flag": ["t", "f", "t", None],
        }
    )
    with wh.engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE probe (k text, memo text, day date, n bigint, flag boolean)")
        )
        fast_io.copy_frame(conn, "probe", df, ["k", "memo", "day", "n", "flag"])
        rows = conn.execute(sa.text("SELECT memo, day, n, flag FROM probe ORDER BY k")).all()
    assert [tuple(r) for r in rows] == [
        ("tab\there", date(2025, 3, 1), 1, True),
        ("\\N", None, 2, False),
        ("", date(2025, 3, 31), 3, True),
        (None, date(2024, 2, 29), 4, None),
    ]
