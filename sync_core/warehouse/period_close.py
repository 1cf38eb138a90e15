"""The revenue close of an entity: closed through a month, and reopened from one.

``python -m sync_core.warehouse.period_close US01 2025-06 [--by NAME]`` closes US01's revenue
through June 2025 (``revenue_period_close``; a close never moves backwards). After the close, a
change that lands in a closed month (a late credit note, late usage, a proration billed later)
is recognized in the first open month as a marked correction; the closed months of
``revenue_schedules`` are never rewritten. A reopen (``reopen_revenue``) moves the close back to
the month before, so the month is materialized again as it is now.

The operator flow (gates, ERP period and audit, ``billing-sync close`` / the ``period_close``
job) is :mod:`sync_core.period_close_flow`; this command sets the revenue close alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from sync_core.settings import warehouse_url
from sync_core.warehouse.schema import TABLES
from sync_core.warehouse.store import Warehouse


def month_start(period) -> pd.Timestamp:
    """The UTC month start of a ``YYYY-MM`` / ``YYYY-MM-01`` / timestamp."""
    ts = pd.Timestamp(f"{period}-01" if isinstance(period, str) and len(period) == 7 else period)
    return ts.tz_localize(None).to_period("M").to_timestamp().tz_localize("UTC")


def closed_through(wh: Warehouse, entity_id: str) -> pd.Timestamp | None:
    """The entity's last revenue-closed month (UTC month start), None when never closed."""
    return wh.closed_through().get(entity_id)


def close_revenue(wh: Warehouse, entity_id: str, period, closed_by: str | None) -> bool:
    """Close the entity's revenue through ``period``; False when it already was (idempotent:
    a close through a later month is kept, never moved back)."""
    current = closed_through(wh, entity_id)
    if current is not None and current >= month_start(period):
        return False
    wh.close_period(entity_id, month_start(period).tz_localize(None), closed_by)
    return True


def reopen_revenue(wh: Warehouse, entity_id: str, period, reopened_by: str | None) -> bool:
    """Reopen the entity's revenue from ``period`` on: closed through the month before. False
    when ``period`` was not closed (idempotent)."""
    month = month_start(period)
    current = closed_through(wh, entity_id)
    if current is None or current < month:
        return False
    t = TABLES["revenue_period_close"]
    before = (month - pd.DateOffset(months=1)).date()
    with wh.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.entity_id == entity_id)
            .values(closed_through=before, closed_at=datetime.now(UTC), closed_by=reopened_by)
        )
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entity_id")
    parser.add_argument("through", help="last closed month, YYYY-MM")
    parser.add_argument("--by", default=os.getenv("USER"), help="who closes (audit)")
    parser.add_argument(
        "--url",
        default=None,
        help="warehouse URL (default: $SYNC_WAREHOUSE_URL, else .local/warehouse.sqlite)",
    )
    args = parser.parse_args(argv)
    wh = Warehouse(args.url or warehouse_url())
    wh.close_period(args.entity_id, f"{args.through}-01", args.by)
    print(f"{args.entity_id} revenue closed through {args.through}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
