"""The canonical data contract (sync_core/contracts): one failing example for every rule.

Every case is one record that breaks one rule. All cases of an object are validated together,
in one ``split_valid`` call, beside one valid record (one call per object keeps the suite fast);
each case then checks that its record is quarantined under its rule, once per copy of the
record, and ``test_only_the_bad_records_are_held_back`` that the valid record goes on and no
other record is reported. ``test_every_contract_rule_has_a_failing_example`` reads the rules
from the pandera schemas (plus the ``<column>.integer`` pre-check of every integer column), so
a rule added to models.py without an example here fails the suite.

A strict xfail documents a known defect: it asserts the intended behaviour and turns into a
failure once the defect is fixed, so that the marker is removed.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sync_core.contracts import CONTRACT_VERSION, MODELS, UsageDailyModel, split_valid
from sync_core.contracts.validate import EXCEPTION_COLUMNS, OPTIONAL_COLUMNS, SOURCE_ID
from sync_core.money import MAX_AMOUNT, exponent

# usage_daily is not in MODELS (not a file-drop object) but is part of the contract.
OBJECTS = {**MODELS, "usage_daily": UsageDailyModel}
PARTITIONED = sorted(o for o, m in OBJECTS.items() if "period" in m.to_schema().columns)
DOC = Path(__file__).resolve().parents[1] / "docs" / "data-contract.md"


def ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz="UTC")


PERIOD = ts("2025-03-01")

# --------------------------------------------------------------------------------------------
# Valid rows: one builder per object; ``n`` makes the unique keys distinct.
# --------------------------------------------------------------------------------------------


def legal_entity(n: int) -> dict[str, Any]:
    return {
        "entity_id": f"US{n:02d}",
        "name": f"Acme {n} Inc.",
        "functional_currency": "USD",
        "country": "US",
        "erp_subsidiary_id": f"{n}",
        "recognition_method": "day",
    }


def customer(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "customer_id": f"cus_{n}",
        "name": f"Customer {n}",
        "email": f"ap{n}@example.com",
        "country": "US",
        "currency": "USD",
        "erp_customer_id": f"C-{n}",
        "created_at": ts("2025-03-03T10:00:00"),
    }


def subscription_contract(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "contract_id": f"sub_{n}",
        "version": 1,
        "customer_id": "cus_1",
        "amendment_type": "new",
        "effective_at": ts("2025-03-15"),
        "plan_id": "plan_pro",
        "price_id": "price_pro_monthly",
        "interval": "month",
        "unit_amount": 3100,
        "quantity": 1,
        "currency": "USD",
        "metered": False,
    }


def usage_event(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "event_id": f"evt_{n}",
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "subscription_item_id": "si_1",
        "metric": "api_calls",
        "quantity": 15,
        "timestamp": ts("2025-03-25T08:30:00"),
    }


def usage_daily(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "subscription_item_id": f"si_{n}",
        "metric": "api_calls",
        "usage_date": ts("2025-03-25"),
        "quantity": 15,
        "event_count": 3,
    }


def invoice(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "invoice_id": f"in_{n}",
        "number": f"INV-{n:04d}",
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "currency": "USD",
        "status": "open",
        "finalized_at": ts("2025-03-15T00:00:00"),
        "voided_at": None,
        "subtotal": 3100,
        "tax": 310,
        "total": 3410,
        "fx_rate": "1",
        "uncollectible_at": None,
        "balance_applied": 0,
    }


def invoice_line(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "line_key": f"in_1/il_{n}",
        "line_id": f"il_{n}",
        "invoice_id": "in_1",
        "subscription_id": "sub_1",
        "subscription_item_id": "si_1",
        "product_id": "prod_pro",
        "line_type": "subscription",
        "proration": False,
        "quantity": 1,
        "amount": 3100,
        "tax_amount": 310,
        "tax_behavior": "exclusive",
        "currency": "USD",
        "period_start": ts("2025-03-15"),
        "period_end": ts("2025-04-15"),
    }


def credit_note(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "credit_note_id": f"cn_{n}",
        "invoice_id": "in_1",
        "customer_id": "cus_1",
        "currency": "USD",
        "type": "post_payment",
        "status": "issued",
        "issued_at": ts("2025-03-20"),
        "voided_at": None,
        "subtotal": 1000,
        "tax": 100,
        "total": 1100,
        "refund_amount": 1100,
        "credit_balance_amount": 0,
        "out_of_band_amount": 0,
        "reason": "product_unsatisfactory",
    }


def credit_note_line(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "credit_note_line_id": f"cnli_{n}",
        "credit_note_id": "cn_1",
        "invoice_line_key": "in_1/il_1",
        "amount": 1000,
        "tax_amount": 100,
        "currency": "USD",
        "period_start": None,
        "period_end": None,
    }


def payment(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "payment_id": f"py_{n}",
        "kind": "payment",
        "customer_id": "cus_1",
        "invoice_id": "in_1",
        "credit_note_id": None,
        "amount": 3410,
        "currency": "USD",
        "created_at": ts("2025-03-18T12:00:00"),
        "status": "succeeded",
        "fx_rate": "1",
    }


def dispute(n: int) -> dict[str, Any]:
    return {
        "entity_id": "US01",
        "period": PERIOD,
        "dispute_id": f"dp_{n}",
        "payment_id": "py_1",
        "invoice_id": "in_1",
        "customer_id": "cus_1",
        "amount": 3410,
        "currency": "USD",
        "fee": 1500,
        "fee_currency": "USD",
        "status": "under_review",
        "created_at": ts("2025-03-20T00:00:00"),
        "closed_at": None,
        "fx_rate": "1",
    }


BUILDERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "legal_entities": legal_entity,
    "customers": customer,
    "subscription_contracts": subscription_contract,
    "usage_events": usage_event,
    "usage_daily": usage_daily,
    "invoices": invoice,
    "invoice_lines": invoice_line,
    "credit_notes": credit_note,
    "credit_note_lines": credit_note_line,
    "payments": payment,
    "disputes": dispute,
}


def schema_columns(object_type: str) -> dict[str, Any]:
    return OBJECTS[object_type].to_schema().columns


BOOLEAN_COLUMNS = [
    (ot, name)
    for ot in sorted(OBJECTS)
    for name, col in schema_columns(ot).items()
    if str(col.dtype) == "boolean"
]


def integer_columns(object_type: str) -> list[str]:
    """Money and count columns: checked row by row before pandera coerces them."""
    return [n for n, c in schema_columns(object_type).items() if str(c.dtype).startswith("int")]


def frame(object_type: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with the contract dtypes, where every value of a column allows it.

    A column holding a null, a fraction or text is left as pandas infers it (never truncated or
    cast), as a reader would hand it over.
    """
    df = pd.DataFrame(rows)
    for name, col in schema_columns(object_type).items():
        if name not in df:
            continue
        dtype = str(col.dtype)
        values = df[name].tolist()
        if dtype.startswith("datetime64"):
            df[name] = pd.to_datetime(df[name], utc=True)
        elif dtype == "int64" and all(type(v) is int for v in values):
            df[name] = df[name].astype(dtype)
        elif dtype == "boolean" and all(type(v) is bool or v is None for v in values):
            df[name] = df[name].astype(dtype)
    return df


