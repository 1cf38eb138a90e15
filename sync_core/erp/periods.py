"""ERP accounting periods: open, closed or locked per legal entity.

A period missing from ``erp_periods`` is open. Closing or locking a period is an ERP-side
decision; ``python -m sync_core.erp.periods US01 2025-03 closed --url URL`` records it here so
the posting plan routes journals by the entity's policy (config/erp.yaml).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from sync_core.erp.queue import queue_metadata

STATUSES = ("open", "closed", "locked")

erp_periods = sa.Table(
    "erp_periods",
    queue_metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)


def set_period_status(engine: sa.Engine, entity_id: str, period, status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"period status {status!r} is not one of {STATUSES}")
    queue_metadata.create_all(engine, tables=[erp_periods], checkfirst=True)
    p = pd.Timestamp(period).to_period("M").to_timestamp().date()
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Set an ERP period's status")
    parser.add_argument("entity_id")
    parser.add_argument("period", help="YYYY-MM")
    parser.add_argument("status", choices=STATUSES)
    parser.add_argument(
        "--url", default=os.getenv("SYNC_LEDGER_URL") or os.getenv("SYNC_WAREHOUSE_URL")
    )
    args = parser.parse_args(argv)
    if not args.url:
        from sync_assets.definitions import SETTINGS

        args.url = SETTINGS["SYNC_WAREHOUSE_URL"]
    set_period_status(sa.create_engine(args.url), args.entity_id, f"{args.period}-01", args.status)
    print(f"{args.entity_id} {args.period}: {args.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
