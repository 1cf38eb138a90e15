"""Month arithmetic on int64 UTC instants.

Months are counted as integers since 1970-01 (``month index``), days since 1970-01-01 and
instants in nanoseconds since the epoch. Everything is vectorized over numpy arrays; the only
calendar conversion (days to months) goes through numpy's ``datetime64`` units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_MS = 1_000_000
MS_PER_DAY = 86_400_000
NS_PER_DAY = MS_PER_DAY * NS_PER_MS
SECONDS_PER_DAY = 86_400


def instants_ns(values) -> np.ndarray:
    """UTC instants (Series, Index, array or list; naive values are taken as UTC) as int64 ns.

    Missing values come back as ``iNaT`` (the minimum int64); callers check with ``is_nat``.
    """
    ts = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        pass  # instants already: the integer values are UTC whatever the zone
    elif ts.dtype.kind == "M":
        ts = ts.dt.tz_localize("UTC")
    else:
        ts = pd.to_datetime(ts, utc=True, errors="coerce")
    return ts.dt.as_unit("ns").array.asi8


def is_nat(ns: np.ndarray) -> np.ndarray:
    return ns == np.iinfo(np.int64).min


def days_to_months(days: np.ndarray) -> np.ndarray:
    """Month index of each day index."""
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_start_days(months: np.ndarray) -> np.ndarray:
    """Day index of the first day of each month index."""
    return np.asarray(months, dtype="datetime64[M]").astype("datetime64[D]").astype(np.int64)


def month_of_ns(ns: np.ndarray) -> np.ndarray:
    """Month index of each instant (floor division, so instants before 1970 work too)."""
    return days_to_months(np.asarray(ns, dtype=np.int64) // NS_PER_DAY)


def month_table(first: int, last: int) -> np.ndarray:
    """Day index of the start of months ``first .. last + 1`` (one more than the range)."""
    return month_start_days(np.arange(first, last + 2, dtype=np.int64))


def months_to_timestamps(months: np.ndarray) -> pd.Series:
    """Month indexes to month-start timestamps, ``datetime64[ns, UTC]``."""
    months = np.asarray(months, dtype=np.int64)
    if months.size == 0:
        return pd.Series(pd.DatetimeIndex([], tz="UTC"), dtype="datetime64[ns, UTC]")
    lo, hi = int(months.min()), int(months.max())
    table = month_start_days(np.arange(lo, hi + 1, dtype=np.int64)) * NS_PER_DAY
    ns = table[months - lo]
    return pd.Series(pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC"))


def timestamps_to_months(values) -> np.ndarray:
    """Month index of each timestamp (UTC)."""
    return month_of_ns(instants_ns(values))


def month_start(values) -> pd.Series:
    """The UTC month start of each timestamp, as ``datetime64[ns, UTC]``."""
    ts = pd.to_datetime(pd.Series(values, copy=False), utc=True)
    return months_to_timestamps(month_of_ns(ts.dt.as_unit("ns").array.asi8)).set_axis(ts.index)


def add_months(period: pd.Timestamp, n: int) -> pd.Timestamp:
    """``period`` (a month start) plus ``n`` months, UTC."""
    p = pd.Timestamp(period)
    p = p.tz_localize("UTC") if p.tzinfo is None else p.tz_convert("UTC")
    return (p.tz_localize(None).to_period("M") + n).to_timestamp().tz_localize("UTC")
