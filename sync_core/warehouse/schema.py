"""Table definitions, derived from the contract models so the two cannot drift apart.

Every partitioned table carries ``entity_id`` and ``period`` (DATE, first of the month) and an
index on them: a partition write deletes and inserts exactly those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from sync_core.contracts.derived import DERIVED_MODELS
from sync_core.contracts.models import MODELS
from sync_core.contracts.validate import EXCEPTION_COLUMNS

metadata = sa.MetaData()


def _sql_type(dtype: str):
    if dtype.startswith("datetime64"):
        return sa.DateTime(timezone=True)
    if dtype.startswith("int"):
        return sa.BigInteger()
    if dtype in ("bool", "boolean"):
        return sa.Boolean()
    if dtype.startswith("float"):
        return sa.Float()
    return sa.Text()


def _table_from_model(name: str, model) -> sa.Table:
    schema = model.to_schema()
    cols = []
    for col_name, col in schema.columns.items():
        typ = sa.Date() if col_name == "period" else _sql_type(str(col.dtype))
        cols.append(sa.Column(col_name, typ, nullable=bool(col.nullable)))
    table = sa.Table(name, metadata, *cols)
    if "period" in schema.columns:
        sa.Index(f"ix_{name}_partition", table.c.entity_id, table.c.period)
    return table


TABLES: dict[str, sa.Table] = {
    name: _table_from_model(name, model) for name, model in {**MODELS, **DERIVED_MODELS}.items()
}

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("entity_id", sa.Text, nullable=True),
    sa.Column("period", sa.Date, nullable=True),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("object_type", sa.Text, nullable=False),
    sa.Column("source_id", sa.Text, nullable=True),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_exceptions_partition", exceptions.c.entity_id, exceptions.c.period)
TABLES["exceptions"] = exceptions
assert [c for c in EXCEPTION_COLUMNS if c not in exceptions.c] == []

revenue_period_close = sa.Table(
    "revenue_period_close",
    metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("closed_through", sa.Date, nullable=False),  # last closed month
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_by", sa.Text, nullable=True),
)
TABLES["revenue_period_close"] = revenue_period_close


def _document_table(name: str, like: sa.Table) -> sa.Table:
    """A per-document copy of a derived table: its columns plus ``document_key``."""
    cols = [sa.Column(c.name, c.type, nullable=c.nullable) for c in like.columns]
    table = sa.Table(name, metadata, *cols, sa.Column("document_key", sa.Text, nullable=False))
    sa.Index(f"ix_{name}_partition", table.c.entity_id, table.c.period)
    sa.Index(f"ix_{name}_document", table.c.entity_id, table.c.document_key)
    return table


# Incremental recognition (sync_core/revenue/incremental.py): one index row per document,
# and the document's schedule rows, accounting lines and quarantined records.
document_index = sa.Table(
    "document_index",
    metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("document_key", sa.Text, primary_key=True),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("closed_through", sa.Date, nullable=True),  # revenue close it was recognized under
    sa.Column("last_period", sa.Date, nullable=True),  # its last schedule month
)
TABLES["document_index"] = document_index
TABLES["document_schedules"] = _document_table("document_schedules", TABLES["revenue_schedules"])
TABLES["document_lines"] = _document_table("document_lines", TABLES["accounting_lines"])
TABLES["document_quarantine"] = _document_table(
    "document_quarantine",
    sa.Table(
        "_quarantine_columns",
        sa.MetaData(),
        *[sa.Column(c.name, c.type, nullable=True) for c in exceptions.columns
          if c.name in EXCEPTION_COLUMNS],
    ),
)  # fmt: skip
DOCUMENT_TABLES = ["document_index", "document_schedules", "document_lines",
                   "document_quarantine"]  # fmt: skip


@dataclass(frozen=True)
class Totals:
    """Monthly totals of a derived table, kept in ``table`` with the partitions they sum
    (``sync_core.warehouse.totals``): ``amounts`` summed per ``by``; a row where one of the
    ``known`` amounts is NULL is summed apart (``known`` False, those sums NULL)."""

    source: str
    table: str
    by: tuple[str, ...]
    amounts: tuple[str, ...]
    known: tuple[str, ...] = ()


_MONEY = ("debit", "credit", "debit_functional", "credit_functional")
TOTALS = {
    t.source: t
    for t in (
        Totals("accounting_lines", "accounting_line_totals",
               ("entity_id", "period", "account", "currency", "functional_currency"), _MONEY,
               known=("debit_functional", "credit_functional")),
        Totals("revenue_schedules", "revenue_schedule_totals",
               ("entity_id", "period", "currency", "functional_currency"),
               tuple(f"{c}{suffix}" for c in ("recognized", "contra_revenue", "deferred_balance",
                                              "unbilled_balance") for suffix in ("", "_functional"))),
    )
}  # fmt: skip


def _totals_table(spec: Totals) -> sa.Table:
    source = TABLES[spec.source]
    cols = [sa.Column(c, source.c[c].type, nullable=source.c[c].nullable) for c in spec.by]
    if spec.known:
        cols.append(sa.Column("known", sa.Boolean, nullable=False))
    cols += [sa.Column(c, sa.BigInteger, nullable=True) for c in spec.amounts]
    table = sa.Table(spec.table, metadata, *cols)
    sa.Index(f"ix_{spec.table}_partition", table.c.entity_id, table.c.period)
    return table


for _spec in TOTALS.values():
    TABLES[_spec.table] = _totals_table(_spec)
TOTALS_TABLES = [spec.table for spec in TOTALS.values()]


schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)