@pytest.fixture(params=sorted(OBJECTS))
def object_type(request) -> str:
    return request.param


@pytest.fixture
def valid_frame(object_type: str) -> pd.DataFrame:
    return frame(object_type, [BUILDERS[object_type](1)])


def test_builders_cover_every_model() -> None:
    assert set(BUILDERS) == set(OBJECTS)
    assert set(MODELS) <= set(SOURCE_ID)
    assert BOOLEAN_COLUMNS == [
        ("invoice_lines", "proration"),
        ("subscription_contracts", "metered"),
    ]


def test_valid_row_has_contract_columns_and_dtypes(object_type: str, valid_frame) -> None:
    columns = schema_columns(object_type)
    assert list(valid_frame.columns) == list(columns)
    for name, col in columns.items():
        if valid_frame[name].isna().all():
            continue  # an all-null nullable column has no meaningful dtype in a one-row frame
        expected = {"str": "object"}.get(str(col.dtype), str(col.dtype))
        assert str(valid_frame[name].dtype) == expected, name
    if "period" in columns:
        assert valid_frame["period"].iloc[0] == PERIOD


def test_valid_rows_pass_and_unknown_columns_are_dropped(object_type: str) -> None:
    rows = [
        {**BUILDERS[object_type](n), "metadata": "{'k': 'v'}", "Currency ": "EUR"} for n in (1, 2)
    ]
    good, exceptions = split_valid(frame(object_type, rows), OBJECTS[object_type], object_type)
    assert exceptions.empty, exceptions.to_dict("records")
    assert len(good) == 2
    assert list(good.columns) == list(schema_columns(object_type))


# --------------------------------------------------------------------------------------------
# One failing example per rule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    object_type: str
    rule: str  # '<column>.<check>' for a column rule, '<check>' for a row rule
    change: dict[str, Any] = field(default_factory=dict)
    duplicate: bool = False  # the bad record appears twice (uniqueness rules)
    label: str = ""
    also: tuple[str, ...] = ()  # rules the record cannot help breaking as well

    @property
    def id(self) -> str:
        return f"{self.object_type}:{self.rule}" + (f"[{self.label}]" if self.label else "")


