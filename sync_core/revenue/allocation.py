"""Exact integer splits: grouped largest remainder and half-even currency conversion.

``largest_remainder`` splits one integer amount per group over the group's non-negative
integer weights so that the parts sum exactly to the amount. It is the vectorized twin of
:func:`sync_core.money.allocate`: same rule (floor shares, then one more unit to the largest
remainders, ties to the earliest row), same mirror for negative amounts, same results.
Products that could overflow int64 first have their weights divided by the group's gcd, and
fall back to exact Python integers only when they still could.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from sync_core.money import exponent

INT64_MAX = np.iinfo(np.int64).max
FLOAT_EXACT = 2**53 - 1


def group_starts(counts: np.ndarray) -> np.ndarray:
    """Offset of each group's first row, rows being contiguous per group."""
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def group_sums(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of each group's rows (groups with no rows sum to 0)."""
    out = np.zeros(len(counts), dtype=values.dtype)
    has = counts > 0
    if values.size and has.any():
        out[has] = np.add.reduceat(values, starts[has])
    return out


def largest_remainder(
    amounts: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    totals: np.ndarray | None = None,
) -> np.ndarray:
    """Split ``amounts[g]`` over the ``counts[g]`` contiguous rows of group ``g``.

    ``weights`` are int64 >= 0 per row and ``totals`` their sum per group (computed when not
    given). A group with a non-zero amount needs a positive total weight.
    """
    amounts = np.asarray(amounts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    starts = group_starts(counts)
    if totals is None:
        totals = group_sums(weights, starts, counts)
    totals = np.asarray(totals, dtype=np.int64)
    if weights.size and weights.min() < 0:
        raise ValueError("allocation weights must be non-negative")
    if ((totals <= 0) & (amounts != 0)).any():
        raise ValueError("cannot allocate a non-zero amount over zero weights")

    a = np.abs(amounts)
    safe_tot = np.maximum(totals, 1)
    if bool((a <= FLOAT_EXACT // safe_tot).all()):
        # every product amount * weight is below 2**53: float64 division is exact here
        # (the floor of a correctly rounded x / y is the integer floor for x < 2**53)
        base, rem = _shares_float(a, counts, weights, safe_tot)
        unsafe = None
    else:
        unsafe = a > INT64_MAX // safe_tot
        if unsafe.any():
            weights, totals, unsafe = _reduce_by_gcd(weights, totals, unsafe, a, starts, counts)
            safe_tot = np.maximum(totals, 1)
        a_calc = np.where(unsafe, 0, a) if unsafe.any() else a
        prod = np.repeat(a_calc, counts) * weights
        base, rem = np.divmod(prod, np.repeat(safe_tot, counts))
        a = a_calc
    short = a - group_sums(base, starts, counts)
    _give_remainders(base, rem, short, starts, counts)
    if unsafe is not None and unsafe.any():
        _exact_python(
            base, np.abs(amounts), weights, totals, starts, counts, np.flatnonzero(unsafe)
        )
    neg = amounts < 0
    if neg.any():
        np.negative(base, out=base, where=np.repeat(neg, counts))
    return base


def _shares_float(a, counts, weights, totals):
    """Floor shares and remainders of ``a * w / total`` with exact float64 arithmetic."""
    prod = np.repeat(a.astype(np.float64), counts)
    prod *= weights
    tot = np.repeat(totals.astype(np.float64), counts)
    q = prod / tot
    np.floor(q, out=q)
    tot *= q
    prod -= tot  # remainder, exact
    return q.astype(np.int64), prod


def _give_remainders(base, rem, short, starts, counts) -> None:
    """Add one unit to the ``short[g]`` rows of largest remainder (ties: earliest row)."""
    todo = np.flatnonzero(short > 0)
    if todo.size == 0:
        return
    n = counts[todo]
    # two rows: the +1 goes to the first unless the second has the strictly larger remainder
    two = todo[n == 2]
    if two.size:
        s = starts[two]
        second = rem[s + 1] > rem[s]
        base[s + second] += 1
    many = todo[n > 2]
    if many.size == 0:
        return
    n_many = counts[many]
    for size in np.unique(n_many):
        g = many[n_many == size]
        idx = starts[g][:, None] + np.arange(size, dtype=np.int64)
        order = np.argsort(-rem[idx], axis=1, kind="stable")
        take = np.arange(size)[None, :] < short[g][:, None]
        rows = np.take_along_axis(idx, order, axis=1)[take]
        base[rows] += 1


def _reduce_by_gcd(weights, totals, unsafe, a, starts, counts):
    """Divide the weights of overflowing groups by their gcd; say which still overflow."""
    weights = weights.copy()
    totals = totals.copy()
    groups = np.flatnonzero(unsafe & (counts > 0))
    sub_counts = counts[groups]
    rows = np.repeat(starts[groups], sub_counts) + _ranges(sub_counts)
    g = np.gcd.reduceat(weights[rows], group_starts(sub_counts))
    g = np.maximum(g, 1)
    weights[rows] //= np.repeat(g, sub_counts)
    totals[groups] //= g
    still = a > INT64_MAX // np.maximum(totals, 1)
    return weights, totals, still


def _exact_python(base, a, weights, totals, starts, counts, groups) -> None:
    """Exact allocation with Python integers for the few groups that overflow int64."""
    for gi in groups:
        s, n = int(starts[gi]), int(counts[gi])
        t, tot = int(a[gi]), int(totals[gi])
        prods = [t * int(w) for w in weights[s : s + n]]
        parts = [p // tot for p in prods]
        rems = [p % tot for p in prods]
        short = t - sum(parts)
        for j in sorted(range(n), key=lambda j: (-rems[j], j))[:short]:
            parts[j] += 1
        base[s : s + n] = parts


def _ranges(counts: np.ndarray) -> np.ndarray:
    """0..n-1 for each count, concatenated."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(group_starts(counts), counts)


# ---------------------------------------------------------------------------------------------
# currency conversion


def rate_fraction(rate: str | Decimal) -> tuple[int, int]:
    """An exchange rate as an exact (numerator, denominator) pair."""
    d = Decimal(str(rate))
    if not d.is_finite() or d <= 0:
        raise ValueError(f"exchange rate must be a positive number, got {rate!r}")
    return d.as_integer_ratio()


def conversion_terms(rates, from_currencies, to_currencies) -> tuple[np.ndarray, np.ndarray]:
    """Per row (numerator, denominator) so that functional = minor * num / den, half-even.

    The terms fold in the exponent difference of the two currencies. Rates are parsed once
    per distinct (rate, from, to) triple.
    """
    keys = pd.Series(
        [f"{r}|{f}|{t}" for r, f, t in zip(rates, from_currencies, to_currencies)], dtype=object
    )
    codes, uniques = pd.factorize(keys)
    k_num = np.empty(len(uniques), dtype=np.int64)
    k_den = np.empty(len(uniques), dtype=np.int64)
    for i, key in enumerate(uniques):
        rate, cur_from, cur_to = key.split("|")
        n, d = rate_fraction(rate)
        shift = exponent(cur_to) - exponent(cur_from)
        if shift >= 0:
            n *= 10**shift
        else:
            d *= 10 ** (-shift)
        if n > INT64_MAX or d > INT64_MAX:
            raise ValueError(f"exchange rate {rate!r} has too many digits")
        k_num[i], k_den[i] = n, d
    return k_num[codes], k_den[codes]


def convert_half_even(minor: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``minor * num / den`` rounded half-even, exactly, per row."""
    minor = np.asarray(minor, dtype=np.int64)
    num = np.broadcast_to(np.asarray(num, dtype=np.int64), minor.shape)
    den = np.broadcast_to(np.asarray(den, dtype=np.int64), minor.shape)
    big = np.abs(minor) > INT64_MAX // np.maximum(num, 1) // 2
    m = np.where(big, 0, minor)
    q, r = np.divmod(m * num, den)  # floor division: 0 <= r < den
    twice = 2 * r
    q += (twice > den) | ((twice == den) & (q % 2 == 1))
    if big.any():
        for i in np.flatnonzero(big):
            q[i] = _half_even_int(int(minor[i]) * int(num[i]), int(den[i]))
    return q


def _half_even_int(n: int, d: int) -> int:
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q % 2 == 1):
        q += 1
    return q


def fix_group_totals(
    parts: np.ndarray,
    minor: np.ndarray,
    num: np.ndarray,
    den: np.ndarray,
    targets: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Nudge rounded ``parts`` by single units so each group sums to its target.

    ``minor * num / den`` is the unrounded value of each part; a group short of its target gives
    +1 to the parts rounded down the most, one over it takes 1 from the parts rounded up the
    most (ties: earliest row).
    """
    parts = parts.copy()
    starts = group_starts(counts)
    diff = targets - group_sums(parts, starts, counts)
    todo = np.flatnonzero(diff != 0)
    if todo.size == 0:
        return parts
    row_group = np.repeat(np.arange(len(counts)), counts)
    sel = np.isin(row_group, todo)
    rows = np.flatnonzero(sel)
    g = row_group[rows]
    # residual in [-1/2, 1/2]: how far the exact value lies above the rounded one
    resid = minor[rows] * (num[rows] / den[rows]) - parts[rows]
    sign = np.sign(diff[g])
    order = np.lexsort((rows, -(resid * sign), g))
    rows, g = rows[order], g[order]
    first = np.searchsorted(g, g, side="left")
    rank = np.arange(len(rows)) - first
    n_fix = np.abs(diff[g])
    hit = rank < n_fix
    parts[rows[hit]] += sign[hit].astype(np.int64)
    if (n_fix > counts[g]).any():  # cannot happen with per-row half-even rounding
        raise AssertionError("functional rounding drifted by more than one unit per row")
    return parts
