"""Contracts of the derived objects the platform computes (schedules, journals, reports)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from sync_core.contracts.models import _CURRENCIES, UTC, UsageDailyModel, _Partitioned


class RevenueScheduleModel(_Partitioned):
    """One row per (source, recognition month); ``period`` is the recognition month.

    Sources are invoice lines, credit notes (on the lines they reduce) and voids. Balances
    sit on the invoice line's own row, so sums over rows are sums over lines. Every amount
    is in the transaction currency and, with ``_functional``, in the entity's currency.
    """

    source_type: Series[str] = pa.Field(
        isin=[
            "invoice_line",
            "credit_note",
            "invoice_void",
            "credit_note_void",
            "refund",
            "dispute",
            "uncollectible",
        ]
    )
    source_id: Series[str]
    document_id: Series[str]
    invoice_id: Series[str]
    line_key: Series[str] = pa.Field(nullable=True)
    reverses: Series[str] = pa.Field(nullable=True)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    functional_currency: Series[str] = pa.Field(isin=_CURRENCIES)
    fx_rate: Series[str]
    document_period: Series[UTC]  # type: ignore[valid-type]
    recognized: Series[int]
    recognized_functional: Series[int]
    contra_revenue: Series[int]
    contra_revenue_functional: Series[int]
    billed: Series[int]
    billed_functional: Series[int]
    cumulative_recognized: Series[int]
    cumulative_billed: Series[int]
    deferred_balance: Series[int] = pa.Field(ge=0)
    unbilled_balance: Series[int]  # see unbilled_negative_only_before_billing
    deferred_balance_functional: Series[int]
    unbilled_balance_functional: Series[int]
    deferred_booked: Series[int]
    unbilled_booked: Series[int]
    deferred_booked_functional: Series[int]
    unbilled_booked_functional: Series[int]
    deferred_released: Series[int]
    unbilled_accrued: Series[int]
    deferred_released_functional: Series[int]
    unbilled_accrued_functional: Series[int]
    correction: Series[bool]
    original_period: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]

    @pa.dataframe_check(name="unbilled_negative_only_before_billing", element_wise=False)
    @classmethod
    def unbilled_negative_only_before_billing(cls, df: pd.DataFrame) -> Series[bool]:
        # a net credit not billed yet (a downgrade's proration credit on the next invoice)
        # is negative unbilled AR until its invoice bills it (sync_core.revenue.balances)
        return (df["unbilled_balance"] >= 0) | (df["period"] < df["document_period"])


class _BookedLine(_Partitioned):
    """One side of a business event on one account, in the transaction and the functional
    currency (debit and credit >= 0, minor units)."""

    event: Series[str]
    document_id: Series[str]
    account: Series[str]
    debit: Series[int] = pa.Field(ge=0)
    credit: Series[int] = pa.Field(ge=0)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    debit_functional: Series[int] = pa.Field(ge=0)
    credit_functional: Series[int] = pa.Field(ge=0)
    functional_currency: Series[str] = pa.Field(isin=_CURRENCIES)
    correlation_id: Series[str]


class AccountingLineModel(_BookedLine):
    """The engine's business-event accounting lines of a month (the subledger's journal view),
    before they are grouped into ERP journals. ``period`` is the month the event belongs to;
    ``customer_id`` is the document's customer, ``invoice_id`` the invoice it settles or
    reduces (null for none)."""

    customer_id: Series[str] = pa.Field(nullable=True)
    invoice_id: Series[str] = pa.Field(nullable=True)
    transaction_date: Series[UTC]  # type: ignore[valid-type]


class _JournalLine(_BookedLine):
    """A journal line as the ERP takes it; ``period`` is the period its events belong to."""

    journal_key: Series[str] = pa.Field(str_matches=r"^[A-Za-z0-9_-]+$")
    line_no: Series[int] = pa.Field(ge=1)
    erp_account: Series[str] = pa.Field(nullable=True)
    erp_subsidiary_id: Series[str] = pa.Field(nullable=True)
    erp_customer_id: Series[str] = pa.Field(nullable=True)
    memo: Series[str]
    transaction_date: Series[UTC]  # type: ignore[valid-type]
    reason_code: Series[str] = pa.Field(nullable=True)  # why a journal is held
    owner: Series[str] = pa.Field(nullable=True)  # who must act on a held journal
    external_id: Series[str] = pa.Field(str_matches=r"^[A-Za-z0-9_-]+$", nullable=True)
    posting_period: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]


class JournalLineModel(_JournalLine):
    """A journal line of the partition after posting: ``posted`` (in the ERP, under
    ``external_id`` in ``posting_period``) or ``held`` (in the exception queue with its reason
    and owner: a reconciling item until it posts)."""

    posting_status: Series[str] = pa.Field(isin=["posted", "held"])


class ProposedJournalModel(_JournalLine):
    """A journal line that would post for the partition, and its diff against the ERP.

    ``action``: ``new`` (never posted), ``unchanged`` (posted with the same content),
    ``repost`` (posted with other content: reversal, then a new version), ``reverse_stale``
    (posted, but its document no longer yields the journal: reversal only; the lines shown
    are those of the reversal). ``status``: ``ready`` or ``held`` (with reason and owner).
    ``period`` is the period the events belong to, ``posting_period`` where it would post.
    """

    action: Series[str] = pa.Field(isin=["new", "unchanged", "repost", "reverse_stale"])
    status: Series[str] = pa.Field(isin=["ready", "held"])
    reverses: Series[str] = pa.Field(nullable=True)
    invoice_id: Series[str] = pa.Field(nullable=True)
    message: Series[str] = pa.Field(nullable=True)


class RollforwardModel(_Partitioned):
    """Deferred revenue rollforward per entity, currency and month:
    ``opening_deferred + billings - recognized - credits == closing_deferred``."""

    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    opening_deferred: Series[int]
    billings: Series[int]
    recognized: Series[int]
    credits: Series[int]
    closing_deferred: Series[int]
    revenue: Series[int]
    opening_unbilled: Series[int]
    closing_unbilled: Series[int]

    @pa.dataframe_check(name="rollforward_identity", element_wise=False)
    @classmethod
    def rollforward_identity(cls, df: pd.DataFrame) -> Series[bool]:
        flow = df["opening_deferred"] + df["billings"] - df["recognized"] - df["credits"]
        return flow == df["closing_deferred"]


class WaterfallModel(_Partitioned):
    """Deferred revenue waterfall: revenue recognized in ``period`` by billing month."""

    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    billing_period: Series[UTC]  # type: ignore[valid-type]
    recognized: Series[int]


class ReconciliationModel(_Partitioned):
    """Subledger against the GL read back from the ERP, per account at the end of ``period``:
    ``drift = subledger - gl - reconciling`` (signed, debit positive, minor units), in the
    functional currency (``kind = functional``) and per transaction currency; ``severity`` by
    the entity's materiality ``threshold`` (PASS at zero, WARN up to it, ERROR above)."""

    account: Series[str]
    kind: Series[str] = pa.Field(isin=["functional", "transaction"])
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    subledger: Series[int]
    gl: Series[int]
    reconciling: Series[int]
    drift: Series[int]
    threshold: Series[int] = pa.Field(ge=0)
    severity: Series[str] = pa.Field(isin=["PASS", "WARN", "ERROR"])


