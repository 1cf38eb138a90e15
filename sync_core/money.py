"""Exact money: ISO 4217 currencies, minor units and largest-remainder allocation."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

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


class UnknownCurrency(ValueError):
    pass


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
