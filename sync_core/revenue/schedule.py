"""Line expansion: one amount over a service period -> recognized amount per calendar month.

The kernel works per (line, month), never per day: a line's weight in a month is the number of
days (or milliseconds) of its service period that fall in the month, computed from the period
bounds and a table of month starts. The amount is then split across the months by largest
remainder (floor shares, then one more unit to the largest remainders, ties to the earlier
month, a negative amount as the mirror of its absolute value: the rule of
:func:`sync_core.money.allocate`), so every line sums back exactly to its amount.

Two forms give the same result: :func:`ratable_weights` + :func:`largest_remainder` (plain
integer arithmetic, used by the engine, which needs the weights to spread credits), and the
fused :func:`expand_amounts` behind :func:`expand_lines` (about 0.15 s per million lines).

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
)

METHODS = ("day", "millisecond", "month")
_LINES_PER_BLOCK = 1 << 16  # lines per block of the fused kernel
_UTC = pd.DatetimeTZDtype(tz="UTC")
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


class _Calendar:
    """Month tables for the days in use: month starts, month lengths, day -> month."""

    def __init__(self, first_day: int, last_day: int):
        self.first_day = first_day
        self.m0 = int(days_to_months(np.array([first_day]))[0])
        m_last = int(days_to_months(np.array([last_day]))[0]) + 1  # month method may run over
        self.table = month_table(self.m0, m_last)  # day index of month starts m0 .. m_last + 1
        self.month_len = np.diff(self.table).astype(np.float64)
        span = last_day - first_day + 1
        self.day_month = (
            days_to_months(np.arange(first_day, last_day + 1)) if span < 4_000_000 else None
        )

    @classmethod
    def covering(cls, start_ns: np.ndarray, end_ns: np.ndarray) -> _Calendar:
        first = int(start_ns.min()) // NS_PER_DAY
        last = max(int(end_ns.max()) // NS_PER_DAY, first + 1)
        return cls(first, last)

    def month(self, days: np.ndarray) -> np.ndarray:
        if self.day_month is None:
            return days_to_months(days)
        return self.day_month[days - self.first_day]

    def month_start_ns(self) -> np.ndarray:
        return self.table * NS_PER_DAY

    def month_index(self) -> np.ndarray:
        return np.arange(self.m0, self.m0 + len(self.table), dtype=np.int64)


@dataclass(frozen=True)
class _Bounds:
    """Per-line service bounds in the line's unit, and its months."""

    lo: np.ndarray  # start, in days (day and month methods) or milliseconds
    hi: np.ndarray  # end (excluded), same unit
    rel0: np.ndarray  # first month, relative to the calendar's first month
    counts: np.ndarray  # months per line
    totals: np.ndarray  # total weight per line
    unit: np.ndarray | None  # days -> line unit (milliseconds per day), if any ms line
    is_month: np.ndarray | None  # lines of the month method, if any


