"""Pandera models of the canonical objects. The single source of truth for column names,
types, nullability and row rules; docs/data-contract.md describes the same contract in prose.

Conventions
- Money is integer minor units (``int64``) beside a ``currency`` column (ISO 4217).
- Timestamps are UTC (``datetime64[ns, UTC]``); service periods are half-open ``[start, end)``.
- ``entity_id`` is the legal entity; ``period`` (first day of the month, UTC) is the
  accounting period that the record belongs to, and together they form the partition key.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from sync_core.contracts.vectorized import vectorize
from sync_core.money import CURRENCIES, MAX_AMOUNT

CONTRACT_VERSION = "1.1.0"

_CURRENCIES = sorted(CURRENCIES)
ENTITY_ID = r"^[A-Z0-9]{2,12}$"
FX_RATE = r"^(?!0+(\.0+)?$)\d+(\.\d+)?$"  # a positive decimal
UTC = pd.DatetimeTZDtype(tz="UTC")

AMENDMENT_TYPES = [
    "new",
    "upgrade",
    "downgrade",
    "quantity_change",
    "cancel",
    "renew",
    "entity_change",
]
INVOICE_STATUSES = ["open", "paid", "void", "uncollectible"]
LINE_TYPES = ["subscription", "invoiceitem", "usage"]
CREDIT_NOTE_TYPES = ["pre_payment", "post_payment"]
PAYMENT_KINDS = ["payment", "refund"]
# Stripe's dispute statuses; the warning_* statuses (inquiries) and prevented withdraw no funds
DISPUTE_STATUSES = [
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
    "prevented",
]
RECOGNITION_METHODS = ["day", "millisecond", "month"]


# every money column: |amount| <= MAX_AMOUNT minor units (sync_core.money), so that sums of
# many amounts are checked for int64 overflow instead of wrapping (docs/data-contract.md)
def _money():
    return pa.Field(in_range={"min_value": -MAX_AMOUNT, "max_value": MAX_AMOUNT})


class _Base(pa.DataFrameModel):
    class Config:
        strict = "filter"  # unknown columns are dropped, never trusted
        coerce = True

    @classmethod
    def build_schema_(cls, **kwargs) -> pa.DataFrameSchema:
        # the same rules, with vectorized stand-ins for pandera's costliest implementations
        # (sync_core.contracts.vectorized); built once per model, then cached by pandera
        return vectorize(super().build_schema_(**kwargs))


class _Partitioned(_Base):
    entity_id: Series[str] = pa.Field(str_matches=ENTITY_ID)
    period: Series[UTC]  # type: ignore[valid-type]

    @pa.dataframe_check(name="period_is_month_start", element_wise=False)
    @classmethod
    def period_is_month_start(cls, df: pd.DataFrame) -> Series[bool]:
        return df["period"].dt.is_month_start & (df["period"].dt.normalize() == df["period"])


class LegalEntityModel(_Base):
    entity_id: Series[str] = pa.Field(str_matches=ENTITY_ID, unique=True)
    name: Series[str]
    functional_currency: Series[str] = pa.Field(isin=_CURRENCIES)
    country: Series[str] = pa.Field(str_matches=r"^[A-Z]{2}$")
    erp_subsidiary_id: Series[str]
    recognition_method: Series[str] = pa.Field(isin=RECOGNITION_METHODS)


class CustomerModel(_Partitioned):
    customer_id: Series[str] = pa.Field(unique=True)
    name: Series[str]
    email: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(str_matches=r"^[A-Z]{2}$")
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    erp_customer_id: Series[str] = pa.Field(nullable=True)  # missing -> master-data exception
    created_at: Series[UTC]  # type: ignore[valid-type]


class SubscriptionContractModel(_Partitioned):
    contract_id: Series[str]
    version: Series[int] = pa.Field(ge=1)
    customer_id: Series[str]
    amendment_type: Series[str] = pa.Field(isin=AMENDMENT_TYPES)
    effective_at: Series[UTC]  # type: ignore[valid-type]
    plan_id: Series[str]
    price_id: Series[str]
    interval: Series[str] = pa.Field(isin=["month", "year"])
    unit_amount: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    quantity: Series[int] = pa.Field(ge=0)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    metered: Series[pd.BooleanDtype]

    @pa.dataframe_check(name="contract_version_unique", element_wise=False)
    @classmethod
    def contract_version_unique(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(["contract_id", "version"], keep=False)


class UsageEventModel(_Partitioned):
    event_id: Series[str] = pa.Field(unique=True)  # idempotency key
    customer_id: Series[str]
    subscription_id: Series[str]
    subscription_item_id: Series[str]
    metric: Series[str]
    quantity: Series[int] = pa.Field(ge=0)
    timestamp: Series[UTC]  # type: ignore[valid-type]


class UsageDailyModel(_Partitioned):
    subscription_item_id: Series[str]
    metric: Series[str]
    usage_date: Series[UTC]  # type: ignore[valid-type]
    quantity: Series[int] = pa.Field(ge=0)
    event_count: Series[int] = pa.Field(ge=1)


class InvoiceModel(_Partitioned):
    invoice_id: Series[str] = pa.Field(unique=True)
    number: Series[str] = pa.Field(nullable=True)
    customer_id: Series[str]
    subscription_id: Series[str] = pa.Field(nullable=True)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    status: Series[str] = pa.Field(isin=INVOICE_STATUSES)
    finalized_at: Series[UTC]  # type: ignore[valid-type]
    voided_at: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    subtotal: Series[int] = _money()
    tax: Series[int] = _money()  # negative on an invoice made of proration credits
    total: Series[int] = _money()
    fx_rate: Series[str] = pa.Field(str_matches=FX_RATE)  # functional per unit
    # when the invoice was marked uncollectible (Stripe:
    # status_transitions.marked_uncollectible_at); kept when it is paid later (a recovery)
    uncollectible_at: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    # part of the total paid from the customer's credit balance (Stripe: starting_balance -
    # ending_balance); optional: a null, or a column left out of a file drop, is 0
    balance_applied: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT, default=0)

    @pa.dataframe_check(name="total_is_subtotal_plus_tax", element_wise=False)
    @classmethod
    def total_is_subtotal_plus_tax(cls, df: pd.DataFrame) -> Series[bool]:
        return df["total"] == df["subtotal"] + df["tax"]

    @pa.dataframe_check(name="balance_applied_within_total", element_wise=False)
    @classmethod
    def balance_applied_within_total(cls, df: pd.DataFrame) -> Series[bool]:
        applied = df["balance_applied"]
        return (applied == 0) | (applied <= df["total"])

    @pa.dataframe_check(name="void_has_voided_at", element_wise=False)
    @classmethod
    def void_has_voided_at(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["status"] == "void") == df["voided_at"].notna()


class InvoiceLineModel(_Partitioned):
    line_key: Series[str] = pa.Field(unique=True)  # canonical id: invoice_id/line_id
    line_id: Series[str]  # source id; not unique on its own
    invoice_id: Series[str]
    subscription_id: Series[str] = pa.Field(nullable=True)
    subscription_item_id: Series[str] = pa.Field(nullable=True)
    product_id: Series[str]
    line_type: Series[str] = pa.Field(isin=LINE_TYPES)
    proration: Series[pd.BooleanDtype]
    quantity: Series[int] = pa.Field(ge=0)
    amount: Series[int] = _money()  # net of tax; negative for proration credits
    tax_amount: Series[int] = _money()
    tax_behavior: Series[str] = pa.Field(isin=["exclusive", "inclusive"])
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    period_start: Series[UTC]  # type: ignore[valid-type]
    period_end: Series[UTC]  # type: ignore[valid-type]

    @pa.dataframe_check(name="period_start_before_end", element_wise=False)
    @classmethod
    def period_start_before_end(cls, df: pd.DataFrame) -> Series[bool]:
        return df["period_start"] < df["period_end"]


class CreditNoteModel(_Partitioned):
    credit_note_id: Series[str] = pa.Field(unique=True)
    invoice_id: Series[str]
    customer_id: Series[str]
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    type: Series[str] = pa.Field(isin=CREDIT_NOTE_TYPES)
    status: Series[str] = pa.Field(isin=["issued", "void"])
    issued_at: Series[UTC]  # type: ignore[valid-type]
    voided_at: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    subtotal: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    tax: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    total: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    refund_amount: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    credit_balance_amount: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    out_of_band_amount: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    reason: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(name="total_is_subtotal_plus_tax", element_wise=False)
    @classmethod
    def total_is_subtotal_plus_tax(cls, df: pd.DataFrame) -> Series[bool]:
        return df["total"] == df["subtotal"] + df["tax"]

    @pa.dataframe_check(name="settlement_matches_total", element_wise=False)
    @classmethod
    def settlement_matches_total(cls, df: pd.DataFrame) -> Series[bool]:
        settled = df["refund_amount"] + df["credit_balance_amount"] + df["out_of_band_amount"]
        pre = df["type"] == "pre_payment"
        # before payment the note reduces the amount due; after payment it is settled in full
        return (pre & (settled <= df["total"])) | (~pre & (settled == df["total"]))

    @pa.dataframe_check(name="void_has_voided_at", element_wise=False)
    @classmethod
    def void_has_voided_at(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["status"] == "void") == df["voided_at"].notna()


class CreditNoteLineModel(_Partitioned):
    credit_note_line_id: Series[str] = pa.Field(unique=True)
    credit_note_id: Series[str]
    invoice_line_key: Series[str] = pa.Field(nullable=True)  # null: spread pro rata
    amount: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    tax_amount: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    # optional service period of the credit (a prospective credit, Chargebee's "future
    # discount"): the credit reduces revenue over [period_start, period_end) only
    period_start: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    period_end: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]

    @pa.dataframe_check(name="service_period_complete", element_wise=False)
    @classmethod
    def service_period_complete(cls, df: pd.DataFrame) -> Series[bool]:
        start, end = df["period_start"], df["period_end"]
        both = start.notna() & end.notna()
        return (start.isna() & end.isna()) | (both & (start < end))


class PaymentModel(_Partitioned):
    payment_id: Series[str] = pa.Field(unique=True)
    kind: Series[str] = pa.Field(isin=PAYMENT_KINDS)
    customer_id: Series[str]
    invoice_id: Series[str] = pa.Field(nullable=True)
    credit_note_id: Series[str] = pa.Field(nullable=True)
    amount: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    created_at: Series[UTC]  # type: ignore[valid-type]
    status: Series[str] = pa.Field(isin=["succeeded", "failed"])
    fx_rate: Series[str] = pa.Field(str_matches=FX_RATE)


class DisputeModel(_Partitioned):
    """A dispute (chargeback) of a payment; ``period`` is the month of ``created_at``, when
    the funds (and the fee) are withdrawn. ``fee`` is the dispute fee withdrawn, in
    ``fee_currency``; ``closed_at`` is when it was won or lost."""

    dispute_id: Series[str] = pa.Field(unique=True)
    payment_id: Series[str]
    invoice_id: Series[str] = pa.Field(nullable=True)
    customer_id: Series[str]
    amount: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    fee: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT)
    fee_currency: Series[str] = pa.Field(isin=_CURRENCIES)
    status: Series[str] = pa.Field(isin=DISPUTE_STATUSES)
    created_at: Series[UTC]  # type: ignore[valid-type]
    closed_at: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    fx_rate: Series[str] = pa.Field(str_matches=FX_RATE)  # functional per unit

    @pa.dataframe_check(name="closed_has_closed_at", element_wise=False)
    @classmethod
    def closed_has_closed_at(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df["status"].isin(["won", "lost"]) | df["closed_at"].notna()


# object name (file-drop name and warehouse table) -> model
MODELS: dict[str, type[_Base]] = {
    "legal_entities": LegalEntityModel,
    "customers": CustomerModel,
    "subscription_contracts": SubscriptionContractModel,
    "usage_events": UsageEventModel,
    "invoices": InvoiceModel,
    "invoice_lines": InvoiceLineModel,
    "credit_notes": CreditNoteModel,
    "credit_note_lines": CreditNoteLineModel,
    "payments": PaymentModel,
    "disputes": DisputeModel,
}
