"""The sandbox ERP's storage: journal entries and their lines in SQLite, plus a mirror of the
master data (``ns_<table>``) for SuiteQL.

``journal_entry`` holds a journal's body fields (references as internal ids, ``trandate`` ISO,
``extra`` the other body fields as JSON), ``journal_line`` its lines in order (``line`` from 0)
with amounts as exact decimal text in the journal's currency (``debit`` / ``credit``, one of
them set) and in the subsidiary's currency (``base_debit`` / ``base_credit``, NULL when the
rate is unknown). The internal id of a journal never changes; ``version`` counts its writes.
One connection (WAL) guarded by a lock; :meth:`JournalStore.transaction` holds it across a
read-validate-write so two writers of one external id cannot both create it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading

from sandboxes.erp_server.master import TABLES, MasterData

SCHEMA_VERSION = 3
HEAD_COLS = ("internal_id", "external_id", "tran_id", "subsidiary", "currency", "trandate",
             "postingperiod", "memo", "exchangerate", "extra", "version", "created_at",
             "updated_at")  # fmt: skip
LINE_COLS = ("line", "account", "debit", "credit", "base_debit", "base_credit", "memo", "entity",
             "department", "class", "location", "custom")  # fmt: skip
INTEGER_COLS = frozenset({"id", "parent", "currency", "subsidiary", "currencyprecision"})
REF_COLS = ("account", "entity", "department", "class", "location")
MASTER_COLS = {
    "account": ("id", "acctnumber", "acctname", "fullname", "accttype", "issummary",
                "isinactive"),
    "currency": ("id", "name", "symbol", "currencyprecision", "isbasecurrency", "isinactive"),
    "subsidiary": ("id", "name", "fullname", "currency", "country", "parent", "iselimination",
                   "isinactive"),
    "accountingperiod": ("id", "periodname", "startdate", "enddate", "isposting", "isquarter",
                         "isyear", "isadjust", "isinactive", "parent", "closed", "alllocked",
                         "arlocked", "aplocked"),
    "customer": ("id", "entityid", "externalid", "companyname", "subsidiary", "currency",
                 "isinactive"),
    "department": ("id", "name", "isinactive"),
    "classification": ("id", "name", "isinactive"),
    "location": ("id", "name", "isinactive"),
}  # fmt: skip


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class JournalStore:
    """Journals and the master-data mirror in SQLite (module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        if self.conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            # a file from an older sandbox: its shapes are not these, start afresh
            for t in ("journal_entry", "journal_line", *(f"ns_{t}" for t in TABLES)):
                self.conn.execute(f'DROP TABLE IF EXISTS "{t}"')
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.conn.execute(
            """CREATE TABLE IF NOT EXISTS journal_entry (
                internal_id INTEGER PRIMARY KEY AUTOINCREMENT, external_id TEXT UNIQUE,
                tran_id TEXT, subsidiary INTEGER NOT NULL, currency INTEGER NOT NULL,
                trandate TEXT NOT NULL, postingperiod INTEGER NOT NULL, memo TEXT,
                exchangerate TEXT, extra TEXT NOT NULL, version INTEGER NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"""
        )
        self.conn.execute(
            """CREATE TABLE IF NOT EXISTS journal_line (
                journal INTEGER NOT NULL, line INTEGER NOT NULL, account INTEGER NOT NULL,
                debit TEXT, credit TEXT, base_debit TEXT, base_credit TEXT, memo TEXT,
                entity INTEGER, department INTEGER, class INTEGER, location INTEGER,
                custom TEXT NOT NULL, PRIMARY KEY (journal, line))"""
        )
        for table, cols in MASTER_COLS.items():
            typed = ", ".join(f"{c} {'INTEGER' if c in INTEGER_COLS else 'TEXT'}" for c in cols)
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS ns_{table} ({typed})")
        self._mirrored = None

    @contextlib.contextmanager
    def transaction(self):
        """Hold the store for a read-validate-write, inside one SQLite transaction."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # -- journals --------------------------------------------------------------------------
    def find(self, external_id: str | None = None, internal_id: int | None = None):
        """``(head, lines)`` of a journal by external or internal id, or None."""
        where, arg = ("external_id", external_id) if internal_id is None else (
            "internal_id", internal_id)  # fmt: skip
        with self.lock:
            row = self.conn.execute(
                f"SELECT {', '.join(HEAD_COLS)} FROM journal_entry WHERE {where} = ?", (arg,)
            ).fetchone()
            if row is None:
                return None
            head = dict(zip(HEAD_COLS, row, strict=True))
            head["extra"] = json.loads(head["extra"])
            for col in ("subsidiary", "currency", "postingperiod"):
                head[col] = str(head[col])
            lines = self.conn.execute(
                f"SELECT {', '.join(LINE_COLS)} FROM journal_line WHERE journal = ? ORDER BY line",
                (head["internal_id"],),
            ).fetchall()
        return head, [_line(r) for r in lines]

    def write(self, head: dict, lines: list[dict], internal_id: int | None = None) -> int:
        """Create (``internal_id`` None) or overwrite a journal and all its lines; the id."""
        now = now_iso()
        vals = (head.get("external_id"), head.get("tran_id"), head["subsidiary"],
                head["currency"], head["trandate"], head["postingperiod"], head.get("memo"),
                head.get("exchangerate"), json.dumps(head.get("extra") or {}))  # fmt: skip
        with self.lock:
            if internal_id is None:
                internal_id = self.conn.execute(
                    """INSERT INTO journal_entry (external_id, tran_id, subsidiary, currency,
                       trandate, postingperiod, memo, exchangerate, extra, version, created_at,
                       updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
                       RETURNING internal_id""",
                    (*vals, now, now),
                ).fetchone()[0]
            else:
                self.conn.execute(
                    """UPDATE journal_entry SET external_id = ?, tran_id = ?, subsidiary = ?,
                       currency = ?, trandate = ?, postingperiod = ?, memo = ?,
                       exchangerate = ?, extra = ?, version = version + 1, updated_at = ?
                       WHERE internal_id = ?""",
                    (*vals, now, internal_id),
                )
                self.conn.execute("DELETE FROM journal_line WHERE journal = ?", (internal_id,))
            self.conn.executemany(
                f"INSERT INTO journal_line (journal, {', '.join(LINE_COLS)}) "
                f"VALUES ({', '.join('?' * (len(LINE_COLS) + 1))})",
                [(internal_id, *(_cell(ln, c) for c in LINE_COLS)) for ln in lines],
            )
        return int(internal_id)

    def ids(self, limit: int, offset: int) -> tuple[list[int], int]:
        with self.lock:
            total = self.conn.execute("SELECT count(*) FROM journal_entry").fetchone()[0]
            rows = self.conn.execute(
                "SELECT internal_id FROM journal_entry ORDER BY internal_id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [r[0] for r in rows], int(total)

    def all(self) -> list[tuple[dict, list[dict]]]:
        with self.lock:
            ids = [r[0] for r in self.conn.execute(
                "SELECT internal_id FROM journal_entry ORDER BY internal_id")]  # fmt: skip
            return [self.find(internal_id=i) for i in ids]

    def counts(self) -> tuple[int, int]:
        """(distinct journals, total writes)."""
        with self.lock:
            n, writes = self.conn.execute(
                "SELECT count(*), coalesce(sum(version), 0) FROM journal_entry"
            ).fetchone()
        return int(n), int(writes)

    def reset(self) -> None:
        with self.lock:
            self.conn.execute("DELETE FROM journal_line")
            self.conn.execute("DELETE FROM journal_entry")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- the master-data mirror ------------------------------------------------------------
    def mirror(self, master: MasterData, closed: frozenset, locked: frozenset) -> None:
        """Rewrite the ``ns_`` tables when the master data or the period status changed;
        ``closed`` / ``locked`` are the ``YYYY-MM`` months closed for every subsidiary."""
        version, rows = master.snapshot()
        key = (version, closed, locked)
        with self.lock:
            if key == self._mirrored:
                return
            for period in rows["accountingperiod"]:
                month = period["startdate"][:7] if period["isposting"] == "T" else None
                period["closed"] = "T" if month in closed else "F"
                lock = "T" if month in locked or month in closed else "F"
                period["alllocked"] = period["arlocked"] = period["aplocked"] = lock
            self.conn.execute("BEGIN")
            for table, cols in MASTER_COLS.items():
                self.conn.execute(f"DELETE FROM ns_{table}")
                self.conn.executemany(
                    f"INSERT INTO ns_{table} VALUES ({', '.join('?' * len(cols))})",
                    [tuple(r.get(c) for c in cols) for r in rows[table]],
                )
            self.conn.execute("COMMIT")
            self._mirrored = key


def _cell(line: dict, col: str):
    value = line.get(col)
    return json.dumps(value or {}) if col == "custom" else value


def _line(row) -> dict:
    line = dict(zip(LINE_COLS, row, strict=True))
    line["custom"] = json.loads(line["custom"])
    for col in REF_COLS:
        if line[col] is not None:
            line[col] = str(line[col])
    return line