def _bounds(start_ns: np.ndarray, end_ns: np.ndarray, codes: np.ndarray, cal: _Calendar):
    sd = start_ns // NS_PER_DAY
    ed = np.maximum(end_ns // NS_PER_DAY, sd + 1)
    first_m = cal.month(sd)
    last_m = cal.month(ed - 1)
    lo, hi, unit, is_month = sd, ed, None, None
    is_ms = codes == MILLISECOND
    if is_ms.any():
        s_ms = start_ns // NS_PER_MS
        e_ms = np.maximum(end_ns // NS_PER_MS, s_ms + 1)
        lo = np.where(is_ms, s_ms, sd)
        hi = np.where(is_ms, e_ms, ed)
        last_m = np.where(is_ms, cal.month((e_ms - 1) // MS_PER_DAY), last_m)
        unit = np.where(is_ms, MS_PER_DAY, 1).astype(np.int64)
    counts = last_m - first_m + 1
    totals = hi - lo
    if (codes == MONTH).any():
        is_month = codes == MONTH
        counts = np.where(is_month, month_counts(start_ns, end_ns), counts)
        totals = np.where(is_month, counts, totals)
    return _Bounds(lo, hi, first_m - cal.m0, counts, totals, unit, is_month)


def ratable_weights(start_ns: np.ndarray, end_ns: np.ndarray, codes: np.ndarray) -> Weights:
    """Weights per (line, month) of ratable lines; ``end_ns > start_ns`` for every line.

    The plain (integer) form of the kernel, used for the lines the fused kernel leaves out
    and by the engine to spread credits over a line's own months.
    """
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    if len(start_ns) == 0:
        z = np.zeros(0, dtype=np.int64)
        return Weights(z, z, z, z)
    cal = _Calendar.covering(start_ns, end_ns)
    b = _bounds(start_ns, end_ns, np.asarray(codes), cal)
    counts = b.counts
    starts = group_starts(counts)
    rel = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(b.rel0 - starts, counts)
    weights = np.diff(cal.table)[rel]
    if b.unit is not None:
        weights *= np.repeat(b.unit, counts)
    # the first and last month of each line are partial: clip them to the line's bounds
    for rows in (starts, starts + counts - 1):
        b0, b1 = cal.table[rel[rows]], cal.table[rel[rows] + 1]
        if b.unit is not None:
            b0, b1 = b0 * b.unit, b1 * b.unit
        weights[rows] = np.minimum(b.hi, b1) - np.maximum(b.lo, b0)
    if b.is_month is not None:
        weights[np.repeat(b.is_month, counts)] = 1
    return Weights(counts, rel + cal.m0, weights, b.totals)


def expand_amounts(
    amounts: np.ndarray,
    start_ns: np.ndarray,
    end_ns: np.ndarray,
    codes: np.ndarray,
    as_ns: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fused kernel: (months per line, month per row, recognized per row).

    Rows are contiguous per line in input order, months ascending; a month is its index
    (months since 1970-01), or with ``as_ns`` its first instant in ns since the epoch.
    Same result as ``largest_remainder(amounts, *ratable_weights(...))``.

    The lines go through in blocks small enough for every temporary to stay in the CPU
    cache. Shares are exact in float64 (every product stays below 2**53; the rare lines that
    could not go through the integer form). A line of one month takes its amount; of two
    months, the largest remainder rule is "round the first share half up, the second month
    takes the rest". Lines of more months are handled as (months, lines) arrays per number
    of months: floor shares, then one more unit to the cells whose key (remainder, then
    earlier month) reaches the line's cut, read off a column-wise sort.
    """
    amounts = np.asarray(amounts, dtype=np.int64)
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    codes = np.asarray(codes)
    n = len(amounts)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    cal = _Calendar.covering(start_ns, end_ns)
    blocks = [slice(i, min(i + _LINES_PER_BLOCK, n)) for i in range(0, n, _LINES_PER_BLOCK)]
    bounds = [_bounds(start_ns[s], end_ns[s], codes[s], cal) for s in blocks]
    counts = np.concatenate([b.counts for b in bounds])
    starts = group_starts(counts)
    n_rows = int(counts.sum())
    # one spare cell: the kernel writes every line's second row before its first rows
    out_m = np.empty(n_rows + 1, dtype=np.int64)
    out_r = np.empty_like(out_m)
    months_out = cal.month_start_ns() if as_ns else cal.month_index()
    for s, b in zip(blocks, bounds):
        slow = _expand_lines_block(b, amounts[s], starts[s], cal, months_out, out_m, out_r)
        if slow.size:
            lines = slow + s.start
            rows, months, rec = _expand_generic(lines, amounts, start_ns, end_ns, codes, starts)
            out_m[rows] = months_out[months - cal.m0]
            out_r[rows] = rec
    return counts, out_m[:n_rows], out_r[:n_rows]


def _expand_lines_block(b, amounts, starts, cal, months_out, out_m, out_r) -> np.ndarray:
    """Expand one block of lines into ``out_m``/``out_r``; return the lines left to the
    integer form (positions in the block)."""
    counts = b.counts
    kmax = int(counts.max())
    pos_bits = 1 << max(kmax.bit_length(), 1)  # > any position in a line, a power of two
    a_int = np.abs(amounts)
    a = a_int.astype(np.float64)
    tot = b.totals.astype(np.float64)
    # float64 is exact while amount * total (margin 8) and total * pos_bits stay below 2**52
    if float(a.max()) * float(tot.max()) < 2.0**50 and float(tot.max()) * pos_bits < 2.0**52:
        fast = None
    else:
        fast = (a * tot < 2.0**50) & (tot * pos_bits < 2.0**52)
        a = np.where(fast, a, 0.0)
    signed = bool(amounts.min() < 0)
    sign = np.sign(amounts) if signed else None

    # the first two rows of every line, as if it spanned at most two months: the largest
    # remainder rule for two months is "round the first share half up (a tie goes to the
    # earlier month), the second takes the rest"; for one month it gives the whole amount.
    # The second row is written first: a one-month line's is overwritten by the next line,
    # and lines of more months are overwritten by _expand_many.
    rel0 = b.rel0
    first_end = cal.table[rel0 + 1]
    if b.unit is not None:
        first_end = first_end * b.unit
    w0 = np.minimum(b.hi, first_end)
    w0 -= b.lo
    if b.is_month is not None:
        w0 = np.where(b.is_month, 1, w0)
    # floor(x / tot + 1/2) is exact here: x / tot is never within an ulp of a half-integer
    # it is not equal to, as x * tot < 2**50
    first = a * w0
    first /= tot
    first += 0.5
    first = np.floor(first, out=first).astype(np.int64)
    second = a_int - first
    if signed:
        first *= sign
        second *= sign
    out_r[starts + 1] = second
    out_m[starts + 1] = months_out[1:][rel0]
    out_r[starts] = first
    out_m[starts] = months_out[rel0]

    many = counts > 2
    if fast is not None:
        many &= fast
    many = np.flatnonzero(many)
    if many.size:
        k_many = counts[many]
        order = many[np.argsort(k_many, kind="stable")]
        sizes = np.bincount(counts[order])
        edge = 0
        for k in np.flatnonzero(sizes):
            g = order[edge : edge + sizes[k]]
            edge += sizes[k]
            _expand_many(int(k), g, b, sign, a, tot, starts, cal, months_out, pos_bits,
                         out_m, out_r)  # fmt: skip
    return np.zeros(0, dtype=np.int64) if fast is None else np.flatnonzero(~fast)


def _expand_many(k, g, b, sign, a, tot, starts, cal, months_out, pos_bits, out_m, out_r):
    """Lines ``g`` that all span ``k > 2`` months, as (k, len(g)) arrays (month-major, so
    the inner loops run along the lines)."""
    ar = np.arange(k, dtype=np.int64)[:, None]
    rows = starts[g] + ar
    rel0 = b.rel0[g]
    rel = rel0 + ar  # month relative to the calendar
    out_m[rows] = months_out[rel]
    lo, hi = b.lo[g], b.hi[g]
    first_end = cal.table[rel0 + 1]
    last_start = cal.table[rel0 + (k - 1)]
    w = cal.month_len[rel]
    if b.unit is not None:  # milliseconds per day for the millisecond lines
        u = b.unit[g]
        w *= u
        first_end, last_start = first_end * u, last_start * u
    w[0] = np.minimum(hi, first_end) - lo
    w[k - 1] = hi - np.maximum(lo, last_start)
    if b.is_month is not None:
        w[:, b.is_month[g]] = 1.0
    ag = a[g]
    total = tot[g]
    share = w
    share *= ag  # exact: below 2**53
    q = share / total
    np.floor(q, out=q)
    short = (ag - q.sum(axis=0)).astype(np.int64)
    # a distinct key per cell: remainder - position / pos_bits (larger remainder first,
    # then earlier month), exact as remainder * pos_bits < 2**52; the ``short`` cells of
    # largest key get one more unit
    key = share
    key -= q * total  # the remainder, exact
    key -= ar / pos_bits
    srt = np.sort(key, axis=0)
    cut = srt[np.clip(k - short, 0, k - 1), np.arange(len(g))]
    cut[short <= 0] = np.inf
    q += key >= cut
    if sign is not None:
        sg = sign[g]
        if (sg < 0).any():
            q *= sg
    out_r[rows] = q.astype(np.int64)  # exact integers


def _expand_generic(lines, amounts, start_ns, end_ns, codes, starts):
    """Lines whose products could leave float64's exact range, in integer arithmetic:
    (output rows, month indexes, recognized)."""
    w = ratable_weights(start_ns[lines], end_ns[lines], codes[lines])
    rec = largest_remainder(amounts[lines], w.counts, w.weights, w.totals)
    rows = np.repeat(starts[lines], w.counts) + _ranges(w.counts)
    return rows, w.months, rec


def _ranges(counts: np.ndarray) -> np.ndarray:
    """0..n-1 for each count, concatenated."""
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(group_starts(counts), counts)


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
    counts, month_ns, recognized = expand_amounts(amount, start_ns, end_ns, codes, as_ns=True)
    keys = lines["line_key"].to_numpy()
    return pd.DataFrame(
        {
            "line_key": np.repeat(keys, counts),
            # epoch nanoseconds are UTC instants: no copy
            "period": pd.Series(month_ns, dtype=_UTC, copy=False),
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
