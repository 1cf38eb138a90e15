"""Line expansion: one amount over a service period -> recognized amount per calendar month.

The kernel works per (line, month), never per day: a line's weight in a month is the number of
days (or milliseconds) of its service period that fall in the month, computed from the period
bounds and a table of month starts. The amount is then split across the months by largest
remainder (:func:`sync_core.revenue.allocation.largest_remainder`), so every line sums back
exactly to its amount.

Methods (Stripe revenue settings):

- ``day`` (default): whole UTC days; the start day counts as a full day, the end day is
  excluded (``[floor(start), floor(end))`` in days; a period within one day is that day).
- ``millisecond``: the exact overlap of ``[start, end)`` with each month, in milliseconds.
- ``month``: equal parts per calendar month, starting with the start month, for
  ``round(month span)`` months (at least one); the span counts whole months plus the fractions
  of the start and end months, rounded half up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import group_starts, largest_remainder
from sync_core.revenue.periods import (
    MS_PER_DAY,
    NS_PER_DAY,
    NS_PER_MS,
    SECONDS_PER_DAY,
    days_to_months,
    instants_ns,
    is_nat,
    month_start_days,
    month_table,
    months_to_timestamps,
)

METHODS = ("day", "millisecond", "month")
DAY, MILLISECOND, MONTH = 0, 1, 2


@dataclass(frozen=True)
class Weights:
    """Per-line rows of (month, weight); rows are contiguous per line, months ascending."""

    counts: np.ndarray  # rows per line
    months: np.ndarray  # month index per row
    weights: np.ndarray  # int64 weight per row
    totals: np.ndarray  # sum of weights per line

    @property
    def row_line(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.counts), dtype=np.int64), self.counts)


def method_codes(method, n: int, index=None) -> np.ndarray:
    """Recognition method(s) as int8 codes; ``method`` is a name or a Series of names."""
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"unknown recognition method {method!r}; expected one of {METHODS}")
        return np.full(n, METHODS.index(method), dtype=np.int8)
    names = pd.Series(method, copy=False)
    if index is not None and isinstance(method, pd.Series):
        names = names.reindex(index)
    names = names.to_numpy(dtype=object)
    if len(names) != n:
        raise ValueError("method series does not match the lines")
    codes = np.full(n, -1, dtype=np.int8)
    for i, m in enumerate(METHODS):
        codes[names == m] = i
    if (codes < 0).any():
        bad = sorted({str(x) for x in names[codes < 0]})
        raise ValueError(f"unknown recognition method(s) {bad}; expected one of {METHODS}")
    return codes


def month_counts(start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Number of months of the ``month`` method: round half up of the month span, >= 1.

    span = whole months between the start and end months + the fraction of the end month
    elapsed at ``end`` - the fraction of the start month elapsed at ``start`` (to the second).
    """
    s_sec = start_ns // 10**9
    e_sec = end_ns // 10**9
    s_m = days_to_months(s_sec // SECONDS_PER_DAY)
    e_m = days_to_months(e_sec // SECONDS_PER_DAY)
    s_m0 = month_start_days(s_m) * SECONDS_PER_DAY
    e_m0 = month_start_days(e_m) * SECONDS_PER_DAY
    s_len = month_start_days(s_m + 1) * SECONDS_PER_DAY - s_m0
    e_len = month_start_days(e_m + 1) * SECONDS_PER_DAY - e_m0
    num = (e_sec - e_m0) * s_len - (s_sec - s_m0) * e_len  # fraction difference * den
    den = s_len * e_len
    whole = e_m - s_m
    n = whole + (2 * num >= den) - (2 * num < -den)
    return np.maximum(n, 1)


def ratable_weights(start_ns: np.ndarray, end_ns: np.ndarray, codes: np.ndarray) -> Weights:
    """Weights per (line, month) of ratable lines; ``end_ns > start_ns`` for every line."""
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    n_lines = len(start_ns)
    if n_lines == 0:
        z = np.zeros(0, dtype=np.int64)
        return Weights(z, z, z, z)
    sd = start_ns // NS_PER_DAY
    ed = np.maximum(end_ns // NS_PER_DAY, sd + 1)
    to_month = _DayToMonth(int(sd.min()), int(ed.max()))
    first_m = to_month(sd)
    is_ms = codes == MILLISECOND
    is_month = codes == MONTH
    any_ms, any_month = bool(is_ms.any()), bool(is_month.any())
    # bounds in the line's unit (days, or milliseconds for the millisecond method)
    lo, hi = sd, ed
    last_m = to_month(ed - 1)
    if any_ms:
        s_ms = start_ns // NS_PER_MS
        e_ms = np.maximum(end_ns // NS_PER_MS, s_ms + 1)
        lo = np.where(is_ms, s_ms, sd)
        hi = np.where(is_ms, e_ms, ed)
        last_m = np.where(is_ms, to_month((e_ms - 1) // MS_PER_DAY), last_m)
    if any_month:
        n_month = month_counts(start_ns[is_month], end_ns[is_month])
        last_m = last_m.copy()
        last_m[is_month] = first_m[is_month] + n_month - 1
    counts = last_m - first_m + 1
    starts = group_starts(counts)
    total_rows = int(counts.sum())

    months = np.arange(total_rows, dtype=np.int64) + np.repeat(first_m - starts, counts)
    m0 = int(first_m.min())
    table = month_table(m0, int(last_m.max()))  # day index of month starts
    month_len = np.diff(table)
    weights = month_len[months - m0]
    unit = None
    if any_ms:
        unit = np.where(is_ms, MS_PER_DAY, 1)
        weights *= np.repeat(unit, counts)
    # the first and last month of each line are partial: clip them to the line's bounds
    for rows in (starts, starts + counts - 1):
        k = months[rows] - m0
        b0, b1 = table[k], table[k + 1]
        if unit is not None:
            b0, b1 = b0 * unit, b1 * unit
        weights[rows] = np.minimum(hi, b1) - np.maximum(lo, b0)
    totals = hi - lo
    if any_month:
        weights[np.repeat(is_month, counts)] = 1
        totals = np.where(is_month, counts, totals)
    return Weights(counts, months, weights, totals)


class _DayToMonth:
    """Day index -> month index through a lookup table over the days in use."""

    def __init__(self, first_day: int, last_day: int):
        self.first = first_day
        span = last_day - first_day + 1
        self.table = days_to_months(np.arange(first_day, last_day + 1)) if span < 4e6 else None

    def __call__(self, days: np.ndarray) -> np.ndarray:
        if self.table is None:
            return days_to_months(days)
        return self.table[days - self.first]


def expand_lines(lines: pd.DataFrame, method: str | pd.Series = "day") -> pd.DataFrame:
    """Recognized amount per (line, month) for lines with ``line_key, amount, period_start,
    period_end``; ``method`` is one name for all lines or a Series (aligned on the lines'
    index) of names among ``day``, ``millisecond``, ``month``.

    Returns ``line_key, period, recognized`` (int64), lines in input order and months
    ascending; each line's rows sum exactly to its amount.
    """
    n = len(lines)
    amount = _integer_amounts(lines["amount"])
    start_ns = instants_ns(lines["period_start"])
    end_ns = instants_ns(lines["period_end"])
    bad = is_nat(start_ns) | is_nat(end_ns) | (end_ns <= start_ns)
    if bad.any():
        keys = lines["line_key"].to_numpy()[bad][:5].tolist()
        raise ValueError(f"service period missing, empty or reversed for lines {keys}")
    codes = method_codes(method, n, lines.index)
    w = ratable_weights(start_ns, end_ns, codes)
    recognized = largest_remainder(amount, w.counts, w.weights, w.totals)
    keys = lines["line_key"].to_numpy()
    return pd.DataFrame(
        {
            "line_key": np.repeat(keys, w.counts),
            "period": months_to_timestamps(w.months).array,
            "recognized": recognized,
        },
        copy=False,
    )


def _integer_amounts(values) -> np.ndarray:
    s = pd.Series(values, copy=False)
    if s.dtype.kind in "iu":
        return s.to_numpy(dtype=np.int64)
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(num) & (num == np.floor(num)) & (np.abs(num) < 2**53)
    if not ok.all():
        raise ValueError("amounts must be integers (minor units) without missing values")
    return num.astype(np.int64)
