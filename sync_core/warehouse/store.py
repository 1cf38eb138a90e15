"""Partition-atomic reads and writes over SQLAlchemy (bulk paths in ``fast_io``)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.warehouse import fast_io, totals
from sync_core.warehouse.migrations import migrate
from sync_core.warehouse.schema import TABLES, TOTALS

_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
_ENGINES: dict[str, sa.Engine] = {}
_MIGRATED: set[str] = set()
_LOCK = threading.Lock()


def _engine(url: str) -> sa.Engine:
    with _LOCK:
        if url not in _ENGINES:
            if url.startswith("sqlite"):
                path = sa.engine.make_url(url).database
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                eng = sa.create_engine(url, connect_args={"timeout": 60})

                @sa.event.listens_for(eng, "connect")
                def _pragma(dbapi_conn, _):  # pragma: no cover - trivial
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=NORMAL")
                    cur.close()
            else:
                eng = sa.create_engine(url, pool_pre_ping=True)
            _ENGINES[url] = eng
        return _ENGINES[url]


def _as_date(period) -> date:
    ts = pd.Timestamp(period)
    return date(ts.year, ts.month, ts.day)


class Warehouse:
    """SQL storage for the canonical and derived tables.

    ``replace_partitions`` (``replace_partition`` for one month) is the only write path for
    partitioned tables: it deletes the (entity, period) rows of every table it is given and
    inserts the new ones in one transaction, so a failure mid-write leaves the previous
    partitions intact.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        with _LOCK:
            if url not in _MIGRATED:
                migrate(self.engine)
                _MIGRATED.add(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def replace_partition(
        self,
        entity_id: str,
        period,
        frames: Mapping[str, pd.DataFrame],
        exceptions: pd.DataFrame | None = None,
        exception_scope: tuple[str, Iterable[str]] | None = None,
        run_id: str | None = None,
    ) -> dict[str, int]:
        """Delete + insert the partition of each table (and its exceptions) atomically.

        Every row is written in ``period`` (a ``period`` column in the frames is overwritten);
        ``exception_scope`` = (stage, object types): the exception rows of that stage and
        those object types in the partition are replaced by ``exceptions``.
        """
        month = pd.Timestamp(_as_date(period))
        frames = {name: df.assign(period=month) for name, df in frames.items()}
        if exceptions is not None:
            exceptions = exceptions.assign(period=month)
        return self.replace_partitions(
            entity_id, [period], frames, exceptions, exception_scope, run_id
        )

    def replace_partitions(
        self,
        entity_id: str,
        periods: Iterable,
        frames: Mapping[str, pd.DataFrame],
        exceptions: pd.DataFrame | None = None,
        exception_scope: tuple[str, Iterable[str]] | None = None,
        run_id: str | None = None,
    ) -> dict[str, int]:
        """Replace several periods of one entity in one transaction.

        For each table in ``frames`` the rows of ``entity_id`` in every one of ``periods`` are
        deleted (a period with no new rows becomes empty) and the frame's rows inserted; each
        row carries its ``period``, which must be one of ``periods`` (and its ``entity_id``,
        if given, ``entity_id``), else ValueError before anything is written. Exceptions
        (with ``period``) replace the rows of ``exception_scope`` = (stage, object types) in
        those periods, keeping the first ``detected_at``/``run_id`` of one seen again. On
        PostgreSQL the transaction first takes an advisory lock on the entity, so writers of
        one entity's partitions run one after the other.
        """
        days = sorted({_as_date(p) for p in periods})
        checked = {name: _in_partitions(name, df, entity_id, days) for name, df in frames.items()}
        if exception_scope is not None and exceptions is not None:
            exceptions = _in_partitions("exceptions", exceptions, entity_id, days, entity=False)
        written: dict[str, int] = {}
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext('warehouse:' || :entity))"),
                    {"entity": entity_id},
                )
            for name, df in checked.items():
                table = TABLES[name]
                conn.execute(
                    sa.delete(table).where(table.c.entity_id == entity_id, table.c.period.in_(days))
                )
                if len(df):
                    fast_io.insert_frame(conn, table, df)
                if name in TOTALS:
                    totals.replace(conn, TOTALS[name], entity_id, days)
                written[name] = len(df)
            if exception_scope is not None:
                n = _replace_exceptions(conn, entity_id, days, exceptions, exception_scope, run_id)
                written["exceptions"] = n
        return written

    def replace_table(self, name: str, df: pd.DataFrame) -> int:
        """Replace an unpartitioned reference table (legal entities) in one transaction."""
        table = TABLES[name]
        with self.engine.begin() as conn:
            conn.execute(sa.delete(table))
            if len(df):
                fast_io.insert_frame(conn, table, df)
        return len(df)

    def read(
        self,
        name: str,
        entity_id: str | None = None,
        period=None,
        where: sa.ColumnElement | None = None,
        *,
        columns: Iterable[str] | None = None,
        periods: tuple | None = None,
    ) -> pd.DataFrame:
        """Rows of a table, typed like the contract (see ``_typed``).

        ``entity_id``, ``period`` (one month) and ``where`` filter the rows; ``periods`` =
        (first, last) keeps the months from ``first`` through ``last`` (inclusive, either
        Timestamp-like, None for open); ``columns`` keeps only those columns, in table order
        (an unknown name is a ValueError; filters need not be among them).
        """
        table = TABLES[name]
        names = _selected(table, columns)
        criteria = []
        if entity_id is not None:
            criteria.append(table.c.entity_id == entity_id)
        if period is not None:
            criteria.append(table.c.period == _as_date(period))
        criteria += _months(table, periods)
        if where is not None:
            criteria.append(where)
        with self.engine.connect() as conn:
            df = fast_io.read_rows(conn, table, names, criteria)
        return _typed(df, table)

    def sums(
        self,
        name: str,
        entity_id: str,
        by: Iterable[str],
        amounts: Iterable[str],
        *,
        periods: tuple | None = None,
        known: tuple[str, ...] = (),
    ) -> pd.DataFrame:
        """``SUM`` of the ``amounts`` columns per ``by`` of one entity's rows (the months
        ``periods`` = (first, last), inclusive, either None for open), computed in the
        database. ``known``: amount columns that may be NULL; a row where one of them is NULL
        is summed apart (``known`` False, those sums NULL), so a caller can tell an unknown
        amount from a zero. Amounts come back int64 (Int64 where NULL), ``period`` UTC."""
        table, amounts = TABLES[name], list(amounts)
        q = totals.grouped(table, list(by), amounts, known,
                           [table.c.entity_id == entity_id, *_months(table, periods)])  # fmt: skip
        with self.engine.connect() as conn:
            return totals.read(conn, q, amounts, known)

    def totals(self, name: str, entity_id: str, *, periods: tuple | None = None):
        """The monthly totals of ``accounting_lines`` or ``revenue_schedules``
        (``schema.TOTALS``) of one entity: what :meth:`sums` gives per the totals' grouping,
        read from the totals kept with the partitions instead of from every row."""
        spec = TOTALS[name]
        table = TABLES[spec.table]
        q = sa.select(table).where(table.c.entity_id == entity_id, *_months(table, periods))
        with self.engine.connect() as conn:
            return totals.read(conn, q, spec.amounts, spec.known)

    def close_period(self, entity_id: str, through, closed_by: str | None = None) -> None:
        """Close an entity's revenue through a month: later changes to it become corrections
        in the first open month. Closing never moves backwards."""
        t = TABLES["revenue_period_close"]
        month = _as_date(pd.Timestamp(through).to_period("M").to_timestamp())
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(t.c.closed_through).where(t.c.entity_id == entity_id)
            ).scalar()
            if current is not None and month < current:
                raise ValueError(
                    f"{entity_id} is closed through {current}; cannot reopen to {month}"
                )
            conn.execute(sa.delete(t).where(t.c.entity_id == entity_id))
            conn.execute(
                sa.insert(t).values(
                    entity_id=entity_id,
                    closed_through=month,
                    closed_at=datetime.now(UTC),
                    closed_by=closed_by,
                )
            )

    def closed_through(self) -> dict[str, pd.Timestamp]:
        """Entity -> last closed month (UTC month start)."""
        t = TABLES["revenue_period_close"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.entity_id, t.c.closed_through)).all()
        return {e: pd.Timestamp(c).tz_localize("UTC") for e, c in rows}

    def query(self, sql: str, **params) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def partition_counts(self, name: str) -> pd.DataFrame:
        table = TABLES[name]
        q = sa.select(table.c.entity_id, table.c.period, sa.func.count().label("rows")).group_by(
            table.c.entity_id, table.c.period
        )
        with self.engine.connect() as conn:
            result = conn.execute(q)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _months(table: sa.Table, periods: tuple | None) -> list:
    """The criteria keeping the months (first, last), inclusive, either None for open."""
    first, last = periods if periods is not None else (None, None)
    out = []
    if first is not None:
        out.append(table.c.period >= _month(first))
    if last is not None:
        out.append(table.c.period <= _month(last))
    return out


