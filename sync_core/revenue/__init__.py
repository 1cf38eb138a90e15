"""Revenue recognition engine: pure functions on DataFrames (no Dagster).

- :func:`expand_lines`: the kernel, one amount over a service period -> amount per month.
- :func:`recognize`: canonical documents -> schedule, accounting lines, quarantine.
- :func:`apply_closed_periods`: changes to closed months -> corrections in the first open one.
- :func:`deferred_waterfall`, :func:`rollforward`: reports over a schedule.
"""

from sync_core.revenue.accounting import LINE_COLUMNS as ACCOUNTING_COLUMNS
from sync_core.revenue.balances import SCHEDULE_COLUMNS, SOURCE_TYPES
from sync_core.revenue.closing import apply_closed_periods
from sync_core.revenue.engine import RecognitionResult, recognize
from sync_core.revenue.reports import ROLLFORWARD_COLUMNS, deferred_waterfall, rollforward
from sync_core.revenue.schedule import METHODS, expand_lines

__all__ = [
    "ACCOUNTING_COLUMNS",
    "METHODS",
    "ROLLFORWARD_COLUMNS",
    "SCHEDULE_COLUMNS",
    "SOURCE_TYPES",
    "RecognitionResult",
    "apply_closed_periods",
    "deferred_waterfall",
    "expand_lines",
    "recognize",
    "rollforward",
]
