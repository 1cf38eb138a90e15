"""Bulk reads and writes of warehouse tables, column-wise, without per-row SQLAlchemy objects.

Rules (the contract ``Warehouse`` relies on):

- Statements are built and compiled by SQLAlchemy; values are always bound through the
  driver (``?`` on SQLite, psycopg2's own quoting on PostgreSQL), never formatted into SQL.
- What is stored is exactly what SQLAlchemy's row-by-row insert stored: on SQLite dates as
  ``YYYY-MM-DD``, datetimes as UTC ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as 0/1; on
  PostgreSQL the same values through ``COPY ... FROM STDIN`` (text format, nulls as ``\\N``,
  so any text round-trips, ``\\N`` and empty strings included).
- A missing value (None, NaN, NaT, pd.NA) is stored as NULL.
- Reads return raw column arrays (text as str/None, integers, booleans, datetime64 UTC) for
  ``store._typed`` to give the contract's dtypes; PostgreSQL sends dates and timestamps as
  integer days / microseconds since the epoch, so no session setting changes a value.
  Both backends read through a plain cursor: on PostgreSQL, ``COPY (SELECT ...) TO STDOUT``
  (text format, parsed by ``pd.read_csv``) was measured no faster at 200k rows of
  revenue_schedules (1.93-2.04 s against 1.74-2.00 s), and CSV cannot tell NULL from ''.
- Bulk conversions pause the cyclic garbage collector (they create millions of objects
  that hold no cycles).
"""

from __future__ import annotations

import contextlib
import gc
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

CHUNK_ROWS = 50_000  # rows converted and sent at a time: bounds the Python objects alive
_NAT = np.iinfo(np.int64).min
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


# -- statements ---------------------------------------------------------------------------
def driver_statement(query: sa.Executable, dialect: sa.Dialect) -> tuple[str, Sequence | dict]:
    """SQL text and driver parameters of a SQLAlchemy statement, with the bind processors
    SQLAlchemy itself would apply (e.g. dates to ``YYYY-MM-DD`` on SQLite)."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = dict(compiled.construct_params())
    for bind, name in compiled.bind_names.items():
        proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if proc is None:
            continue
        for key in list(params):
            expanded = key.startswith(f"{name}_") and key[len(name) + 1 :].isdigit()
            if key == name or (bind.expanding and expanded):
                params[key] = proc(params[key])
    if compiled.positional:
        return compiled.string, tuple(params[k] for k in compiled.positiontup)
    escaped = compiled.escaped_bind_names or {}
    return compiled.string, {escaped.get(k, k): v for k, v in params.items()}


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic garbage collector while millions of row tuples (which hold no
    cycles) are created: otherwise each collection rescans them all."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _cursor(conn: sa.Connection, statement: str):
    """A raw DBAPI cursor of ``conn``; a driver error is raised as SQLAlchemy's (e.g.
    ``sa.exc.IntegrityError``), like ``conn.execute`` raises it."""
    dbapi = conn.dialect.loaded_dbapi
    cur = conn.connection.driver_connection.cursor()
    try:
        yield cur
    except dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(
            statement, None, err, dbapi.Error, dialect=conn.dialect
        ) from err
    finally:
        cur.close()


# -- writes -------------------------------------------------------------------------------
def dates(s: pd.Series) -> np.ndarray:
    """Calendar dates as ``YYYY-MM-DD`` (object array, None when missing); the wall date of
    a tz-aware timestamp, like ``pd.Timestamp(v).date()``."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or s.dtype.kind == "M":
        wall = s.dt.tz_localize(None) if isinstance(s.dtype, pd.DatetimeTZDtype) else s
        out = np.datetime_as_string(wall.to_numpy("datetime64[D]")).astype(object)
        out[s.isna().to_numpy()] = None
        return out
    return np.array(
        [None if pd.isna(v) else pd.Timestamp(v).date().isoformat() for v in s], dtype=object
    )


