"""Stripe's minor units become ISO 4217 minor units at the normalizer boundary.

Rules and figures from docs.stripe.com/currencies ("Zero-decimal currencies", "Special
cases"): to charge 5 ISK or 5 UGX Stripe takes ``500`` (two decimals kept for backwards
compatibility, a multiple of 100); MGA is zero-decimal in Stripe (two-decimal in ISO 4217);
HUF and TWD charge two-decimal amounts but pay out only multiples of 100 (HUF 10.45 available
-> payout ``1000``; TWD 800.45 -> ``80000``); ``500`` is 500 JPY; ``1000`` is 10.00 USD.
"""

from __future__ import annotations

import pytest

from sync_core.stripe.currencies import (
    RULE_MINOR_UNITS,
    InexactAmount,
    stripe_units,
    to_iso,
    to_stripe,
)
from sync_core.stripe.normalize import normalize_all

FIN = 1_767_225_600  # 2026-01-01T00:00:00Z
START, END = FIN, FIN + 31 * 86_400


def line(lid: str, amount: int, currency: str, tax: int = 0) -> dict:
    """A current-shape (basil) subscription invoice line."""
    return {
        "id": lid,
        "object": "line_item",
        "amount": amount,
        "currency": currency.lower(),
        "parent": {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "subscription": "sub_1",
                "subscription_item": "si_1",
                "proration": False,
            },
        },
        "pricing": {"price_details": {"price": "price_1", "product": "prod_1"}},
        "taxes": [{"amount": tax, "tax_behavior": "exclusive"}] if tax else [],
        "quantity": 1,
        "period": {"start": START, "end": END},
    }


def invoice(iid: str, currency: str, total: int, tax: int = 0, lines=None) -> dict:
    return {
        "id": iid,
        "object": "invoice",
        "status": "open",
        "currency": currency.lower(),
        "customer": "cus_1",
        "subscription": "sub_1",
        "status_transitions": {"finalized_at": FIN},
        "amount_due": total,
        "total": total,
        "total_taxes": [{"amount": tax}] if tax else [],
        "lines": {"data": lines or [line(f"il_{iid}", total - tax, currency, tax)]},
        "metadata": {"legal_entity": "IS01"},
    }


def charge(cid: str, currency: str, amount: int) -> dict:
    return {
        "id": cid,
        "object": "charge",
        "status": "succeeded",
        "amount": amount,
        "currency": currency.lower(),
        "customer": "cus_1",
        "invoice": "in_isk",
        "created": FIN + 86_400,
        "metadata": {"legal_entity": "IS01"},
    }


def one(frame, column: str):
    assert len(frame) == 1, frame
    return int(frame[column].iloc[0])


# ------------------------------------------------------------------------- the table


def test_stripe_units_follow_the_special_cases():
    assert stripe_units("ISK").exponent == 2 and stripe_units("ISK").charge_multiple == 100
    assert stripe_units("UGX").exponent == 2 and stripe_units("UGX").charge_multiple == 100
    assert stripe_units("MGA").exponent == 0
    assert stripe_units("HUF").exponent == 2 and stripe_units("HUF").payout_multiple == 100
    assert stripe_units("TWD").exponent == 2 and stripe_units("TWD").payout_multiple == 100
    assert stripe_units("JPY").exponent == 0
    assert stripe_units("KWD").exponent == 3
    assert stripe_units("USD").exponent == 2


