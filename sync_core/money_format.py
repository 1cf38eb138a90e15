"""Amounts as a finance user reads them: ``USD 40,957.78`` from integer minor units.

Rules
- The input is integer minor units and an ISO 4217 code; the decimals are the currency's
  exponent (``sync_core.money.exponent``): USD 2, JPY 0, KWD 3, CLF 4.
- The string is built from integers only (``divmod`` by ``10**exponent``), never through a
  float, so 10**15 minor units print exactly.
- The currency code comes first, then the signed number: ``USD 40,957.78``, ``USD -1.00``,
  ``JPY 500``, ``KWD 1.234``, ``USD 0.00``. The code always leads so that a column of amounts
  sorts and filters by currency, and the number after it is one a spreadsheet reads as signed.
- Thousands are grouped with ``,``, the decimal mark is ``.``, whatever the locale.
- A float, a bool or an unknown currency is refused (``TypeError`` / ``UnknownCurrency``):
  an amount that is not already exact minor units has lost its exactness upstream.

:func:`plot_value` gives the same amount in major units as a float, only for the metadata
the Dagster UI plots over time; it is never used to build a string or a sum.
"""

from __future__ import annotations

import numbers

from sync_core.money import exponent, to_major


def _minor(minor) -> int:
    if isinstance(minor, bool) or not isinstance(minor, numbers.Integral):
        raise TypeError(f"an amount in minor units must be an integer, not {minor!r}")
    return int(minor)


def format_amount(minor: int, currency: str) -> str:
    """``minor`` units of ``currency`` as ``"<CUR> <signed amount>"``, e.g. ``USD -1.00``."""
    value = _minor(minor)
    e = exponent(currency)
    whole, fraction = divmod(abs(value), 10**e)
    sign = "-" if value < 0 else ""
    decimals = f".{fraction:0{e}d}" if e else ""
    return f"{currency} {sign}{whole:,}{decimals}"


def plot_value(minor: int, currency: str) -> float:
    """The amount in major units as a float, for plotting only (``4095778 USD`` -> 40957.78)."""
    return float(to_major(_minor(minor), currency))