class ReconciliationItemModel(_Partitioned):
    """A listed reason why the GL differs from the subledger at the end of ``period``:
    ``held`` (a journal in the exception queue) or ``timing`` (posted in a later ERP period),
    per journal and account, with its amount (signed, debit positive), reason and owner."""

    item_type: Series[str] = pa.Field(isin=["held", "timing"])
    account: Series[str]
    document_id: Series[str]
    event: Series[str]
    journal_key: Series[str]
    external_id: Series[str] = pa.Field(nullable=True)
    currency: Series[str] = pa.Field(isin=_CURRENCIES)
    amount: Series[int]
    functional_currency: Series[str] = pa.Field(isin=_CURRENCIES)
    amount_functional: Series[int]
    reason_code: Series[str]
    owner: Series[str]
    source_period: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    posting_period: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]


DERIVED_MODELS = {
    "usage_daily": UsageDailyModel,
    "revenue_schedules": RevenueScheduleModel,
    "revenue_rollforward": RollforwardModel,
    "deferred_revenue_waterfall": WaterfallModel,
    "accounting_lines": AccountingLineModel,
    "proposed_journals": ProposedJournalModel,
    "erp_postings": JournalLineModel,
    "reconciliation": ReconciliationModel,
    "reconciliation_items": ReconciliationItemModel,
}
