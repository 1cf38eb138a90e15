"""Modelling constants of the demo platform: plans, usage pricing, shares of the population
and the churn of a steady book."""

from __future__ import annotations

import numpy as np

TIERS = ("starter", "team", "business", "scale")
TIER_SHARE = (0.4, 0.3, 0.2, 0.1)
ANNUAL_MONTHS = 10  # an annual price is ten monthly prices
METRIC = "api_calls"
USAGE_TIER_UNITS = 1000  # the first 1000 units of a period cost 2 minor units each, then 1
USAGE_PRICE_1, USAGE_PRICE_2 = 2, 1

CHANGE_TYPES = np.array(["upgrade", "downgrade", "quantity_change"], dtype=object)
CN_REASONS = np.array(
    [None, "duplicate", "order_change", "product_unsatisfactory", "fraudulent"], dtype=object
)

# shares of the whole population (subscriptions, invoices, credit notes)
SHARE = {
    "foreign_currency": 0.10,
    "missing_erp_id": 0.03,
    "annual": 0.20,
    "metered": 0.15,
    "entity_change": 0.005,
    "change": 0.15,
    "cancel": 0.10,
    "renew": 0.03,
    "line_id_trap": 0.01,
    "void": 0.015,
    "uncollectible": 0.02,
    "overdue": 0.035,
    "credit_note": 0.04,
    "failed_attempt": 0.02,
    "void_credit_note": 0.02,
}

# A history longer than a year is a steady book: the subscriptions running when it starts (a
# share 1 / (1 + CHURN * months) of all, starting in its first month, annual ones spread over
# its first year) and new ones starting evenly through it, every subscription ending after a
# geometric number of months with this monthly hazard, so arrivals and churn balance.
STEADY_AFTER_MONTHS = 12
CHURN = 0.025


def tiered(quantity: np.ndarray) -> np.ndarray:
    """The usage amount of a period's summed quantity (graduated tiers)."""
    first = np.minimum(quantity, USAGE_TIER_UNITS)
    return USAGE_PRICE_1 * first + USAGE_PRICE_2 * (quantity - first)
