"""The document store of incremental recognition (``sync_core.revenue.incremental``).

Per legal entity: ``document_index`` (one row per document: content hash, the revenue close it
was recognized under, its last month) and the document's rows in ``document_schedules``,
``document_lines`` and ``document_quarantine``. A refresh replaces the rows of the documents
it recognized again or removed, and only those, in one transaction; on PostgreSQL it holds a
transaction-level advisory lock on the entity, so two runs of one entity never interleave
their writes. A month is read by its ``(entity_id, period)`` index.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from sync_core.warehouse.fast_io import insert_frame
from sync_core.warehouse.schema import TABLES
from sync_core.warehouse.store import Warehouse, _as_date

_ROWS = {"schedule": "document_schedules", "accounting_lines": "document_lines",
         "quarantine": "document_quarantine"}  # fmt: skip
_CHUNK = 500


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(keys), _CHUNK):
        yield keys[i : i + _CHUNK]


def lock_entity(conn: sa.Connection, entity_id: str, scope: str = "documents") -> None:
    """Serialize writers of one entity (PostgreSQL; SQLite serializes writers itself)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{scope}:{entity_id}"}
        )


class DocumentStore:
    def __init__(self, wh: Warehouse):
        self.wh = wh

    def index(self, entity_id: str) -> pd.DataFrame:
        return self.wh.read("document_index", where=TABLES["document_index"].c.entity_id
                            == entity_id)  # fmt: skip

    def replace(self, entity_id: str, removed: list[str], recognized) -> dict[str, int]:
        """Drop the rows of ``removed`` and of every document ``recognized`` holds, insert
        the recognized rows and index entries; one transaction."""
        keys = sorted(set(removed) | set(recognized.index["document_key"]))
        frames = {
            "document_index": recognized.index,
            **{table: getattr(recognized, attr) for attr, table in _ROWS.items()},
        }
        written = {}
        with self.wh.engine.begin() as conn:
            lock_entity(conn, entity_id)
            for name in frames:
                t = TABLES[name]
                for chunk in _chunks(keys):
                    conn.execute(
                        sa.delete(t).where(t.c.entity_id == entity_id, t.c.document_key.in_(chunk))
                    )
            for name, df in frames.items():
                df = df[df["entity_id"] == entity_id] if name != "document_index" else df
                if name == "document_quarantine":
                    df = df[df["period"].notna()]  # a month's quarantine has a month
                if len(df):
                    insert_frame(conn, TABLES[name], df)
                written[name] = len(df)
        return written

    def months(self, entity_id: str, first, last) -> dict[str, pd.DataFrame]:
        """The stored rows of ``first``..``last`` (inclusive): schedule, lines, quarantine."""
        out = {}
        for attr, name in _ROWS.items():
            df = self.wh.read(name, entity_id, periods=(first, last))
            out[attr] = df.drop(columns="document_key")
        return out

    def booked(self, entity_id: str, closed_through, invoices: list[str]) -> pd.DataFrame:
        """The schedule rows booked for closed months of these invoices (what the engine
        measures corrections against)."""
        t = TABLES["revenue_schedules"]
        parts = [
            self.wh.read(
                "revenue_schedules",
                entity_id,
                where=sa.and_(t.c.period <= _as_date(closed_through), t.c.invoice_id.in_(chunk)),
            )
            for chunk in _chunks(sorted(invoices))
        ]
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else self.wh.read(
            "revenue_schedules", entity_id, where=sa.false())  # fmt: skip
