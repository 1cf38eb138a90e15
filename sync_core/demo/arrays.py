"""Vectorised helpers of the demo generator: epoch-second calendars, exact integer rounding,
seeded picks and draws, ids and ISO 8601 formatting (numpy only)."""

from __future__ import annotations

import functools

import numpy as np

HOUR = 3_600
DAY = 86_400
NULL_TS = np.iinfo(np.int64).min  # a null timestamp (NaT as datetime64)


def month_epoch(year: int, months: int = 0) -> int:
    """Epoch seconds of the first day of the month ``months`` after January of ``year``."""
    month = np.datetime64(f"{year:04d}-01", "M") + months
    return int(month.astype("datetime64[s]").astype(np.int64))


def add_months(ts: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Anchored month arithmetic on epoch seconds: same day of month and time of day, clamped
    to the month's last day (Jan 31 + 1 month = Feb 28, + 2 months = Mar 31), like Stripe."""
    days, tod = np.divmod(np.asarray(ts, dtype=np.int64), DAY)
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    m2 = m + np.asarray(months, dtype=np.int64)
    first = m2.astype("datetime64[D]")
    dim = ((m2 + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (first.astype(np.int64) + np.minimum(dom, dim - 1)) * DAY + tod


def month_index(ts: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of epoch seconds."""
    return (np.asarray(ts) // DAY).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def div_round(num, den) -> np.ndarray:
    """``num / den`` rounded half-even, exactly in integers (``den > 0``)."""
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    q, r = np.divmod(num, den)
    twice = 2 * r
    return q + ((twice > den) | ((twice == den) & (q % 2 == 1)))


def between(rng: np.random.Generator, lo, hi, size: int | None = None) -> np.ndarray:
    """Uniform integers in ``[lo, hi)`` elementwise; rows with ``hi <= lo`` get ``lo``."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    shape = np.broadcast_shapes(lo.shape, hi.shape) if size is None else (size,)
    span = np.maximum(hi - lo, 1)
    return lo + np.minimum((rng.random(shape) * span).astype(np.int64), span - 1)


def pick(
    rng: np.random.Generator, eligible: np.ndarray, share: float, total: int, minimum: int = 1
) -> np.ndarray:
    """Exactly ``max(minimum, round(share * total))`` eligible rows (fewer if not enough)."""
    idx = np.flatnonzero(eligible)
    k = min(idx.size, max(minimum, int(round(share * total))))
    out = np.zeros(eligible.shape[0], dtype=bool)
    out[rng.choice(idx, size=k, replace=False)] = True
    return out


def ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded ids; the width grows with the count so lexical order = numeric order."""
    width = max(width, len(str(int(numbers.max())))) if numbers.size else width
    return np.array([f"{prefix}{x:0{width}d}" for x in numbers.tolist()], dtype=object)


class Lazy:
    """A column computed when it is written, slice by slice: ``fn(rows)`` gives the values at
    the positions ``rows``. Keeps millions of id strings out of memory until their chunk."""

    def __init__(self, size: int, fn):
        self.size, self.fn = size, fn

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.size))
        return self.fn(np.atleast_1d(rows))

    def copy(self) -> Lazy:
        return self  # nothing to copy: the values are computed


def gather(values: np.ndarray, index: np.ndarray) -> Lazy:
    """``values[index]``, gathered when written."""
    return Lazy(index.size, lambda rows: values[index[rows]])


def id_width(count: int, width: int) -> int:
    """The width of ``ids`` numbered 1..``count``."""
    return max(width, len(str(count)))


def group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its run of equal (sorted) ``keys``."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(keys.size), 0))
    return np.arange(keys.size) - first


def draw(u: np.ndarray, group: np.ndarray, tables) -> np.ndarray:
    """Categorical draw from uniforms ``u`` with a (value, probability) table per group."""
    out = np.zeros(u.size, dtype=np.int64)
    for g, table in enumerate(tables):
        m = group == g
        values = np.array([v for v, _ in table])
        cum = np.cumsum([p for _, p in table])
        out[m] = values[np.minimum(np.searchsorted(cum, u[m], side="right"), values.size - 1)]
    return out


@functools.cache
def _time_of_day() -> np.ndarray:
    return np.array(
        [f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)],
        dtype=object,
    )


def iso(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds to ``YYYY-MM-DDTHH:MM:SSZ``; ``NULL_TS`` to an empty field."""
    out = np.full(ts.size, None, dtype=object)
    ok = ts != NULL_TS
    if ok.any():
        d, s = np.divmod(ts[ok], DAY)
        d0 = int(d.min())
        days = np.datetime_as_string(np.arange(d0, int(d.max()) + 1).astype("datetime64[D]"))
        out[ok] = days.astype(object)[d - d0] + _time_of_day()[s]
    return out


def decimal(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")
