"""Versioned schema migrations, applied by the project (never by hand).

Each migration runs once, in its own transaction, and is recorded in ``schema_migrations``.
A new table or column is a new entry here; ``tests/test_warehouse.py`` checks that the
migrated database matches the table definitions in ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from sync_core.warehouse import totals
from sync_core.warehouse.schema import (
    DOCUMENT_TABLES,
    TABLES,
    TOTALS_TABLES,
    metadata,
    schema_migrations,
)

V2_TABLES = ["revenue_rollforward", "deferred_revenue_waterfall", "revenue_period_close"]


def _initial(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[t for n, t in TABLES.items() if n not in V2_TABLES])


def _reports_and_close(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[TABLES[n] for n in V2_TABLES], checkfirst=True)


def ensure_schema(conn: sa.Connection, tables: list[str]) -> None:
    """Create the named tables if missing and add the columns they lack (nullable, as
    defined in ``schema.py``). Idempotent: migration 1 creates the current definitions on a
    new database, so a later migration only finds work on an older one."""
    inspector = sa.inspect(conn)
    for name in tables:
        table = TABLES[name]
        if not inspector.has_table(name):
            table.create(conn)
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        for col in table.columns:
            if col.name not in have:
                ddl = col.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE "{name}" ADD COLUMN "{col.name}" {ddl}'))


def _proposals(conn: sa.Connection) -> None:
    ensure_schema(conn, ["accounting_lines", "proposed_journals", "erp_postings"])


def _disputes_and_uncollectible(conn: sa.Connection) -> None:
    """The ``disputes`` table and ``invoices.uncollectible_at`` (null: never marked) on a
    database created before them; only that column, so migration 4 still adds its own."""
    TABLES["disputes"].create(conn, checkfirst=True)
    if "uncollectible_at" not in {c["name"] for c in sa.inspect(conn).get_columns("invoices")}:
        ddl = TABLES["invoices"].c["uncollectible_at"].type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f'ALTER TABLE "invoices" ADD COLUMN "uncollectible_at" {ddl}'))


# version 4: columns added to canonical tables by contract 1.1 (column -> DDL after the type)
V4_COLUMNS = {
    ("invoices", "balance_applied"): "NOT NULL DEFAULT 0",  # nothing applied before
    ("credit_note_lines", "period_start"): "",  # null: not a prospective credit
    ("credit_note_lines", "period_end"): "",
}


def _balance_applied_and_credit_periods(conn: sa.Connection) -> None:
    """Add the contract 1.1 columns to a database created before them (a new database got
    them from migration 1, which creates the current definitions)."""
    inspector = sa.inspect(conn)
    for (table, column), extra in V4_COLUMNS.items():
        if column in {c["name"] for c in inspector.get_columns(table)}:
            continue
        ddl = TABLES[table].c[column].type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {ddl} {extra}'))


def _reconciliation(conn: sa.Connection) -> None:
    metadata.create_all(
        conn, tables=[TABLES["reconciliation"], TABLES["reconciliation_items"]], checkfirst=True
    )


def _document_store(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[TABLES[n] for n in DOCUMENT_TABLES], checkfirst=True)


def _partition_indexes(conn: sa.Connection) -> None:
    """An index on ``(entity_id, period)`` for every table that has both columns (what a
    partition read, delete and insert select by), named as ``schema.py`` declares it
    (``ix_<table>_partition``); ``CREATE INDEX IF NOT EXISTS``, so a database that has it
    already is left as it is. A table created by a later migration gets its index there."""
    inspector = sa.inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for name, table in TABLES.items():
        if not {"entity_id", "period"} <= set(table.c.keys()) or not inspector.has_table(name):
            continue
        conn.execute(
            sa.text(
                f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{name}_partition')} "
                f"ON {quote(name)} (entity_id, period)"
            )
        )


def _totals(conn: sa.Connection) -> None:
    """The subledger's monthly totals (``sync_core.warehouse.totals``), filled from the rows
    already there; a new database (migration 1 created the tables empty) has none to sum."""
    metadata.create_all(conn, tables=[TABLES[n] for n in TOTALS_TABLES], checkfirst=True)
    totals.rebuild(conn)


MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "initial canonical, derived and exception tables", _initial),
    (2, "revenue rollforward, waterfall and period close", _reports_and_close),
    (3, "disputes table, invoices.uncollectible_at", _disputes_and_uncollectible),
    (
        4,
        "invoices.balance_applied, credit_note_lines service period",
        _balance_applied_and_credit_periods,
    ),
    (5, "reconciliation drift per account and reconciling items", _reconciliation),
    (6, "accounting lines, proposed journals, held journal lines in erp_postings", _proposals),
    (7, "index on (entity_id, period) of every partitioned table", _partition_indexes),
    (8, "document store of incremental recognition", _document_store),
    (9, "monthly totals of accounting lines and revenue schedules", _totals),
]


def migrate(engine: sa.Engine) -> list[int]:
    """Bring the database to the latest schema version; return the versions applied."""
    schema_migrations.create(engine, checkfirst=True)
    applied: list[int] = []
    with engine.connect() as conn:
        done = set(conn.execute(sa.select(schema_migrations.c.version)).scalars())
    for version, description, step in MIGRATIONS:
        if version in done:
            continue
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # serialise concurrent migrators (several runs starting at once)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
                if conn.execute(
                    sa.select(schema_migrations.c.version).where(
                        schema_migrations.c.version == version
                    )
                ).first():
                    continue
            step(conn)
            conn.execute(
                schema_migrations.insert().values(
                    version=version, description=description, applied_at=datetime.now(UTC)
                )
            )
        applied.append(version)
    return applied


def current_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar() or 0
