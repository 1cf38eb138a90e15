"""The SQL ledger: the default ERP target, on SQLite or PostgreSQL.

Journals and their lines live in ``ledger_journals`` / ``ledger_journal_lines`` with a unique
external id. A batch is posted in one transaction: journals are inserted with
``ON CONFLICT (external_id) DO NOTHING`` and only the lines of journals inserted by this batch
follow, so a retried, replayed or crashed-and-rerun batch can never duplicate a posting and
never leaves a journal without its lines. On PostgreSQL the batch goes through the bulk path:
COPY into temporary staging tables, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. On
SQLite the rows go to the driver's ``executemany`` as tuples built column by column, with the
values SQLAlchemy's typed insert would bind (:func:`_sqlite_values`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.warehouse.fast_io import copy_frame, dates, insert_frame

ledger_metadata = sa.MetaData()

journals = sa.Table(
    "ledger_journals",
    ledger_metadata,
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("erp_subsidiary_id", sa.Text, nullable=True),
    sa.Column("period", sa.Date, nullable=False),  # the period the journal was posted in
    sa.Column("source_period", sa.Date, nullable=False),  # the period its events belong to
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("document_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("total_debit", sa.BigInteger, nullable=False),
    sa.Column("line_count", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("reverses", sa.Text, nullable=True),  # external id of the reversed journal
    sa.Column("correction", sa.Boolean, nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),
    sa.Column("memo", sa.Text, nullable=True),  # as sent to the ERP
    sa.Column("transaction_date", sa.Date, nullable=True),  # the ERP's tranDate
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
)
# the posting plan's reads: a key's history by its document (a journal key is entity, event and
# document), the journals of one source period (stale ones), the journals posted in a period
sa.Index("ix_ledger_journals_document", journals.c.entity_id, journals.c.document_id)
sa.Index("ix_ledger_journals_source_period", journals.c.entity_id, journals.c.source_period)
sa.Index("ix_ledger_journals_period", journals.c.entity_id, journals.c.period)

journal_lines = sa.Table(
    "ledger_journal_lines",
    ledger_metadata,
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("erp_account", sa.Text, nullable=False),
    sa.Column("erp_customer_id", sa.Text, nullable=True),
    sa.Column("debit", sa.BigInteger, nullable=False),
    sa.Column("credit", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("debit_functional", sa.BigInteger, nullable=False),
    sa.Column("credit_functional", sa.BigInteger, nullable=False),
    sa.Column("functional_currency", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.Text, nullable=False),
)

# what a summarized line (a month's revenue by account) is made of: one row per schedule
# source, so a GL line drills down to invoice lines (revenue_schedules.source_id / line_key)
line_sources = sa.Table(
    "ledger_journal_line_sources",
    ledger_metadata,
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, nullable=True),
    sa.Column("debit", sa.BigInteger, nullable=False),
    sa.Column("credit", sa.BigInteger, nullable=False),
    sa.Column("debit_functional", sa.BigInteger, nullable=False),
    sa.Column("credit_functional", sa.BigInteger, nullable=False),
)

JOURNAL_COLS = [c.name for c in journals.columns]
LINE_COLS = [c.name for c in journal_lines.columns]
SOURCE_COLS = [c.name for c in line_sources.columns]


@dataclass(frozen=True)
class LedgerPostResult:
    inserted: list[str]  # external ids posted by this batch
    already_posted: list[str]  # external ids that were in the ledger before


class SqlLedger:
    """Append-only, idempotent journal store (see module docstring)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        ledger_metadata.create_all(engine, checkfirst=True)
        add_missing_columns(engine, journals)
        _add_missing_indexes(engine, journals)

    # -- reads ---------------------------------------------------------------------------
    def journals(
        self, entity_id: str | None = None, *, documents: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Journal headers (every version and reversal), by external id: all of them, or of
        one entity; with ``documents``, only the journals of those document ids, which is the
        whole history of every journal key of those documents."""
        q = sa.select(journals)
        if entity_id is not None:
            q = q.where(journals.c.entity_id == entity_id)
        return _read_in(self.engine, q, journals.c.document_id, documents, ["external_id"])

    def period_documents(self, entity_id: str, source_period) -> set[str]:
        """Documents of the entity's journals whose events belong to ``source_period``
        (whatever period they were posted in: a correction moved out of a closed one too)."""
        q = sa.select(journals.c.document_id).distinct().where(
            journals.c.entity_id == entity_id,
            journals.c.source_period == pd.Timestamp(source_period).date(),
        )  # fmt: skip
        with self.engine.connect() as conn:
            return set(conn.execute(q).scalars())

    def lines(self, external_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Journal lines, all of them or of ``external_ids``, by external id and line."""
        q = sa.select(journal_lines)
        order = ["external_id", "line_no"]
        return _read_in(self.engine, q, journal_lines.c.external_id, external_ids, order)

    def line_sources(self, external_ids: Iterable[str] | None = None) -> pd.DataFrame:
        q = sa.select(line_sources)
        order = ["external_id", "line_no"]
        return _read_in(self.engine, q, line_sources.c.external_id, external_ids, order)

    def posted_ids(self, external_ids: list[str]) -> set[str]:
        if not external_ids:
            return set()
        out: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(external_ids), 5000):
                chunk = external_ids[i : i + 5000]
                out.update(
                    conn.execute(
                        sa.select(journals.c.external_id).where(journals.c.external_id.in_(chunk))
                    ).scalars()
                )
        return out

    # -- writes --------------------------------------------------------------------------
    def post(
        self, headers: pd.DataFrame, lines: pd.DataFrame, conn=None, sources=None
    ) -> LedgerPostResult:
        """Post a batch of journals (headers with JOURNAL_COLS, lines with LINE_COLS, and the
        optional drill-down rows of summarized lines with SOURCE_COLS)."""
        if headers.empty:
            return LedgerPostResult([], [])
        headers = headers.assign(posted_at=headers.get("posted_at", datetime.now(UTC)))
        for col in ("memo", "transaction_date"):
            if col not in headers:
                headers[col] = None
        if conn is None:
            with self.engine.begin() as own:
                return self._post(own, headers, lines, sources)
        return self._post(conn, headers, lines, sources)

    def _post(self, conn, headers, lines, sources=None) -> LedgerPostResult:
        if conn.dialect.name == "postgresql":
            inserted = _post_postgres(conn, headers, lines)
        else:
            inserted = _post_generic(conn, headers, lines)
        if inserted and sources is not None and len(sources):
            mine = sources[sources["external_id"].isin(set(inserted))]
            if len(mine) and conn.dialect.name == "postgresql":
                insert_frame(conn, line_sources, mine[SOURCE_COLS])  # COPY
            elif len(mine):
                _insert_rows(conn, line_sources, mine, SOURCE_COLS)
        ids = list(headers["external_id"])
        new = set(inserted)
        return LedgerPostResult(
            inserted=[i for i in ids if i in new], already_posted=[i for i in ids if i not in new]
        )


