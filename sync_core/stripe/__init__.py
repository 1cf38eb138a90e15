"""Stripe connector: an API client (:mod:`.client`) and the normalizer into the canonical
contract (:mod:`.normalize`). No Dagster imports here; the assets wrap these."""

from sync_core.stripe.client import (
    DEFAULT_STRIPE_VERSION,
    StripeAPIError,
    StripeClient,
    StripeConnectionError,
    StripeError,
)

__all__ = [
    "DEFAULT_STRIPE_VERSION",
    "StripeAPIError",
    "StripeClient",
    "StripeConnectionError",
    "StripeError",
]
