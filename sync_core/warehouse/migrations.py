"""Versioned schema migrations, applied by the project (never by hand).

Each migration runs once, in its own transaction, and is recorded in ``schema_migrations``.
A new table or column is a new entry here; ``tests/test_warehouse.py`` checks that the
migrated database matches the table definitions in ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from sync_core.warehouse.schema import TABLES, metadata, schema_migrations

V2_TABLES = ["revenue_rollforward", "deferred_revenue_waterfall", "revenue_period_close"]


def _initial(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[t for n, t in TABLES.items() if n not in V2_TABLES])


def _reports_and_close(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[TABLES[n] for n in V2_TABLES], checkfirst=True)


MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "initial canonical, derived and exception tables", _initial),
    (2, "revenue rollforward, waterfall and period close", _reports_and_close),
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
