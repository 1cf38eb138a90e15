"""Partition-atomic reads and writes over SQLAlchemy."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.warehouse.migrations import migrate
from sync_core.warehouse.schema import TABLES

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


def _records(df: pd.DataFrame, table: sa.Table) -> list[dict]:
    """DataFrame rows as plain Python values for the table's columns."""
    cols = [c.name for c in table.columns if c.name in df.columns]
    out: dict[str, list] = {}
    for name in cols:
        s = df[name]
        coltype = table.c[name].type
        if isinstance(coltype, sa.Date):
            vals = [None if pd.isna(v) else _as_date(v) for v in s]
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
    n = len(df)
    return [{k: out[k][i] for k in cols} for i in range(n)]


class Warehouse:
    """SQL storage for the canonical and derived tables.

    ``replace_partition`` is the only write path for partitioned tables: it deletes the
    (entity, period) rows of every table it is given and inserts the new ones in one
    transaction, so a failure mid-write leaves the previous partition intact.
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

        ``exception_scope`` = (stage, object types): the exception rows of that stage and
        those object types in the partition are replaced by ``exceptions``.
        """
        p = _as_date(period)
        written: dict[str, int] = {}
        with self.engine.begin() as conn:
            for name, df in frames.items():
                table = TABLES[name]
                conn.execute(
                    sa.delete(table).where(table.c.entity_id == entity_id, table.c.period == p)
                )
                if len(df):
                    bad = df[(df["entity_id"] != entity_id)] if "entity_id" in df else df.iloc[:0]
                    if len(bad):
                        raise ValueError(
                            f"{name}: {len(bad)} rows outside partition {entity_id}|{p}"
                        )
                    conn.execute(sa.insert(table), _records(df.assign(period=p), table))
                written[name] = len(df)
            if exception_scope is not None:
                stage, object_types = exception_scope
                ex = TABLES["exceptions"]
                scope = (
                    ex.c.entity_id == entity_id,
                    ex.c.period == p,
                    ex.c.stage == stage,
                    ex.c.object_type.in_(list(object_types)),
                )
                # an exception seen again keeps when and by which run it was first detected
                seen = {
                    (r.object_type, r.source_id, r.rule): (r.detected_at, r.run_id)
                    for r in conn.execute(
                        sa.select(
                            ex.c.object_type,
                            ex.c.source_id,
                            ex.c.rule,
                            ex.c.detected_at,
                            ex.c.run_id,
                        ).where(*scope)
                    )
                }
                conn.execute(sa.delete(ex).where(*scope))
                if exceptions is not None and len(exceptions):
                    now = datetime.now(UTC)
                    first = [
                        seen.get((o, s, r), (now, run_id))
                        for o, s, r in zip(
                            exceptions["object_type"], exceptions["source_id"], exceptions["rule"]
                        )
                    ]
                    rows = exceptions.assign(
                        entity_id=entity_id,
                        period=p,
                        stage=stage,
                        detected_at=[f[0] for f in first],
                        run_id=[f[1] for f in first],
                    )
                    conn.execute(sa.insert(ex), _records(rows, ex))
                written["exceptions"] = 0 if exceptions is None else len(exceptions)
        return written

    def replace_table(self, name: str, df: pd.DataFrame) -> int:
        """Replace an unpartitioned reference table (legal entities) in one transaction."""
        table = TABLES[name]
        with self.engine.begin() as conn:
            conn.execute(sa.delete(table))
            if len(df):
                conn.execute(sa.insert(table), _records(df, table))
        return len(df)

    def read(
        self,
        name: str,
        entity_id: str | None = None,
        period=None,
        where: sa.ColumnElement | None = None,
    ) -> pd.DataFrame:
        """Rows of a table (optionally one entity / one period), typed like the contract."""
        table = TABLES[name]
        q = sa.select(table)
        if entity_id is not None:
            q = q.where(table.c.entity_id == entity_id)
        if period is not None:
            q = q.where(table.c.period == _as_date(period))
        if where is not None:
            q = q.where(where)
        with self.engine.connect() as conn:
            result = conn.execute(q)
            df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        return _typed(df, table)

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


def _typed(df: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    for col in table.columns:
        if col.name not in df:
            continue
        if isinstance(col.type, sa.Date | sa.DateTime):
            df[col.name] = pd.to_datetime(df[col.name], utc=True)
        elif isinstance(col.type, sa.BigInteger):
            df[col.name] = (
                df[col.name].astype("int64")
                if not col.nullable or df[col.name].notna().all()
                else df[col.name].astype("Int64")
            )
        elif isinstance(col.type, sa.Boolean):
            df[col.name] = df[col.name].astype(bool) if len(df) else df[col.name].astype(bool)
        elif isinstance(col.type, sa.Text):
            df[col.name] = df[col.name].astype(object)
    return df
