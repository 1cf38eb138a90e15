"""Monthly totals of the subledger, kept with the partitions they sum.

A reconciliation compares balances *through* a month: every accounting line and schedule row
of the entity up to it. Summed from the rows, that read grows with the book's age; so each
write of an ``accounting_lines`` or ``revenue_schedules`` partition
(:meth:`~sync_core.warehouse.store.Warehouse.replace_partitions`) also replaces that
partition's totals (``schema.TOTALS``: per account and currency, per currency), in the same
transaction, by ``INSERT ... SELECT ... GROUP BY`` over the rows just written. A balance
through a month then reads one row per account, currency and month.

:func:`grouped` is the one aggregate: what the totals hold, and what
:meth:`~sync_core.warehouse.store.Warehouse.sums` computes ad hoc for other groupings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import pandas as pd
import sqlalchemy as sa

from sync_core.warehouse.schema import TABLES, TOTALS, Totals


def grouped(table: sa.Table, by: Sequence[str], amounts: Sequence[str], known=(), where=()):
    """``SELECT by..., [known], SUM(amounts)... FROM table WHERE where GROUP BY by, [known]``:
    ``known`` is whether every one of those amounts is non-NULL on the row."""
    keys = [table.c[c] for c in by]  # KeyError names a wrong column
    if known:  # PostgreSQL refuses a constant in GROUP BY: the flag only when asked
        keys.append(sa.and_(*(table.c[c].isnot(None) for c in known)).label("known"))
    sums = [sa.cast(sa.func.sum(table.c[c]), sa.BigInteger).label(c) for c in amounts]
    return sa.select(*keys, *sums).where(*where).group_by(*keys)


def _columns(spec: Totals) -> list[str]:
    """The totals table's columns in the order :func:`grouped` selects them."""
    return [*spec.by, *(["known"] if spec.known else []), *spec.amounts]


def replace(conn: sa.Connection, spec: Totals, entity_id: str, days: Iterable[date]) -> None:
    """Recompute the totals of the entity's ``days`` partitions from the source rows."""
    totals, source = TABLES[spec.table], TABLES[spec.source]
    days = list(days)
    conn.execute(
        sa.delete(totals).where(totals.c.entity_id == entity_id, totals.c.period.in_(days))
    )
    q = grouped(source, spec.by, spec.amounts, spec.known,
                [source.c.entity_id == entity_id, source.c.period.in_(days)])  # fmt: skip
    conn.execute(sa.insert(totals).from_select(_columns(spec), q))


def rebuild(conn: sa.Connection) -> None:
    """Every entity's and month's totals from the rows (a migration of an older database)."""
    for spec in TOTALS.values():
        totals = TABLES[spec.table]
        conn.execute(sa.delete(totals))
        q = grouped(TABLES[spec.source], spec.by, spec.amounts, spec.known)
        conn.execute(sa.insert(totals).from_select(_columns(spec), q))


def read(conn: sa.Connection, q, amounts: Sequence[str], known: Sequence[str]) -> pd.DataFrame:
    """The rows of an aggregate or totals query, typed: amounts int64 (Int64 where NULL; the
    ``known`` ones NULL on rows summed apart), ``known`` bool, ``period`` UTC."""
    res = conn.execute(q)
    df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    if known:
        df["known"] = df["known"].astype(bool)
    for c in amounts:
        if c in known:
            df[c] = df[c].astype("Int64").where(df["known"])
        df[c] = df[c].astype("int64" if df[c].notna().all() else "Int64")
    if "period" in df:
        df["period"] = pd.to_datetime(df["period"], utc=True)
    return df