@pytest.mark.parametrize(
    ("currency", "stripe_amount", "iso_minor"),
    [
        ("ISK", 500, 5),  # "to charge 5 ISK, provide an amount value of 500"
        ("ISK", 1_000_000, 10_000),
        ("UGX", 500, 5),  # "to charge 5 UGX, provide an amount value of 500"
        ("MGA", 500, 50_000),  # 500 MGA, zero-decimal in Stripe, 2 decimals in ISO
        ("HUF", 1045, 1045),  # HUF 10.45 can be charged: two decimals, as ISO
        ("TWD", 80045, 80045),  # TWD 800.45 likewise
        ("JPY", 500, 500),  # "to charge 500 JPY, provide an amount value of 500"
        ("USD", 1000, 1000),  # "1000 to charge 10 USD"
        ("KWD", 5120, 5120),  # 5.120 KWD, three decimals in both
        ("ISK", -300, -3),  # a proration credit
    ],
)
def test_to_iso_converts_exactly(currency, stripe_amount, iso_minor):
    assert to_iso(stripe_amount, currency) == iso_minor
    assert to_stripe(iso_minor, currency) == stripe_amount


@pytest.mark.parametrize(
    ("currency", "stripe_amount"), [("ISK", 1_000_050), ("ISK", 45), ("UGX", 550), ("ISK", -150)]
)
def test_a_fraction_of_a_whole_unit_currency_is_refused_not_rounded(currency, stripe_amount):
    with pytest.raises(InexactAmount, match=f"Stripe {currency} amount {stripe_amount} is not"):
        to_iso(stripe_amount, currency, "total")


def test_huf_and_twd_payouts_must_be_whole_units():
    assert to_iso(1000, "HUF", payout=True) == 1000  # "pay out HUF 10 by submitting 1000"
    assert to_iso(80000, "TWD", payout=True) == 80000  # "pay out TWD 800 by submitting 80000"
    with pytest.raises(InexactAmount, match="HUF payout 1045 is not a multiple of 100"):
        to_iso(1045, "HUF", payout=True)
    with pytest.raises(InexactAmount, match="TWD payout 80045 is not a multiple of 100"):
        to_iso(80045, "TWD", payout=True)


def test_an_unknown_currency_passes_through_for_the_contract_to_reject():
    assert to_iso(123, "XYZ") == 123


# ------------------------------------------------------------------------- the normalizer


def test_isk_invoice_of_10000_kronur():
    """Stripe ISK ``amount_due: 1000000`` (10,000.00 in Stripe's two-decimal API) is 10000."""
    out = normalize_all(invoices=[invoice("in_isk", "ISK", 1_000_000)])
    assert out.quarantine.empty
    assert one(out.invoices, "total") == 10_000
    assert one(out.invoices, "subtotal") == 10_000
    assert one(out.invoice_lines, "amount") == 10_000


def test_isk_invoice_with_vat():
    """10,000 ISK + 24 % Icelandic VAT: Stripe total 1240000, tax 240000."""
    out = normalize_all(invoices=[invoice("in_vat", "ISK", 1_240_000, tax=240_000)])
    assert out.quarantine.empty
    assert one(out.invoices, "total") == 12_400
    assert one(out.invoices, "tax") == 2_400
    assert one(out.invoices, "subtotal") == 10_000
    assert one(out.invoice_lines, "amount") == 10_000
    assert one(out.invoice_lines, "tax_amount") == 2_400


def test_mga_invoice_is_multiplied_not_shrunk():
    """50,000 MGA: Stripe ``50000`` (zero-decimal) is ISO ``5000000`` (two decimals)."""
    out = normalize_all(invoices=[invoice("in_mga", "MGA", 50_000)])
    assert out.quarantine.empty
    assert one(out.invoices, "total") == 5_000_000
    assert one(out.invoice_lines, "amount") == 5_000_000


def test_huf_invoice_is_unchanged():
    out = normalize_all(invoices=[invoice("in_huf", "HUF", 1045)])
    assert one(out.invoices, "total") == 1045  # 10.45 HUF


def test_isk_invoice_with_a_fraction_is_quarantined_with_the_field_named():
    out = normalize_all(invoices=[invoice("in_frac", "ISK", 1_000_050)])
    assert out.invoices.empty and out.invoice_lines.empty
    q = out.quarantine.set_index("source_id")
    assert q.loc["in_frac", "rule"] == RULE_MINOR_UNITS
    assert q.loc["in_frac", "message"].startswith("subtotal: Stripe ISK amount 1000050 is not")
    assert q.loc["in_frac", "owner"]