def _month(value) -> date:
    ts = pd.Timestamp(value)
    return date(ts.year, ts.month, 1)


def _selected(table: sa.Table, columns: Iterable[str] | None) -> list[str]:
    """The names of ``columns`` in table order (all columns when None)."""
    if columns is None:
        return [c.name for c in table.columns]
    wanted = [columns] if isinstance(columns, str) else list(columns)
    unknown = sorted(set(wanted) - set(table.c.keys()))
    if unknown or not wanted:
        raise ValueError(f"{table.name}: unknown or no columns {unknown}")
    return [c.name for c in table.columns if c.name in wanted]


def _in_partitions(
    name: str, df: pd.DataFrame, entity_id: str, days: list[date], entity: bool = True
) -> pd.DataFrame:
    """``df`` if every row is in one of the partitions: its ``period`` one of ``days`` and,
    with ``entity`` and an ``entity_id`` column, its entity ``entity_id``; else ValueError."""
    TABLES[name]  # an unknown table is a KeyError, before anything is written
    if not len(df):
        return df
    if "period" not in df:
        raise ValueError(f"{name}: rows without a period column")
    allowed = np.array([d.isoformat() for d in days], dtype=object)
    bad = ~np.isin(fast_io.dates(df["period"]), allowed)
    if entity and "entity_id" in df:
        bad |= (df["entity_id"] != entity_id).to_numpy()
    if bad.any():
        where = ",".join(str(d) for d in days)
        raise ValueError(f"{name}: {int(bad.sum())} rows outside partition {entity_id}|{where}")
    return df


