"""Stripe pricing features -> the canonical contract terms, applied exactly or refused.

A subscription contract says ``unit_amount`` x ``quantity`` per interval
(``sync_core.contracts.models.SubscriptionContractModel``); an invoice line says its
``amount`` net of discounts. What Stripe prices can do beyond that is either expressed
exactly in those columns or refused with a :class:`PriceError` naming the field (the
normalizer quarantines it: ``stripe_unsupported``, or ``stripe_required_field`` for a missing
value), never approximated.

Subscription items (:func:`contract_terms`; the price, or a legacy plan: ``amount``,
``transform_usage``)
- ``per_unit``: ``unit_amount`` (or a whole ``unit_amount_decimal``) x ``quantity``.
- ``transform_quantity`` (``divide_by``, ``round`` up / down): Stripe bills
  ``ceil`` / ``floor(quantity / divide_by)`` packages at ``unit_amount`` each, so a licensed
  item is expressed exactly as that many packages: 2,500 units by 1,000 rounded up at 500 is
  quantity 3 x 500 = 1,500 (noted). A metered price is refused: usage events carry units, and
  the rounding applies to each period's total.
- ``tiers`` (``tiers_mode`` graduated or volume; a tier's ``flat_amount`` is billed once for
  the tier, whatever its units): a licensed item's interval amount is computed exactly
  (:func:`tiered_amount`) and expressed as ``amount / quantity`` per unit when that is a whole
  minor unit (noted), else refused; quantity 0 is expressible only without a first-tier flat
  amount. A metered tiered price keeps the contract's convention (its first tier's unit
  amount, quantity 0: usage lines carry the amounts) and is refused when a tier has a flat
  amount, which that convention cannot express. Stripe does not combine tiers with
  ``transform_quantity``: both at once are refused.

Invoice and credit note lines (:func:`line_credits`): the gross ``amount`` less its
discounts. ``pretax_credit_amounts`` (basil) of type ``discount`` are applied; when the line
also carries ``discount_amounts`` both must agree. A ``credit_balance_transaction`` (billing
credits from a credit grant) is refused: whether the credit was paid for or promotional is
not on the line, and the two are different revenue. Without ``pretax_credit_amounts``,
``discount_amounts`` (legacy) are applied; a line naming ``discounts`` without their amounts
is missing a field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


class PriceError(Exception):
    """A price or line the contract cannot take: ``field``, ``problem``, ``unsupported``
    (else a missing or unreadable value)."""

    def __init__(self, field: str, problem: str, unsupported: bool = True):
        self.field, self.problem, self.unsupported = field, problem, unsupported
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Terms:
    """What a subscription item's contract row says, and why when it differs from Stripe's
    literal ``unit_amount`` / ``quantity``."""

    unit_amount: int
    quantity: int
    note: str | None = None


def _whole(v: Any, name: str) -> int:
    """An integer amount or count (``12``, ``"12"``, ``"12.000"``); a fraction is refused."""
    if isinstance(v, bool) or v is None or v == "":
        raise PriceError(name, "required field is missing" if v in (None, "") else
                         f"expected an integer, got {v!r}", unsupported=False)  # fmt: skip
    if isinstance(v, int):
        return v
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise PriceError(name, f"expected an integer, got {v!r}", unsupported=False) from None
    if not d.is_finite():
        raise PriceError(name, f"expected an integer, got {v!r}", unsupported=False)
    if d != d.to_integral_value():
        raise PriceError(name, f"{v} is a fraction of the minor unit: cannot be expressed")
    return int(d)


def _amount(obj: Mapping, key: str, name: str, default: int | None = None) -> int | None:
    """``key`` or ``key_decimal`` of ``obj`` as a whole amount; ``default`` when neither."""
    if obj.get(key) is not None:
        return _whole(obj[key], f"{name}.{key}")
    if obj.get(f"{key}_decimal") not in (None, ""):
        return _whole(obj[f"{key}_decimal"], f"{name}.{key}_decimal")
    return default


def billed_packages(quantity: int, transform: Mapping, name: str) -> int:
    """``quantity / divide_by`` rounded as ``round`` says (Stripe's ``transform_quantity``)."""
    divide_by = _whole(transform.get("divide_by"), f"{name}.divide_by")
    if divide_by <= 0:
        raise PriceError(f"{name}.divide_by", f"not a positive integer: {divide_by}", False)
    how = transform.get("round")
    if how not in ("up", "down"):
        raise PriceError(f"{name}.round", f"expected 'up' or 'down', got {how!r}", False)
    packages, rest = divmod(quantity, divide_by)
    return packages + (1 if how == "up" and rest else 0)


def _tiers(tiers: Any, name: str) -> list[tuple[int | None, int, int]]:
    """[(up_to or None for the last, unit amount, flat amount)], checked ascending."""
    if not isinstance(tiers, list) or not tiers:
        raise PriceError(name, "missing (a tiered price needs its tiers)", unsupported=False)
    out, last = [], 0
    for i, t in enumerate(tiers):
        if not isinstance(t, Mapping):
            raise PriceError(f"{name}[{i}]", "not a tier", unsupported=False)
        up_to = t.get("up_to")
        up_to = None if up_to in (None, "inf") else _whole(up_to, f"{name}[{i}].up_to")
        if (up_to is None and i != len(tiers) - 1) or (up_to is not None and up_to <= last):
            raise PriceError(f"{name}[{i}].up_to", "tiers are not in ascending order", False)
        unit = _amount(t, "unit_amount", f"{name}[{i}]", 0)
        flat = _amount(t, "flat_amount", f"{name}[{i}]", 0)
        out.append((up_to, unit, flat))
        last = up_to or last
    return out


def tiered_amount(tiers: Any, mode: Any, quantity: int, name: str = "price.tiers") -> int:
    """What Stripe bills for ``quantity`` (> 0) units of a tiered price: graduated, each
    tier's units at its unit amount plus the flat amount of every tier reached; volume, all
    units at the unit amount of the tier ``quantity`` falls in, plus that tier's flat amount."""
    rows = _tiers(tiers, name)
    if quantity <= 0:
        raise PriceError("quantity", f"a tiered amount needs a positive quantity ({quantity})")
    if rows[-1][0] is not None and quantity > rows[-1][0]:
        raise PriceError(f"{name}[].up_to", f"quantity {quantity} is beyond the last tier", False)
    if mode == "volume":
        up_to, unit, flat = next(r for r in rows if r[0] is None or quantity <= r[0])
        return quantity * unit + flat
    if mode != "graduated":
        raise PriceError("price.tiers_mode", f"expected 'graduated' or 'volume', got {mode!r}")
    total, lower = 0, 0
    for up_to, unit, flat in rows:
        if quantity <= lower:
            break
        upper = quantity if up_to is None else min(quantity, up_to)
        total += (upper - lower) * unit + flat
        lower = upper
    return total


def contract_terms(
    price: Mapping | None, plan: Mapping | None, quantity: int, metered: bool
) -> Terms:
    """The contract's ``unit_amount`` and ``quantity`` for a subscription item (rules in the
    module docstring); ``quantity`` is the item's (0 for a metered item)."""
    if price is not None:
        src, p, unit_key, tf_key = price, "price", "unit_amount", "transform_quantity"
    else:
        src, p, unit_key, tf_key = plan or {}, "plan", "amount", "transform_usage"
    transform = src.get(tf_key)
    unit = _amount(src, unit_key, p)
    if src.get("billing_scheme") != "tiered" and not (src.get("tiers") and unit is None):
        if unit is None:
            raise PriceError(f"{p}.{unit_key}", "required field is missing", False)
        if not isinstance(transform, Mapping):
            return Terms(unit, quantity)
        if metered:
            raise PriceError(f"{p}.{tf_key}", "metered usage billed per package of "
                             f"{transform.get('divide_by')} units (rounded per period) cannot "
                             "be expressed as a unit amount")  # fmt: skip
        packages = billed_packages(quantity, transform, f"{p}.{tf_key}")
        return Terms(unit, packages, f"{p}.{tf_key}: {quantity} units billed as {packages} "
                     f"packages of {transform.get('divide_by')} (round {transform.get('round')})"
                     f" at {unit}")  # fmt: skip
    if isinstance(transform, Mapping):
        raise PriceError(f"{p}.{tf_key}", "combined with tiers (Stripe does not allow it)")
    mode, rows = src.get("tiers_mode"), _tiers(src.get("tiers"), f"{p}.tiers")
    if metered or quantity == 0:  # the first tier's unit amount, if nothing is flat
        flat = [i for i, r in enumerate(rows) if r[2] and (metered or i == 0)]
        if flat:
            what = "a metered price" if metered else "quantity 0"
            raise PriceError(f"{p}.tiers[{flat[0]}].flat_amount", f"a flat amount on {what} "
                             "cannot be expressed as a unit amount")  # fmt: skip
        return Terms(rows[0][1], quantity)
    total = tiered_amount(src.get("tiers"), mode, quantity, f"{p}.tiers")
    per_unit, rest = divmod(total, quantity)
    if rest:
        raise PriceError(f"{p}.tiers", f"{mode} tiers bill {total} for {quantity} units: not a "
                         "whole unit amount, unit_amount x quantity cannot express it")  # fmt: skip
    return Terms(per_unit, quantity, f"{p}.tiers: {mode} tiers bill {total} for {quantity} "
                 f"units, unit_amount {per_unit}")  # fmt: skip


def line_credits(ln: Mapping, *, single_discount: bool = False) -> int:
    """The discounts to subtract from a line's gross ``amount`` (rules in the module
    docstring). ``single_discount``: a credit note line's ``discount_amount`` counts when it
    has neither list."""
    pretax, discounts = ln.get("pretax_credit_amounts"), ln.get("discount_amounts")
    listed = None
    if isinstance(discounts, list):
        listed = sum(_whole(_get(d, "amount"), "discount_amounts[].amount") for d in discounts)
    if isinstance(pretax, list):
        applied = 0
        for c in pretax:
            kind = _get(c, "type")
            if kind == "credit_balance_transaction":
                raise PriceError("pretax_credit_amounts[].credit_balance_transaction",
                                 "billing credits applied before tax: paid or promotional "
                                 "credit is not on the line, cannot be expressed")  # fmt: skip
            if kind != "discount":
                raise PriceError("pretax_credit_amounts[].type", f"unknown type {kind!r}",
                                 unsupported=kind is not None)  # fmt: skip
            applied += _whole(_get(c, "amount"), "pretax_credit_amounts[].amount")
        if listed is not None and listed != applied:
            raise PriceError("discount_amounts", f"sum {listed} differs from the discounts in "
                             f"pretax_credit_amounts ({applied})")  # fmt: skip
        return applied
    if listed is not None:
        return listed
    if single_discount and ln.get("discount_amount") is not None:
        return _whole(ln["discount_amount"], "discount_amount")
    if isinstance(ln.get("discounts"), list) and ln["discounts"]:
        raise PriceError("discount_amounts", "the line names discounts but not their amounts",
                         unsupported=False)  # fmt: skip
    return 0


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


__all__ = [
    "PriceError",
    "Terms",
    "billed_packages",
    "contract_terms",
    "line_credits",
    "tiered_amount",
]
