"""Exact money: ISO 4217 currencies, minor units, bounds and largest-remainder allocation.

Bounds: one amount is at most ``MAX_AMOUNT`` (10**15) minor units in absolute value, i.e.
10 trillion of a two-decimal currency, four orders of magnitude above Stripe's largest charge
(12 digits, IDR) and the contract's limit on every money column. A sum of bounded amounts
still wraps int64 after about 9,200 of them, and pandas / numpy int64 sums wrap silently, so
a sum that ends in the ledger (a balance, a journal total) goes through :func:`checked_sum`
or :func:`checked_group_sum`, which are exact and raise :class:`AmountOverflow` naming what
overflowed instead of wrapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

# Active ISO 4217 codes (2024 list). Exponent 2 unless listed in _EXPONENTS.
_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split()
_EXPONENTS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
CURRENCIES: frozenset[str] = frozenset(_CODES)

MAX_AMOUNT = 10**15  # |one amount| in minor units (contract bound, engine pre-check)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_NEAR = 2.0**62  # a float64 sum this large may be near the int64 edge: sum exactly
_SLACK = 2.0**40  # float64 error on any sum of bounded int64 values is far below this


class UnknownCurrency(ValueError):
    pass


class AmountOverflow(OverflowError):
    """A sum of minor units that does not fit int64 (it would have wrapped)."""


def _exact(values: np.ndarray) -> int:
    return sum(int(v) for v in values.tolist())


def _overflow(what: str, total: int) -> AmountOverflow:
    return AmountOverflow(
        f"{what}: the sum {total} minor units does not fit a 64-bit integer "
        f"(limit {INT64_MAX}); it would have wrapped"
    )


def checked_sum(values, what: str) -> int:
    """The exact sum of integer minor units, or :class:`AmountOverflow` naming ``what``.

    int64 arrays are summed by numpy and cross-checked against a float64 sum: a wrapped sum
    differs by 2**64, a sum near the edge is recomputed exactly with Python integers. Object
    arrays (Python ints) are summed exactly.
    """
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind not in "iu":
        total = _exact(arr)
    else:
        fast = int(arr.sum(dtype=np.int64))
        approx = float(arr.sum(dtype=np.float64))
        near = abs(approx) >= _NEAR or abs(approx - fast) > _SLACK
        total = _exact(arr) if near else fast
    if not INT64_MIN <= total <= INT64_MAX:
        raise _overflow(what, total)
    return total


def checked_group_sum(
    frame: pd.DataFrame, by: str | Sequence[str], columns: str | Sequence[str], what: str
) -> pd.DataFrame:
    """``frame.groupby(by)[columns].sum()`` as int64, exact, or :class:`AmountOverflow`
    naming ``what``, the column and the group. Groups come out sorted, as pandas sorts them."""
    cols = [columns] if isinstance(columns, str) else list(columns)
    grouped = frame.groupby(by, sort=True, dropna=False)
    fast = grouped[cols].sum().astype(np.int64)
    codes = grouped.ngroup().to_numpy()
    for col in cols:
        weights = pd.to_numeric(frame[col]).to_numpy(dtype=np.float64, na_value=0.0)
        approx = np.bincount(codes, weights=weights, minlength=len(fast))
        f = fast[col].to_numpy(np.float64)
        for g in np.flatnonzero((np.abs(approx) >= _NEAR) | (np.abs(approx - f) > _SLACK)):
            exact = checked_sum(
                frame[col].to_numpy()[codes == g], f"{what} ({col}, {by}={fast.index[g]!r})"
            )
            fast.iloc[g, fast.columns.get_loc(col)] = exact
    return fast


def exponent(currency: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (USD 2, JPY 0, KWD 3)."""
    if currency not in CURRENCIES:
        raise UnknownCurrency(f"unknown ISO 4217 currency {currency!r}")
    return _EXPONENTS.get(currency, 2)


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """Major units (Decimal or str) to integer minor units, half-even."""
    q = Decimal(amount).scaleb(exponent(currency))
    return int(q.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-exponent(currency))


def format_money(minor: int, currency: str) -> str:
    e = exponent(currency)
    return f"{to_major(minor, currency):,.{e}f} {currency}"


def convert(minor: int, rate: Decimal | str, from_currency: str, to_currency: str) -> int:
    """Convert minor units with ``rate`` (units of ``to`` per unit of ``from``), half-even."""
    major = to_major(minor, from_currency) * Decimal(rate)
    return to_minor(major, to_currency)


def allocate(total: int, weights) -> np.ndarray:
    """Split integer ``total`` across non-negative ``weights`` by largest remainder.

    The parts sum exactly to ``total``; ties go to the earliest position, so the result is
    deterministic. A negative total is split as the mirror of its absolute value.
    """
    w = np.asarray(weights, dtype=np.int64)
    if w.size == 0:
        if total != 0:
            raise ValueError("cannot allocate a non-zero amount over no weights")
        return np.zeros(0, dtype=np.int64)
    if (w < 0).any():
        raise ValueError("allocation weights must be non-negative")
    wsum = int(w.sum())
    if wsum == 0:
        raise ValueError("allocation weights sum to zero")
    sign = -1 if total < 0 else 1
    t = abs(int(total))
    # exact integer arithmetic through Python ints when products could overflow int64
    if t and wsum and t > (2**62) // max(int(w.max()), 1):
        prods = [t * int(x) for x in w]
        base = np.array([p // wsum for p in prods], dtype=np.int64)
        rem = np.array([p % wsum for p in prods], dtype=object)
    else:
        prods = w * t
        base = prods // wsum
        rem = prods % wsum
    short = t - int(base.sum())
    if short:
        order = np.argsort(-np.asarray(rem, dtype=float), kind="stable")
        base[order[:short]] += 1
    return sign * base
