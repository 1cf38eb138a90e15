"""ERP accounting periods: open, closed or locked per legal entity.

A period missing from ``erp_periods`` is open. Closing or locking a period is an ERP-side
decision; ``python -m sync_core.erp.periods US01 2025-03 closed [--url URL]`` records it here
(default URL: ``$SYNC_LEDGER_URL``, else the warehouse's) so the posting plan routes journals by
the entity's policy (config/erp.yaml). ``billing-sync periods`` lists and sets the same, and
``billing-sync close`` / the ``period_close`` job close it together with the revenue close
(:mod:`sync_core.period_close_flow`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from sync_core.erp.queue import queue_metadata
from sync_core.settings import ledger_url

STATUSES = ("open", "closed", "locked")

erp_periods = sa.Table(
    "erp_periods",
    queue_metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    # run as ``python -m`` this file is ``__main__`` and, once anything imports
    # ``sync_core.erp.periods`` too, defines the table a second time on the shared metadata
    keep_existing=True,
)


def set_period_status(engine: sa.Engine, entity_id: str, period, status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"period status {status!r} is not one of {STATUSES}")
    queue_metadata.create_all(engine, tables=[erp_periods], checkfirst=True)
    p = _month(period)
    with engine.begin() as conn:
        conn.execute(
            sa.delete(erp_periods).where(
                erp_periods.c.entity_id == entity_id, erp_periods.c.period == p
            )
        )
        conn.execute(
            sa.insert(erp_periods).values(
                entity_id=entity_id, period=p, status=status, changed_at=datetime.now(UTC)
            )
        )


def closed_periods(engine: sa.Engine, entity_id: str) -> set[pd.Timestamp]:
    """Months (UTC month starts) that do not accept postings for the entity."""
    queue_metadata.create_all(engine, tables=[erp_periods], checkfirst=True)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(erp_periods.c.period).where(
                erp_periods.c.entity_id == entity_id, erp_periods.c.status != "open"
            )
        ).scalars()
        return {pd.Timestamp(p).tz_localize("UTC") for p in rows}


def period_status(engine: sa.Engine, entity_id: str, period) -> str:
    """``open``, ``closed`` or ``locked`` (a period not recorded is open)."""
    return period_table(engine, entity_id).get(_month(period), "open")


def period_table(engine: sa.Engine, entity_id: str | None = None) -> dict:
    """Recorded statuses, ``{month start date: status}`` of one entity, or
    ``{(entity, month start date): status}`` of every entity."""
    queue_metadata.create_all(engine, tables=[erp_periods], checkfirst=True)
    t = erp_periods
    q = sa.select(t.c.entity_id, t.c.period, t.c.status).order_by(t.c.entity_id, t.c.period)
    if entity_id is not None:
        q = q.where(t.c.entity_id == entity_id)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if entity_id is not None:
        return {_month(p): s for _, p, s in rows}
    return {(e, _month(p)): s for e, p, s in rows}


def _month(period):
    return pd.Timestamp(period).tz_localize(None).to_period("M").to_timestamp().date()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Set an ERP period's status")
    parser.add_argument("entity_id")
    parser.add_argument("period", help="YYYY-MM")
    parser.add_argument("status", choices=STATUSES)
    parser.add_argument("--url", default=None, help="ledger URL (default: $SYNC_LEDGER_URL, "
                        "else $SYNC_WAREHOUSE_URL, else .local/warehouse.sqlite)")  # fmt: skip
    args = parser.parse_args(argv)
    engine = sa.create_engine(args.url or ledger_url())
    set_period_status(engine, args.entity_id, f"{args.period}-01", args.status)
    print(f"{args.entity_id} {args.period}: {args.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
