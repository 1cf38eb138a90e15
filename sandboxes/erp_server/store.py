"""The sandbox ERP's storage: journals in SQLite."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading


class JournalStore:
    """Journals in SQLite (WAL), one connection guarded by a lock."""

    def __init__(self, path: str | os.PathLike):
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute(
            """CREATE TABLE IF NOT EXISTS journal_entry (
                internal_id INTEGER PRIMARY KEY AUTOINCREMENT,
                external_id TEXT NOT NULL UNIQUE,
                version INTEGER NOT NULL,
                record TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )"""
        )

    def upsert(self, external_id: str, record: dict) -> tuple[int, int]:
        """Create or replace; returns (internal id, version). The internal id never changes."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with self._lock:
            row = self._conn.execute(
                """INSERT INTO journal_entry (external_id, version, record, created_at, updated_at)
                   VALUES (?, 1, ?, ?, ?)
                   ON CONFLICT (external_id) DO UPDATE SET
                       version = journal_entry.version + 1,
                       record = excluded.record,
                       updated_at = excluded.updated_at
                   RETURNING internal_id, version""",
                (external_id, json.dumps(record, separators=(",", ":")), now, now),
            ).fetchone()
        return int(row[0]), int(row[1])

    _COLS = "internal_id, external_id, version, record, created_at, updated_at"

    @staticmethod
    def _journal(row) -> dict:
        internal_id, external_id, version, record, created, updated = row
        return {
            "id": str(internal_id),
            **json.loads(record),
            "externalId": external_id,
            "version": version,
            "createdDate": created,
            "lastModifiedDate": updated,
        }

    def get(self, external_id: str | None = None, internal_id: int | None = None) -> dict | None:
        where, arg = (
            ("external_id", external_id) if internal_id is None else ("internal_id", internal_id)
        )
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._COLS} FROM journal_entry WHERE {where} = ?", (arg,)
            ).fetchone()
        return None if row is None else self._journal(row)

    def all(self) -> list[dict]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLS} FROM journal_entry ORDER BY internal_id"
            ).fetchall()
        return [self._journal(r) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(distinct journals, total writes)."""
        with self._lock:
            n, writes = self._conn.execute(
                "SELECT count(*), coalesce(sum(version), 0) FROM journal_entry"
            ).fetchone()
        return int(n), int(writes)

    def reset(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM journal_entry")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