def _datetimes(s: pd.Series, suffix: str) -> np.ndarray:
    """Instants as UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` + suffix (naive values are UTC)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        utc = s.dt.tz_convert(None)
    elif s.dtype.kind == "M":  # naive: UTC already
        utc = s
    else:
        utc = pd.to_datetime(s, utc=True).dt.tz_convert(None)
    text = np.datetime_as_string(utc.to_numpy("datetime64[us]"), unit="us")
    chars = text.view("U1").reshape(len(text), -1) if len(text) else None
    if chars is not None:
        chars[:, 10] = " "  # the ISO 'T'
    out = np.char.add(text, suffix).astype(object) if suffix else text.astype(object)
    out[utc.isna().to_numpy()] = None
    return out


def _kind(s: pd.Series) -> str:
    """The numpy kind of a plain numpy column ('O' for extension dtypes such as Int64)."""
    return s.dtype.kind if isinstance(s.dtype, np.dtype) else "O"


def _integers(s: pd.Series) -> list:
    """Python ints (None when missing); a float is truncated like ``int()``."""
    kind = _kind(s)
    if kind in "iub":
        return s.to_numpy(np.int64).tolist()
    finite = np.isfinite(s.to_numpy()[s.notna().to_numpy()]).all() if kind == "f" else False
    if finite:
        vals = s.fillna(0).to_numpy().astype(np.int64).astype(object)
        vals[s.isna().to_numpy()] = None
        return vals.tolist()
    return [None if pd.isna(v) else int(v) for v in s]


def _booleans(s: pd.Series) -> list:
    if _kind(s) == "b":
        return s.tolist()
    return [None if pd.isna(v) else bool(v) for v in s]


def _objects(s: pd.Series) -> np.ndarray:
    vals = s.to_numpy(object, copy=True)
    vals[pd.isna(vals)] = None
    return vals


def _copy_text(values) -> list[str]:
    """Values in PostgreSQL COPY text format: ``\\N`` for a missing value, anything else its
    ``str`` with backslash, tab, newline and carriage return escaped."""
    vals = np.array(values, dtype=object)
    nulls = pd.isna(vals)
    present = vals[~nulls] if nulls.any() else vals
    if pd.api.types.infer_dtype(present, skipna=False) != "string":
        present = np.array([v if isinstance(v, str) else str(v) for v in present], dtype=object)
    joined = "".join(present)
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        present = np.array([v.translate(_COPY_ESCAPES) for v in present], dtype=object)
    if nulls.any():
        vals[nulls] = "\\N"
        vals[~nulls] = present
        return vals.tolist()
    return present.tolist()


def _wire(s: pd.Series, coltype: sa.types.TypeEngine, postgres: bool) -> list:
    """One column as driver values: SQLite parameters or PostgreSQL COPY text."""
    if isinstance(coltype, sa.Date):
        vals = dates(s)
    elif isinstance(coltype, sa.DateTime):
        vals = _datetimes(s, "+00" if postgres else "")
    elif isinstance(coltype, sa.Integer):
        if postgres and _kind(s) in "iu":  # no NULL possible
            return list(map(str, s.tolist()))
        vals = _integers(s)
    elif isinstance(coltype, sa.Boolean):
        if postgres and _kind(s) == "b":
            return np.where(s.to_numpy(), "t", "f").tolist()
        vals = _booleans(s)
        if postgres:
            vals = [None if v is None else ("t" if v else "f") for v in vals]
    else:
        vals = _objects(s)
    return _copy_text(vals) if postgres else list(vals)


def copy_columns(conn: sa.Connection, table: str, names: list[str], columns: list[list]) -> None:
    """COPY already-converted columns (lists of COPY text values) into ``table`` (a name as
    it goes into SQL: plain or already quoted); column names are quoted where needed."""
    if not columns or not len(columns[0]):
        return
    body = "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"
    cols = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
    sql = f"COPY {table} ({cols}) FROM STDIN"
    with _cursor(conn, sql) as cur:
        cur.copy_expert(sql, io.StringIO(body), size=1 << 20)


def copy_frame(conn: sa.Connection, table: str, df: pd.DataFrame, cols: list[str]) -> None:
    """COPY ``df[cols]`` into ``table`` on PostgreSQL: nulls (None, NaN, NaT) as NULL, other
    values as their ``str`` (text escaped, so tabs, newlines, backslashes are kept)."""
    for start in range(0, len(df), CHUNK_ROWS):
        part = df.iloc[start : start + CHUNK_ROWS]
        copy_columns(conn, table, cols, [_copy_text(_objects(part[c])) for c in cols])


def insert_frame(conn: sa.Connection, table: sa.Table, df: pd.DataFrame) -> None:
    """Insert the rows of ``df`` (the table's columns it has) into ``table``: COPY on
    PostgreSQL, ``executemany`` of column-wise built tuples on SQLite (the two backends)."""
    names = [c.name for c in table.columns if c.name in df.columns]
    postgres = conn.dialect.name == "postgresql"
    if not postgres:
        compiled = sa.insert(table).compile(dialect=conn.dialect, column_keys=names)
        order = list(compiled.positiontup)
        sql = compiled.string
    for start in range(0, len(df), CHUNK_ROWS):
        part = df.iloc[start : start + CHUNK_ROWS]
        with _no_gc():
            columns = {n: _wire(part[n], table.c[n].type, postgres) for n in names}
            if postgres:
                target = conn.dialect.identifier_preparer.format_table(table)
                copy_columns(conn, target, names, [columns[n] for n in names])
            else:
                rows = list(zip(*(columns[n] for n in order), strict=True))
                conn.exec_driver_sql(sql, rows)


# -- reads --------------------------------------------------------------------------------
def _wire_columns(table: sa.Table, names: list[str], postgres: bool) -> list:
    """Selected expressions: on PostgreSQL dates as days and timestamps as microseconds
    since the epoch (integers, independent of the session's TimeZone and DateStyle)."""
    exprs = []
    for n in names:
        col = table.c[n]
        if postgres and isinstance(col.type, sa.Date):
            col = (col - sa.literal_column("DATE '1970-01-01'")).label(n)
        elif postgres and isinstance(col.type, sa.DateTime):
            col = sa.cast(
                sa.extract("epoch", col) * sa.literal_column("1000000"), sa.BigInteger
            ).label(n)
        exprs.append(col)
    return exprs


def _epoch(raw: Sequence, unit: str) -> pd.Series:
    ints = np.fromiter((_NAT if v is None else v for v in raw), np.int64, len(raw))
    return pd.Series(ints.view(f"M8[{unit}]")).astype("datetime64[ns]").dt.tz_localize("UTC")


def _column(col: sa.Column, raw: Sequence, postgres: bool):
    """A column of driver values as an array for ``_typed``."""
    t = col.type
    if isinstance(t, sa.Date | sa.DateTime):
        if postgres:
            return _epoch(raw, "D" if isinstance(t, sa.Date) else "us")
        return pd.to_datetime(np.fromiter(raw, object, len(raw)), format="ISO8601", utc=True)
    if isinstance(t, sa.Integer):
        try:
            return np.fromiter(raw, np.int64, len(raw))
        except TypeError:  # NULLs
            return pd.array(list(raw), dtype="Int64")
    if isinstance(t, sa.Boolean):
        return np.array(raw, dtype=bool)  # NULL reads as False, as before
    return np.fromiter(raw, object, len(raw))


def read_rows(
    conn: sa.Connection, table: sa.Table, names: list[str], criteria: list
) -> pd.DataFrame:
    """The ``names`` columns of the rows of ``table`` matching ``criteria``, through a raw
    DBAPI cursor, as a frame of raw typed columns (``store._typed`` finishes the dtypes)."""
    postgres = conn.dialect.name == "postgresql"
    query = sa.select(*_wire_columns(table, names, postgres)).where(*criteria)
    sql, params = driver_statement(query, conn.dialect)
    with _cursor(conn, sql) as cur, _no_gc():
        cur.execute(sql, params)
        rows = cur.fetchall()
        raw = list(zip(*rows)) if rows else [()] * len(names)
        del rows
    data = {n: _column(table.c[n], r, postgres) for n, r in zip(names, raw, strict=True)}
    return pd.DataFrame(data, columns=names)