def _value_cases() -> list[Case]:
    c = Case
    cases = [
        # legal_entities (reference data, not partitioned)
        c("legal_entities", "entity_id.str_matches", {"entity_id": "us-01"}),
        c("legal_entities", "entity_id.field_uniqueness", duplicate=True),
        c("legal_entities", "functional_currency.isin", {"functional_currency": "XXX"}),
        c("legal_entities", "country.str_matches", {"country": "USA"}),
        c("legal_entities", "recognition_method.isin", {"recognition_method": "week"}),
        # customers
        c("customers", "customer_id.field_uniqueness", duplicate=True),
        c("customers", "country.str_matches", {"country": "us"}),
        c("customers", "currency.isin", {"currency": "usd"}),
        # subscription_contracts
        c("subscription_contracts", "version.greater_than_or_equal_to", {"version": 0}),
        c("subscription_contracts", "amendment_type.isin", {"amendment_type": "pause"}),
        c("subscription_contracts", "interval.isin", {"interval": "week"}),
        c("subscription_contracts", "unit_amount.greater_than_or_equal_to", {"unit_amount": -1}),
        c("subscription_contracts", "quantity.greater_than_or_equal_to", {"quantity": -1}),
        c("subscription_contracts", "currency.isin", {"currency": "XXX"}),
        c("subscription_contracts", "contract_version_unique", duplicate=True),
        # usage_events
        c("usage_events", "event_id.field_uniqueness", duplicate=True),
        c("usage_events", "quantity.greater_than_or_equal_to", {"quantity": -1}),
        # usage_daily
        c("usage_daily", "quantity.greater_than_or_equal_to", {"quantity": -1}),
        c("usage_daily", "event_count.greater_than_or_equal_to", {"event_count": 0}),
        # invoices
        c("invoices", "invoice_id.field_uniqueness", duplicate=True),
        c("invoices", "currency.isin", {"currency": "XXX"}),
        c("invoices", "status.isin", {"status": "draft"}),
        c("invoices", "fx_rate.str_matches", {"fx_rate": "1,2"}, label="comma"),
        c("invoices", "fx_rate.str_matches", {"fx_rate": "-1.2"}, label="negative"),
        c("invoices", "fx_rate.str_matches", {"fx_rate": "1e-3"}, label="exponent"),
        c("invoices", "fx_rate.str_matches", {"fx_rate": "0"}, label="zero"),
        c("invoices", "fx_rate.str_matches", {"fx_rate": "0.0"}, label="zero-decimal"),
        c("invoices", "fx_rate.str_matches", {"fx_rate": "00.000"}, label="zero-padded"),
        c("invoices", "total_is_subtotal_plus_tax", {"total": 3400}),
        c("invoices", "balance_applied.greater_than_or_equal_to", {"balance_applied": -1}),
        c("invoices", "balance_applied_within_total", {"balance_applied": 3411}),
        c("invoices", "void_has_voided_at", {"status": "void"}, label="void-without-date"),
        c(
            "invoices",
            "void_has_voided_at",
            {"voided_at": ts("2025-03-16")},
            label="date-without-void",
        ),
        c(
            "invoices",
            "period_is_month_start",
            {"period": ts("2025-03-01T05:00:00")},
            label="not-midnight",
        ),
        # invoice_lines
        c("invoice_lines", "line_key.field_uniqueness", duplicate=True),
        c("invoice_lines", "line_type.isin", {"line_type": "discount"}),
        c("invoice_lines", "quantity.greater_than_or_equal_to", {"quantity": -1}),
        c("invoice_lines", "tax_behavior.isin", {"tax_behavior": "unspecified"}),
        c("invoice_lines", "currency.isin", {"currency": "XXX"}),
        c(
            "invoice_lines",
            "period_start_before_end",
            {"period_start": ts("2025-04-15"), "period_end": ts("2025-03-15")},
            label="reversed",
        ),
        # intended: a one-off item with period_start == period_end is rejected; the doc asks
        # integrators for its day of service instead (accepted, see ACCEPTED)
        c(
            "invoice_lines",
            "period_start_before_end",
            {
                "line_type": "invoiceitem",
                "period_start": ts("2025-03-15"),
                "period_end": ts("2025-03-15"),
            },
            label="empty",
        ),
        # credit_notes (valid row: post_payment, 1000 + 100 tax, refunded in full)
        c("credit_notes", "credit_note_id.field_uniqueness", duplicate=True),
        c("credit_notes", "currency.isin", {"currency": "XXX"}),
        c("credit_notes", "type.isin", {"type": "other"}),
        c("credit_notes", "status.isin", {"status": "draft"}),
        c(
            "credit_notes",
            "subtotal.greater_than_or_equal_to",
            {"subtotal": -100, "tax": 100, "total": 0, "refund_amount": 0},
        ),
        c(
            "credit_notes",
            "tax.greater_than_or_equal_to",
            {"tax": -100, "total": 900, "refund_amount": 900},
        ),
        c(
            "credit_notes",
            "total.greater_than_or_equal_to",
            {"total": -1},
            also=("settlement_matches_total", "total_is_subtotal_plus_tax"),
        ),
        c(
            "credit_notes",
            "refund_amount.greater_than_or_equal_to",
            {"refund_amount": -1, "credit_balance_amount": 1101},
        ),
        c(
            "credit_notes",
            "credit_balance_amount.greater_than_or_equal_to",
            {"refund_amount": 1101, "credit_balance_amount": -1},
        ),
        c(
            "credit_notes",
            "out_of_band_amount.greater_than_or_equal_to",
            {"refund_amount": 1101, "out_of_band_amount": -1},
        ),
        c("credit_notes", "total_is_subtotal_plus_tax", {"total": 1000, "refund_amount": 1000}),
        c(
            "credit_notes",
            "settlement_matches_total",
            {"type": "pre_payment", "refund_amount": 0, "credit_balance_amount": 1200},
            label="pre-payment-over",
        ),
        c(
            "credit_notes",
            "settlement_matches_total",
            {"refund_amount": 1000},
            label="post-payment-under",
        ),
        c(
            "credit_notes",
            "settlement_matches_total",
            {"refund_amount": 1100, "out_of_band_amount": 100},
            label="post-payment-over",
        ),
        c("credit_notes", "void_has_voided_at", {"status": "void"}, label="void-without-date"),
        c(
            "credit_notes",
            "void_has_voided_at",
            {"voided_at": ts("2025-03-21")},
            label="date-without-void",
        ),
        # credit_note_lines
        c("credit_note_lines", "credit_note_line_id.field_uniqueness", duplicate=True),
        c("credit_note_lines", "amount.greater_than_or_equal_to", {"amount": -1}),
        c("credit_note_lines", "tax_amount.greater_than_or_equal_to", {"tax_amount": -1}),
        c("credit_note_lines", "currency.isin", {"currency": "XXX"}),
        c(
            "credit_note_lines",
            "service_period_complete",
            {"period_start": ts("2025-04-01")},
            label="start-without-end",
        ),
        c(
            "credit_note_lines",
            "service_period_complete",
            {"period_start": ts("2025-05-01"), "period_end": ts("2025-04-01")},
            label="reversed",
        ),
        # payments
        c("payments", "payment_id.field_uniqueness", duplicate=True),
        c("payments", "kind.isin", {"kind": "chargeback"}),
        c("payments", "amount.greater_than", {"amount": 0}),
        c("payments", "currency.isin", {"currency": "XXX"}),
        c("payments", "status.isin", {"status": "pending"}),
        c("payments", "fx_rate.str_matches", {"fx_rate": "1.2.3"}, label="two-points"),
        c("payments", "fx_rate.str_matches", {"fx_rate": "0"}, label="zero"),
        c("payments", "fx_rate.str_matches", {"fx_rate": "0.0"}, label="zero-decimal"),
        # disputes (valid row: under review, with a 15.00 fee)
        c("disputes", "dispute_id.field_uniqueness", duplicate=True),
        c("disputes", "amount.greater_than", {"amount": 0}),
        c("disputes", "currency.isin", {"currency": "XXX"}),
        c("disputes", "fee.greater_than_or_equal_to", {"fee": -1}),
        c("disputes", "fee_currency.isin", {"fee_currency": "usd"}),
        c("disputes", "status.isin", {"status": "charge_refunded"}),
        c("disputes", "fx_rate.str_matches", {"fx_rate": "0"}, label="zero"),
        c("disputes", "closed_has_closed_at", {"status": "lost"}, label="lost-without-date"),
    ]
    # rules every partitioned object inherits
    for ot in PARTITIONED:
        cases.append(c(ot, "entity_id.str_matches", {"entity_id": "us-01"}))
        cases.append(c(ot, "period_is_month_start", {"period": ts("2025-03-15")}))
    return cases