def test_a_fractional_ugx_line_quarantines_its_whole_invoice():
    lines = [line("il_a", 100_000, "UGX"), line("il_b", 12_345, "UGX")]
    out = normalize_all(invoices=[invoice("in_ugx", "UGX", 112_400, lines=lines)])
    assert out.invoices.empty and out.invoice_lines.empty
    q = out.quarantine.set_index("source_id")
    assert q.loc["in_ugx/il_b", "rule"] == RULE_MINOR_UNITS
    assert q.loc["in_ugx/il_b", "message"].startswith("amount: Stripe UGX amount 12345 is not")
    assert q.loc["in_ugx", "rule"] == "lines_valid"
    assert q.loc["in_ugx/il_a", "rule"] == "header_quarantined"


def test_isk_credit_note_refund_and_charge():
    cn = {
        "id": "cn_isk",
        "object": "credit_note",
        "invoice": "in_isk",
        "customer": "cus_1",
        "currency": "isk",
        "type": "post_payment",
        "status": "issued",
        "created": FIN + 2 * 86_400,
        "total": 310_000,
        "total_taxes": [{"amount": 60_000}],
        "refunds": [{"refund": "re_isk", "amount_refunded": 310_000}],
        "lines": {
            "data": [
                {
                    "id": "cnli_1",
                    "type": "invoice_line_item",
                    "invoice_line_item": "il_in_isk",
                    "amount": 250_000,
                    "taxes": [{"amount": 60_000, "tax_behavior": "exclusive"}],
                }
            ]
        },
    }
    refund = {
        "id": "re_isk",
        "object": "refund",
        "status": "succeeded",
        "amount": 310_000,
        "currency": "isk",
        "charge": "ch_isk",
        "created": FIN + 2 * 86_400,
    }
    out = normalize_all(
        invoices=[invoice("in_isk", "ISK", 1_240_000, tax=240_000)],
        credit_notes=[cn],
        charges=[charge("ch_isk", "ISK", 1_240_000)],
        refunds=[refund],
    )
    assert out.quarantine.empty, out.quarantine
    assert one(out.credit_notes, "total") == 3_100
    assert one(out.credit_notes, "tax") == 600
    assert one(out.credit_notes, "subtotal") == 2_500
    assert one(out.credit_notes, "refund_amount") == 3_100
    assert one(out.credit_note_lines, "amount") == 2_500
    assert one(out.credit_note_lines, "tax_amount") == 600
    pays = out.payments.set_index("payment_id")
    assert int(pays.loc["ch_isk", "amount"]) == 12_400
    assert int(pays.loc["re_isk", "amount"]) == 3_100


def test_a_fractional_isk_charge_is_quarantined():
    out = normalize_all(charges=[charge("ch_frac", "ISK", 1_240_050)])
    assert out.payments.empty
    q = out.quarantine.set_index("source_id")
    assert q.loc["ch_frac", "rule"] == RULE_MINOR_UNITS
    assert q.loc["ch_frac", "message"].startswith("amount: Stripe ISK amount 1240050 is not")


def test_isk_price_unit_amount():
    sub = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "start_date": FIN,
        "currency": "isk",
        "metadata": {"legal_entity": "IS01"},
        "items": {
            "data": [
                {
                    "id": "si_1",
                    "created": FIN,
                    "quantity": 1,
                    "price": {
                        "id": "price_1",
                        "product": "prod_1",
                        "currency": "isk",
                        "unit_amount": 250_000,  # 2,500 ISK a month
                        "recurring": {"interval": "month", "interval_count": 1},
                    },
                }
            ]
        },
    }
    out = normalize_all(subscriptions=[sub])
    assert out.quarantine.empty
    assert one(out.subscription_contracts, "unit_amount") == 2_500
