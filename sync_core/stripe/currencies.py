"""Stripe's minor units -> ISO 4217 minor units, at the normalizer boundary.

The canonical contract holds every amount in ISO 4217 minor units (``sync_core.money``).
Stripe's API writes amounts in *Stripe's* minor unit of the currency, which is ISO 4217's
except for the cases below (docs.stripe.com/currencies, sections "Zero-decimal currencies",
"Three-decimal currencies" and "Special cases"):

- Stripe's default is two decimals (USD ``1000`` = 10.00 USD).
- Zero-decimal in Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF. All are
  zero-decimal in ISO too except **MGA** (ISO: two decimals), so a Stripe MGA amount ``500``
  (500 MGA) is canonical ``50000``.
- Three-decimal in Stripe (BHD JOD KWD OMR TND) = ISO. (Stripe asks that the last digit of a
  payment amount be 0; that is a rule for writing, not a conversion.)
- **ISK** "becomes a zero-decimal currency" (0:00 UTC, 2023-04-14), but "to maintain backwards
  compatibility, you must pass in amounts with two decimals": Stripe ``500`` = 5 ISK, and "the
  amount value must be evenly divisible by 100". ISO ISK has no decimals: divide by 100.
- **UGX**: the same rule ("was a decimal-based currency, but is now effectively a zero-decimal
  currency ... pass in amounts with two decimals ... evenly divisible by 100"). Stripe also
  lists UGX among its zero-decimal currencies; the special case, with its example (5 UGX =
  ``500``), is the rule applied here. ISO UGX has no decimals: divide by 100.
- **HUF, TWD**: "Stripe treats HUF [TWD] as a zero-decimal currency for payouts, even though
  you can charge two-decimal amounts": charges, invoices, credit notes and refunds are
  two-decimal (= ISO, unchanged); a *payout* amount must be a multiple of 100
  (``payout=True``).

An amount that cannot be converted exactly (ISK or UGX not a multiple of 100, a HUF / TWD
payout not a multiple of 100) raises :class:`InexactAmount` naming the field; the normalizer
quarantines the record under rule ``stripe_minor_units``. Nothing is rounded. A currency that
is not ISO 4217 passes through unchanged: the contract validation rejects its code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sync_core.money import CURRENCIES, exponent

RULE_MINOR_UNITS = "stripe_minor_units"

STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split()
)
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


@dataclass(frozen=True)
class StripeUnits:
    """How Stripe's API writes one currency."""

    exponent: int  # digits of Stripe's API minor unit
    charge_multiple: int = 1  # an amount on a charge / invoice is a multiple of this
    payout_multiple: int = 1  # an amount on a payout is a multiple of this


_SPECIAL = {
    "ISK": StripeUnits(2, charge_multiple=100, payout_multiple=100),
    "UGX": StripeUnits(2, charge_multiple=100, payout_multiple=100),
    "HUF": StripeUnits(2, payout_multiple=100),
    "TWD": StripeUnits(2, payout_multiple=100),
}

# canonical money columns of each object the Stripe normalizer produces
MONEY_FIELDS: dict[str, tuple[str, ...]] = {
    "subscription_contracts": ("unit_amount",),
    "invoices": ("subtotal", "tax", "total", "balance_applied"),
    "invoice_lines": ("amount", "tax_amount"),
    "credit_notes": (
        "subtotal",
        "tax",
        "total",
        "refund_amount",
        "credit_balance_amount",
        "out_of_band_amount",
    ),
    "credit_note_lines": ("amount", "tax_amount"),
    "payments": ("amount",),
    "disputes": ("amount", "fee"),
}


class InexactAmount(ValueError):
    """A Stripe amount with no exact ISO 4217 equivalent (or off Stripe's own step)."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


def stripe_units(currency: str) -> StripeUnits:
    """Stripe's API minor unit for ``currency`` (upper-case ISO code)."""
    if currency in _SPECIAL:
        return _SPECIAL[currency]
    if currency in STRIPE_ZERO_DECIMAL:
        return StripeUnits(0)
    if currency in STRIPE_THREE_DECIMAL:
        return StripeUnits(3)
    return StripeUnits(2)


def to_iso(amount: int, currency: str, field: str = "amount", *, payout: bool = False) -> int:
    """A Stripe API amount -> ISO 4217 minor units, exactly, or :class:`InexactAmount`."""
    if currency not in CURRENCIES:
        return amount
    units = stripe_units(currency)
    step = units.payout_multiple if payout else units.charge_multiple
    what = "payout" if payout else "amount"
    if amount % step:
        raise InexactAmount(
            field,
            f"Stripe {currency} {what} {amount} is not a multiple of {step} (Stripe writes "
            f"{currency} with {units.exponent} decimals and no fraction of a unit); not rounded",
        )
    shift = exponent(currency) - units.exponent
    if shift >= 0:
        return amount * 10**shift
    scale = 10**-shift
    if amount % scale:
        raise InexactAmount(
            field,
            f"Stripe {currency} amount {amount} has a fraction below ISO 4217's minor unit "
            f"({exponent(currency)} decimals); not rounded",
        )
    return amount // scale


def to_stripe(minor: int, currency: str) -> int:
    """ISO 4217 minor units -> a Stripe API amount (the inverse of :func:`to_iso`)."""
    if currency not in CURRENCIES:
        return minor
    shift = stripe_units(currency).exponent - exponent(currency)
    if shift >= 0:
        return minor * 10**shift
    scale = 10**-shift
    if minor % scale:
        raise InexactAmount(
            "amount", f"{minor} {currency} minor units cannot be written in Stripe's unit"
        )
    return minor // scale


def iso_row(object_name: str, row: Mapping) -> dict:
    """A canonical row read from Stripe with its money columns in ISO 4217 minor units.

    Every column of ``MONEY_FIELDS[object_name]`` present and not null is converted with the
    row's ``currency``; the first one that is inexact raises :class:`InexactAmount`.
    """
    out = dict(row)
    currency = out.get("currency")
    for col in MONEY_FIELDS.get(object_name, ()):
        if out.get(col) is not None and isinstance(currency, str):
            out[col] = to_iso(int(out[col]), currency, col)
    return out


__all__ = [
    "MONEY_FIELDS",
    "RULE_MINOR_UNITS",
    "STRIPE_THREE_DECIMAL",
    "STRIPE_ZERO_DECIMAL",
    "InexactAmount",
    "StripeUnits",
    "iso_row",
    "stripe_units",
    "to_iso",
    "to_stripe",
]