# a null in these columns also breaks the row rule that reads them
NULL_ALSO = {
    "period": ("period_is_month_start",),
    "period_start": ("period_start_before_end",),
    "period_end": ("period_start_before_end",),
}


def _null_cases() -> list[Case]:
    """Every non-nullable column set to None."""
    return [
        Case(ot, f"{name}.not_nullable", {name: None}, also=NULL_ALSO.get(name, ()))
        for ot in sorted(OBJECTS)
        for name, col in schema_columns(ot).items()
        if not col.nullable and col.default is None
    ]


def _integer_cases() -> list[Case]:
    """Every integer (money, count) column given a fraction and a text value."""
    return [
        Case(ot, f"{name}.integer", {name: value}, label=label)
        for ot in sorted(OBJECTS)
        for name in integer_columns(ot)
        for label, value in (("fraction", 1.5), ("text", "12 USD"))
    ]


def _bound_cases() -> list[Case]:
    """Every money column one minor unit beyond the bound (MAX_AMOUNT, 10**15); where a row
    rule ties the column to others, they are moved with it when they can be."""
    over, c = MAX_AMOUNT + 1, Case
    row_inv, row_cn = ("total_is_subtotal_plus_tax",), ("settlement_matches_total",)
    return [
        c("subscription_contracts", "unit_amount.less_than_or_equal_to", {"unit_amount": over}),
        c("invoices", "subtotal.in_range", {"subtotal": over, "tax": 3410 - over}),
        c("invoices", "tax.in_range", {"tax": over, "subtotal": 3410 - over}),
        c("invoices", "total.in_range", {"total": over, "subtotal": over - 310}),
        c("invoices", "balance_applied.less_than_or_equal_to", {"balance_applied": over},
          also=("balance_applied_within_total",)),  # fmt: skip
        c("invoice_lines", "amount.in_range", {"amount": -over}),
        c("invoice_lines", "tax_amount.in_range", {"tax_amount": over}),
        c("credit_notes", "subtotal.less_than_or_equal_to", {"subtotal": over}, also=row_inv),
        c("credit_notes", "tax.less_than_or_equal_to", {"tax": over}, also=row_inv),
        c("credit_notes", "total.less_than_or_equal_to",
          {"total": over, "subtotal": over - 100, "credit_balance_amount": over - 1100}),
        c("credit_notes", "refund_amount.less_than_or_equal_to", {"refund_amount": over},
          also=row_cn),
        c("credit_notes", "credit_balance_amount.less_than_or_equal_to",
          {"credit_balance_amount": over}, also=row_cn),
        c("credit_notes", "out_of_band_amount.less_than_or_equal_to",
          {"out_of_band_amount": over}, also=row_cn),
        c("credit_note_lines", "amount.less_than_or_equal_to", {"amount": over}),
        c("credit_note_lines", "tax_amount.less_than_or_equal_to", {"tax_amount": over}),
        c("payments", "amount.less_than_or_equal_to", {"amount": over}),
        c("disputes", "amount.less_than_or_equal_to", {"amount": over}),
        c("disputes", "fee.less_than_or_equal_to", {"fee": over}),
    ]  # fmt: skip


CASES = _value_cases() + _null_cases() + _integer_cases() + _bound_cases()


def contract_rules(object_type: str) -> set[str]:
    """Every rule of a model, named as split_valid reports it."""
    schema = OBJECTS[object_type].to_schema()
    rules: set[str] = set()
    for name, col in schema.columns.items():
        rules |= {f"{name}.{check.name}" for check in col.checks}
        if col.unique:
            rules.add(f"{name}.field_uniqueness")
        if not col.nullable and col.default is None:  # a null in a defaulted column is 0
            rules.add(f"{name}.not_nullable")
    rules |= {f"{name}.integer" for name in integer_columns(object_type)}
    rules |= {check.name for check in schema.checks}
    return rules


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("ot", sorted(OBJECTS))
def test_every_contract_rule_has_a_failing_example(ot: str) -> None:
    covered = {case.rule for case in CASES if case.object_type == ot}
    assert covered == contract_rules(ot)


# the n of each case's bad record: distinct within an object, 1 is the valid record
CASE_N = {
    case.id: n
    for ot in OBJECTS
    for n, case in enumerate((c for c in CASES if c.object_type == ot), start=2)
}


