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

from sync_core.revenue.allocation import FLOAT_EXACT, group_starts, largest_remainder
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
_CHUNK = 1 << 16  # (line, month) cells per block of the fused kernel
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


@dataclass(frozen=True)
class _Bounds:
    """Per-line service bounds in the line's unit and its months."""

    lo: np.ndarray  # start, in days (day, month methods) or milliseconds
    hi: np.ndarray  # end (excluded), same unit
    first_m: np.ndarray  # first month index
    counts: np.ndarray  # months per line
    totals: np.ndarray  # total weight per line
    unit: np.ndarray | None  # days -> line unit factor (milliseconds per day), if any ms line
    is_month: np.ndarray | None  # lines of the month method, if any
    m0: int  # first month of the table
    table: np.ndarray  # day index of month starts m0 .. last + 1


def _bounds(start_ns: np.ndarray, end_ns: np.ndarray, codes: np.ndarray) -> _Bounds:
    sd = start_ns // NS_PER_DAY
    ed = np.maximum(end_ns // NS_PER_DAY, sd + 1)
    to_month = _DayToMonth(int(sd.min()), int(ed.max()))
    first_m = to_month(sd)
    last_m = to_month(ed - 1)
    lo, hi, unit, is_month = sd, ed, None, None
    is_ms = codes == MILLISECOND
    if is_ms.any():
        s_ms = start_ns // NS_PER_MS
        e_ms = np.maximum(end_ns // NS_PER_MS, s_ms + 1)
        lo = np.where(is_ms, s_ms, sd)
        hi = np.where(is_ms, e_ms, ed)
        last_m = np.where(is_ms, to_month((e_ms - 1) // MS_PER_DAY), last_m)
        unit = np.where(is_ms, MS_PER_DAY, 1).astype(np.int64)
    counts = last_m - first_m + 1
    totals = hi - lo
    if (codes == MONTH).any():
        is_month = codes == MONTH
        counts = np.where(is_month, month_counts(start_ns, end_ns), counts)
        totals = np.where(is_month, counts, totals)
        last_m = first_m + counts - 1
    m0 = int(first_m.min())
    table = month_table(m0, int(last_m.max()))
    return _Bounds(lo, hi, first_m, counts, totals, unit, is_month, m0, table)


def ratable_weights(start_ns: np.ndarray, end_ns: np.ndarray, codes: np.ndarray) -> Weights:
    """Weights per (line, month) of ratable lines; ``end_ns > start_ns`` for every line."""
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    if len(start_ns) == 0:
        z = np.zeros(0, dtype=np.int64)
        return Weights(z, z, z, z)
    b = _bounds(start_ns, end_ns, np.asarray(codes))
    counts = b.counts
    starts = group_starts(counts)
    months = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(b.first_m - starts, counts)
    month_len = np.diff(b.table)
    weights = month_len[months - b.m0]
    if b.unit is not None:
        weights *= np.repeat(b.unit, counts)
    # the first and last month of each line are partial: clip them to the line's bounds
    for rows in (starts, starts + counts - 1):
        k = months[rows] - b.m0
        b0, b1 = b.table[k], b.table[k + 1]
        if b.unit is not None:
            b0, b1 = b0 * b.unit, b1 * b.unit
        weights[rows] = np.minimum(b.hi, b1) - np.maximum(b.lo, b0)
    if b.is_month is not None:
        weights[np.repeat(b.is_month, counts)] = 1
    return Weights(counts, months, weights, b.totals)


def expand_amounts(
    amounts: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fused kernel: (months per line, month index per row, recognized per row).

    Same result as ``largest_remainder(amounts, *ratable_weights(...))`` but computed per
    bucket of lines with the same number of months, as 2-D arrays: shares in exact float64
    (every product below 2**53), the extra units given to the rows whose (remainder, earlier
    month) key reaches the line's threshold, found with one row-wise sort.
    """
    amounts = np.asarray(amounts, dtype=np.int64)
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    n = len(amounts)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    b = _bounds(start_ns, end_ns, np.asarray(codes))
    counts = b.counts
    starts = group_starts(counts)
    out_m = np.empty(int(counts.sum()), dtype=np.int64)
    out_r = np.empty_like(out_m)
    a = np.abs(amounts)
    kmax = int(counts.max())
    pos_bits = 1 << max(int(kmax).bit_length(), 1)  # > any position, a power of two
    tot = np.maximum(b.totals, 1)
    fast = (a <= FLOAT_EXACT // tot) & (tot <= FLOAT_EXACT // pos_bits)
    slow = np.flatnonzero(~fast)
    if slow.size:
        _expand_generic(slow, amounts, start_ns, end_ns, codes, starts, counts, out_m, out_r)

    month_len = np.diff(b.table).astype(np.float64)
    small = counts.astype(np.int16) if kmax < 2**15 else counts
    order = np.argsort(small, kind="stable")
    if slow.size:
        order = order[fast[order]]
    sizes = np.bincount(counts[order], minlength=kmax + 1)
    edge = 0
    for k in np.flatnonzero(sizes):
        g = order[edge : edge + sizes[k]]
        edge += sizes[k]
        # chunks of about _CHUNK cells keep the temporaries in the CPU cache
        step = max(1, _CHUNK // int(k))
        for c in range(0, len(g), step):
            _expand_bucket(
                int(k), g[c : c + step], amounts, a, b, month_len, starts, pos_bits, out_m, out_r
            )
    return counts, out_m, out_r


def _expand_bucket(k, g, amounts, a, b, month_len, starts, pos_bits, out_m, out_r) -> None:
    """Lines ``g`` that all span ``k`` months, as (k, len(g)) arrays (month-major, so the
    inner loops run along the lines)."""
    ar = np.arange(k, dtype=np.int64)[:, None]
    rows = starts[g] + ar
    fm = b.first_m[g]
    rel = (fm - b.m0) + ar  # month relative to the table
    out_m[rows] = rel + b.m0
    if k == 1:
        out_r[rows[0]] = amounts[g]
        return
    lo, hi = b.lo[g], b.hi[g]
    first_end = b.table[fm - b.m0 + 1]
    last_start = b.table[fm - b.m0 + k - 1]
    w = month_len[rel]
    if b.unit is not None:
        u = b.unit[g]
        w *= u
        first_end, last_start = first_end * u, last_start * u
    w[0] = np.minimum(hi, first_end) - lo
    w[k - 1] = hi - np.maximum(lo, last_start)
    if b.is_month is not None:
        w[:, b.is_month[g]] = 1.0
    total = b.totals[g].astype(np.float64)
    ag = a[g]
    share = w
    share *= ag.astype(np.float64)  # exact: below 2**53
    q = share / total
    np.floor(q, out=q)
    rem = share
    rem -= q * total  # exact remainders
    short = ag - q.sum(axis=0).astype(np.int64)
    if k == 2:
        gets = short > 0
        second = rem[1] > rem[0]
        q[0] += gets & ~second
        q[1] += gets & second
    else:
        # distinct key per cell: larger remainder first, then earlier month
        key = rem
        key *= pos_bits
        key += pos_bits - 1 - ar
        srt = np.sort(key, axis=0)
        cut = srt[np.clip(k - short, 0, k - 1), np.arange(len(g))]
        cut[short <= 0] = np.inf
        q += key >= cut
    rec = q.astype(np.int64)
    neg = amounts[g] < 0
    if neg.any():
        rec[:, neg] *= -1
    out_r[rows] = rec


def _expand_generic(lines, amounts, start_ns, end_ns, codes, starts, counts, out_m, out_r):
    """Lines whose products could leave float64's exact range: integer arithmetic."""
    w = ratable_weights(start_ns[lines], end_ns[lines], np.asarray(codes)[lines])
    rec = largest_remainder(amounts[lines], w.counts, w.weights, w.totals)
    rows = np.repeat(starts[lines], w.counts) + (
        np.arange(len(rec), dtype=np.int64) - np.repeat(group_starts(w.counts), w.counts)
    )
    out_m[rows] = w.months
    out_r[rows] = rec


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
    counts, months, recognized = expand_amounts(amount, start_ns, end_ns, codes)
    keys = lines["line_key"].to_numpy()
    return pd.DataFrame(
        {
            "line_key": np.repeat(keys, counts),
            "period": months_to_timestamps(months).array,
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