def _replace_exceptions(conn, entity_id, days, exceptions, exception_scope, run_id) -> int:
    """Replace the scoped exception rows of the periods; an exception seen again (same
    period, object type, source id and rule) keeps when and by which run it was first
    detected."""
    stage, object_types = exception_scope
    ex = TABLES["exceptions"]
    scope = (
        ex.c.entity_id == entity_id,
        ex.c.period.in_(days),
        ex.c.stage == stage,
        ex.c.object_type.in_(list(object_types)),
    )
    seen = {
        (str(r.period), r.object_type, r.source_id, r.rule): (_utc(r.detected_at), r.run_id)
        for r in conn.execute(
            sa.select(
                ex.c.period,
                ex.c.object_type,
                ex.c.source_id,
                ex.c.rule,
                ex.c.detected_at,
                ex.c.run_id,
            ).where(*scope)
        )
    }
    conn.execute(sa.delete(ex).where(*scope))
    if exceptions is None or not len(exceptions):
        return 0
    now = pd.Timestamp.now(tz="UTC")
    keys = zip(
        fast_io.dates(exceptions["period"]),
        exceptions["object_type"],
        exceptions["source_id"],
        exceptions["rule"],
        strict=True,
    )
    first = [seen.get(k, (now, run_id)) for k in keys]
    rows = exceptions.assign(
        entity_id=entity_id,
        stage=stage,
        detected_at=pd.to_datetime([f[0] for f in first], utc=True),
        run_id=[f[1] for f in first],
    )
    fast_io.insert_frame(conn, ex, rows)
    return len(exceptions)


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _typed(df: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """The contract's dtypes: dates and datetimes UTC, BigInteger int64 (nullable Int64 when
    a NULL is present), booleans bool (NULL as False), text object (None for NULL). A column
    that has its dtype already is left as it is (the bulk reader gives most of them)."""
    for col in table.columns:
        if col.name not in df:
            continue
        s = df[col.name]
        if isinstance(col.type, sa.Date | sa.DateTime):
            if s.dtype != _UTC_NS:
                df[col.name] = pd.to_datetime(s, utc=True)
        elif isinstance(col.type, sa.BigInteger):
            target = "int64" if not col.nullable or s.notna().all() else "Int64"
            if s.dtype != target:
                df[col.name] = s.astype(target)
        elif isinstance(col.type, sa.Boolean):
            if s.dtype != bool:
                df[col.name] = s.astype(bool)
        elif isinstance(col.type, sa.Text):
            if s.dtype != object:
                df[col.name] = s.astype(object)
    return df
