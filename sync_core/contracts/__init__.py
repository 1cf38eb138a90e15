"""Canonical data contract: one pandera DataFrameModel per object (see docs/data-contract.md)."""

from sync_core.contracts.models import (
    CONTRACT_VERSION,
    MODELS,
    CreditNoteLineModel,
    CreditNoteModel,
    CustomerModel,
    InvoiceLineModel,
    InvoiceModel,
    LegalEntityModel,
    PaymentModel,
    SubscriptionContractModel,
    UsageDailyModel,
    UsageEventModel,
)
from sync_core.contracts.validate import Quarantine, split_valid

__all__ = [
    "CONTRACT_VERSION",
    "MODELS",
    "CreditNoteLineModel",
    "CreditNoteModel",
    "CustomerModel",
    "InvoiceLineModel",
    "InvoiceModel",
    "LegalEntityModel",
    "PaymentModel",
    "Quarantine",
    "SubscriptionContractModel",
    "UsageDailyModel",
    "UsageEventModel",
    "split_valid",
]