def _read_in(engine, q, column, values, order: list[str], chunk: int = 5000) -> pd.DataFrame:
    """Rows of ``q`` (all, or those whose ``column`` is in ``values``, read in chunks of
    bound parameters), ordered by ``order``."""
    table = column.table
    ordered = q.order_by(*(table.c[c] for c in order))
    with engine.connect() as conn:
        if values is None:
            res = conn.execute(ordered)
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))
        wanted = sorted(set(values))
        rows = []
        for i in range(0, max(len(wanted), 1), chunk):
            res = conn.execute(ordered.where(column.in_(wanted[i : i + chunk])))
            rows.extend(res.fetchall())
            keys = list(res.keys())
    out = pd.DataFrame(rows, columns=keys)
    if len(wanted) > chunk:
        out = out.sort_values(order, kind="stable").reset_index(drop=True)
    return out


def _add_missing_indexes(engine: sa.Engine, table: sa.Table) -> None:
    """A ledger created before an index was declared gets it (idempotent)."""
    have = {i["name"] for i in sa.inspect(engine).get_indexes(table.name)}
    missing = [ix for ix in table.indexes if ix.name not in have]
    if missing:
        with engine.begin() as conn:
            for ix in missing:
                conn.execute(sa.schema.CreateIndex(ix, if_not_exists=True))


def add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """A table (the ledger's, the exception queue's) created before a nullable column was
    added gets it (idempotent)."""
    have = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    missing = [c for c in table.columns if c.name not in have]
    if missing:
        with engine.begin() as conn:
            for col in missing:
                ddl = col.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {ddl}'))