def _bad_row(case: Case) -> dict[str, Any]:
    return {**BUILDERS[case.object_type](CASE_N[case.id]), **case.change}


@functools.cache
def _validated(object_type: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """split_valid over the valid record 1 and the bad record of every case of the object."""
    rows = [BUILDERS[object_type](1)]
    for case in CASES:
        if case.object_type == object_type:
            rows += [_bad_row(case)] * (2 if case.duplicate else 1)
    return split_valid(frame(object_type, rows), OBJECTS[object_type], object_type)


def _exceptions_of(exceptions: pd.DataFrame, source_id: Any) -> pd.DataFrame:
    if source_id is None:
        return exceptions[exceptions["source_id"].isna()]
    return exceptions[exceptions["source_id"] == source_id]


def test_only_the_bad_records_are_held_back(object_type: str) -> None:
    good, exceptions = _validated(object_type)
    id_col = SOURCE_ID[object_type]
    assert good[id_col].tolist() == [BUILDERS[object_type](1)[id_col]], "the good record goes on"
    assert list(good.columns) == list(schema_columns(object_type))
    assert list(exceptions.columns) == EXCEPTION_COLUMNS
    assert (exceptions["object_type"] == object_type).all()
    bad_ids = {_bad_row(c)[id_col] for c in CASES if c.object_type == object_type}
    reported = set(exceptions["source_id"].where(exceptions["source_id"].notna(), None))
    assert reported == bad_ids, "every bad record is reported, and only the bad records"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_violation_is_quarantined(case: Case) -> None:
    good, exceptions = _validated(case.object_type)
    id_col = SOURCE_ID[case.object_type]
    bad_id = _bad_row(case)[id_col]
    if bad_id is not None:
        assert bad_id not in set(good[id_col]), "the bad record is held back"
    mine = _exceptions_of(exceptions, bad_id)
    rules = mine["rule"].tolist()
    assert case.rule in rules, rules
    n_bad = 2 if case.duplicate else 1
    assert rules.count(case.rule) == n_bad, "one exception per bad record and rule"
    assert sorted(rules) == sorted([case.rule, *case.also] * n_bad), "no other rule"
    column, _, check = case.rule.rpartition(".")
    message = mine.loc[mine["rule"] == case.rule, "message"].iloc[0]
    if column in integer_columns(case.object_type) and check in ("integer", "not_nullable"):
        # the integer pre-check holds the record back before pandera: exactly one exception
        assert not case.also
        assert f"column {column} " in message
        if check == "integer":
            assert f"must be a whole number: got {case.change[column]!r}" in message
    elif column:
        assert message.startswith(f"column {column} fails {check}"), message
    else:
        assert message == f"record fails the row rule {case.rule}"


def test_null_balance_applied_is_zero_not_a_violation() -> None:
    """An optional money column with a default (contract 1.1): a null is its default."""
    rows = [
        invoice(1),
        {**invoice(2), "balance_applied": None},
        {**invoice(3), "balance_applied": 500},
    ]
    good, exceptions = split_valid(frame("invoices", rows), MODELS["invoices"], "invoices")
    assert exceptions.empty
    assert good["balance_applied"].tolist() == [0, 0, 500]
    assert str(good["balance_applied"].dtype) == "int64"


def test_null_in_integer_column_has_the_not_nullable_message() -> None:
    df = frame("invoices", [invoice(1), {**invoice(2), "subtotal": None}])
    _, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert exceptions["message"].tolist() == ["column subtotal fails not_nullable: got None"]


def test_inherited_row_rule_keeps_its_name() -> None:
    names = {ot: [c.name for c in OBJECTS[ot].to_schema().checks] for ot in PARTITIONED}
    assert all("period_is_month_start" in checks for checks in names.values()), names


def test_record_breaking_two_rules_is_reported_under_each_and_held_back_once() -> None:
    bad = {**invoice(2), "currency": "XXX", "fx_rate": "0", "total": 3400}
    good, exceptions = split_valid(
        frame("invoices", [invoice(1), bad]), MODELS["invoices"], "invoices"
    )
    assert good["invoice_id"].tolist() == ["in_1"]
    assert sorted(exceptions["rule"]) == [
        "currency.isin",
        "fx_rate.str_matches",
        "total_is_subtotal_plus_tax",
    ]
    assert set(exceptions["source_id"]) == {"in_2"}


def test_several_bad_records_each_get_their_exception() -> None:
    rows = [invoice(1), {**invoice(2), "currency": "XXX"}, {**invoice(3), "status": "draft"}]
    good, exceptions = split_valid(frame("invoices", rows), MODELS["invoices"], "invoices")
    assert good["invoice_id"].tolist() == ["in_1"]
    got = set(zip(exceptions["source_id"], exceptions["rule"], strict=True))
    assert got == {("in_2", "currency.isin"), ("in_3", "status.isin")}


# --------------------------------------------------------------------------------------------
# Exception rows: partition, owner
# --------------------------------------------------------------------------------------------

EXPECTED_OWNER = {
    "legal_entities": "master_data",
    "customers": "master_data",
    "subscription_contracts": "billing_ops",
    "usage_events": "integration",
    "usage_daily": "integration",
    "invoices": "integration",
    "invoice_lines": "integration",
    "credit_notes": "integration",
    "credit_note_lines": "integration",
    "payments": "integration",
    "disputes": "integration",
}


def test_exception_row_carries_partition_and_owner(object_type: str) -> None:
    [case] = [c for c in CASES if c.id == f"{object_type}:entity_id.str_matches"]
    bad = _bad_row(case)
    _, exceptions = _validated(object_type)
    assert (exceptions["owner"] == EXPECTED_OWNER[object_type]).all()
    [row] = _exceptions_of(exceptions, bad[SOURCE_ID[object_type]]).to_dict("records")
    assert row["entity_id"] == "us-01"
    assert row["object_type"] == object_type
    assert row["rule"] == "entity_id.str_matches"
    assert row["owner"] == EXPECTED_OWNER[object_type]
    if object_type in PARTITIONED:
        assert row["period"] == PERIOD
    else:
        assert pd.isna(row["period"])


# --------------------------------------------------------------------------------------------
# Boundaries and nullable columns that must be accepted
# --------------------------------------------------------------------------------------------

ACCEPTED = [
    ("subscription_contracts", {"quantity": 0, "unit_amount": 0, "amendment_type": "cancel"}),
    ("subscription_contracts", {"version": 7, "metered": True, "interval": "year"}),
    ("usage_events", {"quantity": 0}),
    ("usage_daily", {"quantity": 0, "event_count": 1}),
    ("invoices", {"tax": 0, "total": 3100}),
    ("invoices", {"subtotal": -1000, "tax": 0, "total": -1000}),  # credit-only invoice
    ("invoices", {"subtotal": -3000, "tax": -300, "total": -3300}),  # proration credits
    ("invoices", {"tax": -10, "total": 3090}),
    ("invoices", {"status": "void", "voided_at": ts("2025-03-16")}),
    ("invoices", {"fx_rate": "1.0842"}),
    ("invoices", {"fx_rate": "0.5"}),
    ("invoices", {"fx_rate": "0.000001"}),
    ("invoices", {"fx_rate": "10"}),
    ("payments", {"fx_rate": "0.5"}),
    ("invoice_lines", {"amount": -3000, "tax_amount": -300, "proration": True}),
    ("invoice_lines", {"period_end": ts("2025-03-15T00:00:00.001")}),
    # a one-off item carries its day of service, never an empty period (see the doc)
    (
        "invoice_lines",
        {
            "line_type": "invoiceitem",
            "subscription_item_id": None,
            "period_start": ts("2025-03-15"),
            "period_end": ts("2025-03-16"),
        },
    ),
    ("credit_notes", {"type": "pre_payment", "refund_amount": 0}),  # reduces amount due
    ("credit_notes", {"type": "pre_payment", "refund_amount": 600, "credit_balance_amount": 500}),
    ("credit_notes", {"refund_amount": 0, "credit_balance_amount": 1100}),
    ("credit_notes", {"refund_amount": 0, "out_of_band_amount": 1100}),
    ("credit_notes", {"status": "void", "voided_at": ts("2025-03-21")}),
    ("credit_note_lines", {"amount": 0, "tax_amount": 0}),
    # a prospective credit (Chargebee's future discount) carries its service period
    ("credit_note_lines", {"period_start": ts("2025-04-01"), "period_end": ts("2025-05-01")}),
    ("invoices", {"balance_applied": 1100}),  # part of the total paid from credit balance
    ("invoices", {"balance_applied": 3410}),  # all of it
    ("payments", {"kind": "refund", "invoice_id": None, "credit_note_id": "cn_1", "amount": 1}),
    ("payments", {"status": "failed"}),
    ("legal_entities", {"entity_id": "DE", "recognition_method": "millisecond"}),
    ("legal_entities", {"entity_id": "ABCDEFGHIJ12", "recognition_method": "month"}),
]
ACCEPTED += [
    (ot, {name: None})
    for ot in sorted(OBJECTS)
    for name, col in schema_columns(ot).items()
    if col.nullable
]


def _accepted_row(i: int) -> dict[str, Any]:
    """Row of ACCEPTED[i]: n distinct within its object, 1 is the plain valid record."""
    ot, change = ACCEPTED[i]
    n = 2 + sum(1 for o, _ in ACCEPTED[:i] if o == ot)
    return {**BUILDERS[ot](n), **change}


@functools.cache
def _validated_accepted(object_type: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """split_valid over the valid record 1 and every ACCEPTED row of the object, together."""
    rows = [BUILDERS[object_type](1)]
    rows += [_accepted_row(i) for i, (ot, _) in enumerate(ACCEPTED) if ot == object_type]
    return split_valid(frame(object_type, rows), OBJECTS[object_type], object_type)


@pytest.mark.parametrize(
    "i",
    range(len(ACCEPTED)),
    ids=[f"{ot}:{','.join(f'{k}={v}' for k, v in ch.items())}" for ot, ch in ACCEPTED],
)
def test_boundary_and_nullable_values_are_accepted(i: int) -> None:
    ot = ACCEPTED[i][0]
    good, exceptions = _validated_accepted(ot)
    source_id = _accepted_row(i)[SOURCE_ID[ot]]
    mine = _exceptions_of(exceptions, source_id)
    assert mine.empty, mine[["rule", "message"]].to_dict("records")
    assert source_id in set(good[SOURCE_ID[ot]])


def test_accepted_rows_all_go_on(object_type: str) -> None:
    good, exceptions = _validated_accepted(object_type)
    assert exceptions.empty, exceptions[["source_id", "rule", "message"]].to_dict("records")
    assert len(good) == 1 + sum(1 for ot, _ in ACCEPTED if ot == object_type)


# --------------------------------------------------------------------------------------------
# Feed-level failures, strict="filter", currencies, version
# --------------------------------------------------------------------------------------------


def _optional(ot: str, name: str) -> bool:
    """A column a feed may leave out: it has a default, or is a nullable column added by a
    minor contract version (OPTIONAL_COLUMNS)."""
    col = schema_columns(ot)[name]
    return col.default is not None or (col.nullable and name in OPTIONAL_COLUMNS)


# every column of every object; the partition columns every partitioned model inherits from
# the same base are dropped from one partitioned object only
MISSING = [
    (ot, name)
    for ot in sorted(OBJECTS)
    for name in schema_columns(ot)
    if (ot == "invoices" or ot not in PARTITIONED or name not in ("entity_id", "period"))
    and not _optional(ot, name)
]


@pytest.mark.parametrize(("ot", "column"), MISSING, ids=[f"{o}:{c}" for o, c in MISSING])
def test_missing_column_fails_the_feed_naming_the_column(ot: str, column: str) -> None:
    df = frame(ot, [BUILDERS[ot](1), BUILDERS[ot](2)]).drop(columns=column)
    model = OBJECTS[ot]
    with pytest.raises(ValueError, match=rf"\b{re.escape(column)}\b") as err:
        split_valid(df, model, ot)
    assert ot in str(err.value)
    assert model.__name__ in str(err.value)


def test_optional_columns_left_out_of_a_feed_are_null_or_their_default() -> None:
    df = frame("invoices", [invoice(1)]).drop(columns=["uncollectible_at", "balance_applied"])
    good, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert exceptions.empty
    assert good["uncollectible_at"].isna().all()
    assert good["balance_applied"].tolist() == [0]


def test_missing_column_fails_even_an_empty_feed() -> None:
    df = frame("payments", [payment(1)]).iloc[0:0].drop(columns="amount")
    with pytest.raises(ValueError, match=r"\bamount\b"):
        split_valid(df, MODELS["payments"], "payments")


def test_columns_are_returned_with_contract_dtypes() -> None:
    rows = [invoice(1), invoice(2)]
    df = pd.DataFrame(rows).astype({"subtotal": "int32", "tax": "int32", "total": "int32"})
    good, _ = split_valid(df, MODELS["invoices"], "invoices")
    assert str(good["subtotal"].dtype) == "int64"
    assert str(good["finalized_at"].dtype) == "datetime64[ns, UTC]"
    assert str(good["voided_at"].dtype) == "datetime64[ns, UTC]"


def test_unparseable_timestamp_in_one_record_is_quarantined() -> None:
    df = pd.DataFrame([invoice(1), {**invoice(2), "finalized_at": "not a date"}])
    good, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert good["invoice_id"].tolist() == ["in_1"]
    assert "finalized_at.coerce_dtype" in set(exceptions["rule"])
    assert set(exceptions["source_id"]) == {"in_2"}


@pytest.mark.parametrize("nulls", ["boolean", "object"])
@pytest.mark.parametrize(("ot", "column"), BOOLEAN_COLUMNS)
def test_null_boolean_is_quarantined_not_read_as_false(ot: str, column: str, nulls: str) -> None:
    """A missing flag fails not_nullable, whether it comes as pandas NA or as a None."""
    df = frame(ot, [BUILDERS[ot](1), BUILDERS[ot](2)])
    df[column] = pd.Series([False, None], dtype=nulls)
    good, exceptions = split_valid(df, OBJECTS[ot], ot)
    assert good[SOURCE_ID[ot]].tolist() == [BUILDERS[ot](1)[SOURCE_ID[ot]]]
    assert exceptions["rule"].tolist() == [f"{column}.not_nullable"]
    assert exceptions["source_id"].tolist() == [BUILDERS[ot](2)[SOURCE_ID[ot]]]


@pytest.mark.parametrize(("ot", "column"), BOOLEAN_COLUMNS)
def test_numpy_bool_column_is_valid_and_returned_as_nullable_boolean(ot: str, column: str) -> None:
    df = pd.DataFrame([{**BUILDERS[ot](1), column: True}, {**BUILDERS[ot](2), column: False}])
    assert str(df[column].dtype) == "bool"
    good, exceptions = split_valid(df, OBJECTS[ot], ot)
    assert exceptions.empty
    assert str(good[column].dtype) == "boolean"
    assert good[column].tolist() == [True, False]


@pytest.mark.parametrize("text", ["false", "true", "0", "no"])
def test_boolean_text_is_not_read_as_a_flag(text: str) -> None:
    rows = [subscription_contract(1), {**subscription_contract(2), "metered": text}]
    good, exceptions = split_valid(
        pd.DataFrame(rows), MODELS["subscription_contracts"], "subscription_contracts"
    )
    assert good["contract_id"].tolist() == ["sub_1"]
    assert not good["metered"].iloc[0]
    assert set(exceptions["source_id"]) == {"sub_2"}
    assert {rule.split(".")[0] for rule in exceptions["rule"]} == {"metered"}


def test_fractional_money_is_quarantined_not_truncated() -> None:
    df = pd.DataFrame([invoice(1), {**invoice(2), "subtotal": 3100.5, "total": 3410.5}])
    good, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert good["invoice_id"].tolist() == ["in_1"]
    assert good["subtotal"].tolist() == [3100]
    assert str(good["subtotal"].dtype) == "int64"
    # the record is held back at its first integer failure, reported once
    assert exceptions[["source_id", "rule"]].values.tolist() == [["in_2", "subtotal.integer"]]
    assert exceptions["message"].item().endswith("got 3100.5")


def test_non_numeric_money_in_one_record_is_quarantined() -> None:
    df = pd.DataFrame([invoice(1), {**invoice(2), "subtotal": "abc"}])
    good, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert good["invoice_id"].tolist() == ["in_1"]
    assert str(good["subtotal"].dtype) == "int64"
    assert exceptions[["source_id", "rule"]].values.tolist() == [["in_2", "subtotal.integer"]]
    assert exceptions["message"].item().endswith("got 'abc'")


@pytest.mark.parametrize("dtype", ["Int64", "float64"])
def test_null_integer_input_is_checked_and_returned_as_int64(dtype: str) -> None:
    """The file-drop reader hands integers over as pandas 'Int64' (NA for an empty field); a
    connector's frame may have them as float64 (NaN)."""
    df = frame("invoices", [invoice(1), invoice(2), invoice(3)])
    df["subtotal"] = pd.Series([3100, None, 3100], dtype=dtype)
    good, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert good["invoice_id"].tolist() == ["in_1", "in_3"]
    assert str(good["subtotal"].dtype) == "int64"
    assert exceptions[["source_id", "rule"]].values.tolist() == [["in_2", "subtotal.not_nullable"]]


def test_whole_float_money_is_accepted_as_integer() -> None:
    df = pd.DataFrame([invoice(1), {**invoice(2), "subtotal": 3100.0, "total": 3410.0}])
    assert str(df["subtotal"].dtype) == "float64"
    good, exceptions = split_valid(df, MODELS["invoices"], "invoices")
    assert exceptions.empty
    assert str(good["subtotal"].dtype) == "int64"
    assert good["total"].tolist() == [3410, 3410]


NON_ISO_CODES = ["XXX", "usd", "US", "USDT", "", "EURO"]


def test_non_iso_4217_currency_is_rejected() -> None:
    rows = [invoice(1)] + [{**invoice(n), "currency": c} for n, c in enumerate(NON_ISO_CODES, 2)]
    good, exceptions = split_valid(frame("invoices", rows), MODELS["invoices"], "invoices")
    assert good["invoice_id"].tolist() == ["in_1"]
    assert exceptions["rule"].tolist() == ["currency.isin"] * len(NON_ISO_CODES)
    assert sorted(exceptions["source_id"]) == sorted(r["invoice_id"] for r in rows[1:])
    rows = [legal_entity(1)] + [
        {**legal_entity(n), "functional_currency": c} for n, c in enumerate(NON_ISO_CODES, 2)
    ]
    good, exceptions = split_valid(
        frame("legal_entities", rows), MODELS["legal_entities"], "legal_entities"
    )
    assert good["entity_id"].tolist() == ["US01"]
    assert exceptions["rule"].tolist() == ["functional_currency.isin"] * len(NON_ISO_CODES)


@pytest.mark.parametrize(("code", "digits", "minor"), [("JPY", 0, 3410), ("KWD", 3, 3410000)])
def test_zero_and_three_decimal_currencies_are_accepted(code: str, digits: int, minor: int) -> None:
    # 3,410 JPY is 3410 minor units; 3,410.000 KWD is 3410000 minor units
    assert exponent(code) == digits
    tax = minor // 11
    row = {**invoice(2), "currency": code, "subtotal": minor - tax, "tax": tax, "total": minor}
    good, exceptions = split_valid(
        frame("invoices", [invoice(1), row]), MODELS["invoices"], "invoices"
    )
    assert exceptions.empty
    assert good.loc[good["invoice_id"] == "in_2", "total"].item() == minor


SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def test_contract_version_is_semver() -> None:
    assert isinstance(CONTRACT_VERSION, str)
    assert SEMVER.match(CONTRACT_VERSION), CONTRACT_VERSION


# --------------------------------------------------------------------------------------------
# The worked file-drop example in docs/data-contract.md is itself contract-valid
# --------------------------------------------------------------------------------------------

PERIOD_FROM = {"invoices": "finalized_at", "payments": "created_at"}


def _doc_csv_files() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    return dict(re.findall(r"`(\w+)\.csv`\s*\n+```csv\n(.*?)```", text, flags=re.S))


def _parse_csv(object_type: str, text: str) -> pd.DataFrame:
    """A minimal reading of the documented file format (not the production reader)."""
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    columns = schema_columns(object_type)
    assert set(raw.columns) == set(columns) - {"period"}, object_type
    df = raw.replace({"": None})
    for name in raw.columns:
        dtype = str(columns[name].dtype)
        if dtype.startswith("datetime64"):
            assert df[name].dropna().str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
            df[name] = pd.to_datetime(df[name], utc=True)
        elif dtype == "int64":
            df[name] = df[name].map(int)
        elif dtype == "boolean":
            df[name] = df[name].map({"true": True, "false": False}).astype("boolean")
    return df


def _month_start(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.dt.strftime("%Y-%m-01"), utc=True)


def test_documented_file_drop_example_is_valid() -> None:
    files = _doc_csv_files()
    assert set(files) == {"invoices", "invoice_lines", "payments"}
    dfs = {ot: _parse_csv(ot, text) for ot, text in files.items()}
    for ot, col in PERIOD_FROM.items():
        dfs[ot]["period"] = _month_start(dfs[ot][col])
    header_period = dfs["invoices"].set_index("invoice_id")["period"]
    dfs["invoice_lines"]["period"] = dfs["invoice_lines"]["invoice_id"].map(header_period)
    for ot, df in dfs.items():
        good, exceptions = split_valid(df, MODELS[ot], ot)
        assert exceptions.empty, (ot, exceptions.to_dict("records"))
        assert len(good) == len(df)
    inv, lines, pay = dfs["invoices"], dfs["invoice_lines"], dfs["payments"]
    assert (lines["line_key"] == lines["invoice_id"] + "/" + lines["line_id"]).all()
    assert lines["amount"].sum() == inv["subtotal"].sum()
    assert lines["tax_amount"].sum() == inv["tax"].sum()
    assert pay["amount"].sum() == inv["total"].sum()


def test_document_states_the_current_contract_version() -> None:
    assert f"**Contract version: {CONTRACT_VERSION}**" in DOC.read_text(encoding="utf-8")
