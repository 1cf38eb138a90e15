"""Close an entity's revenue through a month:
``python -m sync_core.warehouse.period_close US01 2025-06 [--by NAME]``.

After the close, a change that lands in a closed month (a late credit note, late usage, a
proration billed later) is recognized in the first open month as a marked correction; the
closed months of ``revenue_schedules`` are never rewritten.
"""

import argparse
import os
import sys

from sync_core.warehouse.store import Warehouse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entity_id")
    parser.add_argument("through", help="last closed month, YYYY-MM")
    parser.add_argument("--by", default=os.getenv("USER"), help="who closes (audit)")
    parser.add_argument(
        "--url",
        default=os.getenv("SYNC_WAREHOUSE_URL"),
        help="warehouse URL (default: $SYNC_WAREHOUSE_URL)",
    )
    args = parser.parse_args(argv)
    if not args.url:
        from sync_assets.definitions import SETTINGS

        args.url = SETTINGS["SYNC_WAREHOUSE_URL"]
    wh = Warehouse(args.url)
    wh.close_period(args.entity_id, f"{args.through}-01", args.by)
    print(f"{args.entity_id} revenue closed through {args.through}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