def _sqlite_values(s: pd.Series, column: sa.Column, dialect: sa.Dialect) -> list:
    """One column as the SQLite driver values SQLAlchemy's insert binds for it, so what is
    stored stays what ``conn.execute(insert, records)`` stored: a missing value as NULL,
    a date as ``YYYY-MM-DD`` (the wall date of a timestamp, as ``Timestamp.date()``), a
    datetime as its wall time ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLite's DATETIME format, time
    zone dropped), a boolean as 0/1, integers and text as given. Datetime64, integer and
    boolean columns are converted by numpy; any other column value by value, through the
    column type's own bind processor."""
    typ = column.type
    # extension dtypes (Int64, boolean, string: nulls as pd.NA) go value by value, as objects
    kind = s.dtype.kind if isinstance(s.dtype, np.dtype | pd.DatetimeTZDtype) else "O"
    if kind == "M" and isinstance(typ, sa.Date):
        return dates(s).tolist()
    if kind == "M" and isinstance(typ, sa.DateTime):
        wall = s.dt.tz_localize(None) if s.dt.tz is not None else s
        text = np.datetime_as_string(wall.to_numpy("datetime64[us]"), unit="us")
        return [None if t == "NaT" else t.replace("T", " ", 1) for t in text.tolist()]
    if kind == "b" and isinstance(typ, sa.Boolean):
        return s.to_numpy().astype(np.int64).tolist()
    if kind in "iu" and not isinstance(typ, sa.Boolean | sa.Date | sa.DateTime):
        return s.tolist()  # Python ints
    values = s.to_numpy(object, copy=True)
    values[pd.isna(values)] = None
    values = values.tolist()
    if isinstance(typ, sa.Date):
        values = [None if v is None else pd.Timestamp(v).date() for v in values]
    elif isinstance(typ, sa.DateTime):
        values = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in values]
    process = typ.dialect_impl(dialect).bind_processor(dialect)
    return values if process is None else [process(v) for v in values]


def _insert_rows(conn, table: sa.Table, df: pd.DataFrame, cols: list[str]) -> None:
    """``INSERT`` the rows of ``df[cols]`` into ``table`` on SQLite: one ``executemany`` of
    tuples built column-wise (:func:`_sqlite_values`)."""
    sql = sa.insert(table).compile(dialect=conn.dialect, column_keys=cols)
    values = {c: _sqlite_values(df[c], table.c[c], conn.dialect) for c in cols}
    conn.exec_driver_sql(sql.string, list(zip(*(values[c] for c in sql.positiontup))))


_STAGE = sa.Table(  # SQLite staging of journal headers (per connection)
    "stage_journals",
    sa.MetaData(),
    *[sa.Column(c.name, c.type) for c in journals.columns if c.name in JOURNAL_COLS],
    prefixes=["TEMPORARY"],
)


def _post_generic(conn, headers: pd.DataFrame, lines: pd.DataFrame) -> list[str]:
    """SQLite: the headers into a temporary staging table (one executemany), then
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` names the journals that were
    not there yet; only their lines are inserted (one transaction, as on PostgreSQL)."""
    _STAGE.create(conn, checkfirst=True)
    conn.execute(sa.delete(_STAGE))
    _insert_rows(conn, _STAGE, headers, JOURNAL_COLS)  # typed like the ledger
    cols = ", ".join(JOURNAL_COLS)
    inserted = [
        r[0]
        for r in conn.exec_driver_sql(
            f"INSERT INTO ledger_journals ({cols}) SELECT {cols} FROM stage_journals WHERE true "
            "ON CONFLICT (external_id) DO NOTHING RETURNING external_id"
        )
    ]
    conn.execute(sa.delete(_STAGE))
    if inserted:
        mine = lines[lines["external_id"].isin(set(inserted))]
        if len(mine):
            _insert_rows(conn, journal_lines, mine, LINE_COLS)
    return inserted


def _post_postgres(conn, headers: pd.DataFrame, lines: pd.DataFrame) -> list[str]:
    """COPY to staging, then INSERT ... SELECT ... ON CONFLICT DO NOTHING (one transaction)."""
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE IF NOT EXISTS stage_journals "
            "(LIKE ledger_journals INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE IF NOT EXISTS stage_journal_lines "
            "(LIKE ledger_journal_lines INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    h = headers.copy()
    for k in ("period", "source_period", "transaction_date"):
        h[k] = pd.to_datetime(h[k]).dt.date
    stamps = pd.to_datetime(h["posted_at"], utc=True).dt.tz_convert(None)
    h["posted_at"] = np.char.add(np.datetime_as_string(stamps.to_numpy("datetime64[us]")), "+00")
    h["correction"] = h["correction"].map({True: "t", False: "f"})
    copy_frame(conn, "stage_journals", h, JOURNAL_COLS)
    inserted = list(
        conn.execute(
            sa.text(
                f"INSERT INTO ledger_journals ({', '.join(JOURNAL_COLS)}) "
                f"SELECT {', '.join(JOURNAL_COLS)} FROM stage_journals "
                "ON CONFLICT (external_id) DO NOTHING RETURNING external_id"
            )
        ).scalars()
    )
    if inserted:
        keep = lines["external_id"].isin(set(inserted))
        mine = lines if keep.all() else lines[keep]
    else:
        mine = lines.iloc[:0]
    if len(mine):
        copy_frame(conn, "stage_journal_lines", mine, LINE_COLS)
        conn.execute(
            sa.text(
                f"INSERT INTO ledger_journal_lines ({', '.join(LINE_COLS)}) "
                f"SELECT {', '.join(LINE_COLS)} FROM stage_journal_lines "
                "ON CONFLICT (external_id, line_no) DO NOTHING"
            )
        )
    return inserted
