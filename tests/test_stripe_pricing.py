"""Stripe pricing features the normalizer meets are applied exactly or quarantined with the
field named (``sync_core.stripe.pricing``), on Stripe's published shapes (tests/fixtures/stripe:
``price``, ``line_item``, ``discount``) with the fields each case needs set.

Figures: Stripe's ``transform_quantity`` (2,500 units by 1,000, rounded up, at 5.00 a package:
15.00) and Stripe's tiered-pricing example (1-5 fonts at 7.00, 6-10 at 6.50, 11+ at 6.00:
6 fonts are 41.50 graduated, 39.00 volume).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.bench_microbatch import stripe_invoice
from sync_core.stripe.normalize import RULE_REQUIRED, RULE_UNSUPPORTED, normalize_all
from sync_core.stripe.pricing import PriceError, billed_packages, tiered_amount

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
FONTS = [  # Stripe's tiered-pricing example, USD cents
    {"up_to": 5, "unit_amount": 700, "flat_amount": None},
    {"up_to": 10, "unit_amount": 650, "flat_amount": None},
    {"up_to": None, "unit_amount": 600, "flat_amount": None},
]
FLAT = [  # a base fee per tier: 10.00 with the first 5 units at 5.00, then 2.00 + 4.00 a unit
    {"up_to": 5, "unit_amount": 500, "flat_amount": 1000},
    {"up_to": "inf", "unit_amount": 400, "flat_amount": 200},
]


def fixture(name: str) -> dict:
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def price(*, unit=500, transform=None, tiers=None, mode=None, usage="licensed") -> dict:
    p = fixture("price")
    p.update(id="price_1", product="prod_1", unit_amount=unit, transform_quantity=transform,
             unit_amount_decimal=None if unit is None else str(unit),
             billing_scheme="tiered" if tiers else "per_unit", tiers_mode=mode)  # fmt: skip
    p["recurring"]["usage_type"] = usage
    if tiers is not None:
        p["tiers"] = tiers
    return p


def subscription(p: dict, quantity: int | None) -> dict:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "start_date": T0,
        "currency": "usd",
        "metadata": {"legal_entity": "US01"},
        "items": {"data": [{"id": "si_1", "created": T0, "quantity": quantity, "price": p}]},
    }


def contract(p: dict, quantity: int | None = 1):
    out = normalize_all(subscriptions=[subscription(p, quantity)])
    rows = out.subscription_contracts
    return (rows.iloc[0] if len(rows) else None), out


def quarantined(out, source_id: str) -> tuple[str, str]:
    q = out.quarantine.set_index("source_id").loc[source_id]
    return q["rule"], q["message"]


# ------------------------------------------------------------------------ transform_quantity


def test_transform_quantity_rounded_up_bills_whole_packages():
    row, out = contract(price(transform={"divide_by": 1000, "round": "up"}), 2500)
    assert out.quarantine.empty, out.quarantine
    assert (row["unit_amount"], row["quantity"]) == (500, 3)  # 3 packages of 1,000 units
    assert row["unit_amount"] * row["quantity"] == 1_500  # not 2,500 x 500 = 1,250,000
    assert out.notes["kind"].tolist() == ["adjusted"]
    assert out.notes["message"].iloc[0].startswith("price.transform_quantity: 2500 units")


def test_transform_quantity_rounded_down():
    row, _ = contract(price(transform={"divide_by": 1000, "round": "down"}), 2500)
    assert (row["unit_amount"], row["quantity"]) == (500, 2)
    assert row["unit_amount"] * row["quantity"] == 1_000


def test_billed_packages():
    assert billed_packages(2500, {"divide_by": 1000, "round": "up"}, "t") == 3
    assert billed_packages(2000, {"divide_by": 1000, "round": "up"}, "t") == 2
    assert billed_packages(2999, {"divide_by": 1000, "round": "down"}, "t") == 2
    with pytest.raises(PriceError, match="t.round"):
        billed_packages(1, {"divide_by": 10, "round": "nearest"}, "t")


def test_transform_quantity_on_a_metered_price_is_quarantined():
    p = price(transform={"divide_by": 1000, "round": "up"}, usage="metered")
    row, out = contract(p, None)
    assert row is None
    rule, message = quarantined(out, "si_1")
    assert rule == RULE_UNSUPPORTED and message.startswith("price.transform_quantity: ")


# ------------------------------------------------------------------------ tiers


def test_tiered_amounts_of_stripe_s_example():
    assert tiered_amount(FONTS, "graduated", 6) == 4_150  # 5 x 7.00 + 1 x 6.50
    assert tiered_amount(FONTS, "volume", 6) == 3_900  # 6 x 6.50
    assert tiered_amount(FONTS, "volume", 25) == 15_000
    assert tiered_amount(FONTS, "graduated", 12) == 7_950  # 35.00 + 32.50 + 12.00


def test_tiered_amounts_with_flat_amounts():
    assert tiered_amount(FLAT, "graduated", 8) == 4_900  # 10.00 + 25.00 | 2.00 + 12.00
    assert tiered_amount(FLAT, "graduated", 10) == 5_700
    assert tiered_amount(FLAT, "volume", 10) == 4_200  # 10 x 4.00 + 2.00
    assert tiered_amount(FLAT, "volume", 5) == 3_500  # 5 x 5.00 + 10.00


def test_a_graduated_tier_with_a_flat_amount_is_applied_to_the_contract():
    row, out = contract(price(unit=None, tiers=FLAT, mode="graduated"), 10)
    assert out.quarantine.empty, out.quarantine
    assert (row["unit_amount"], row["quantity"]) == (570, 10)  # 57.00 for 10 units
    assert out.notes["message"].tolist() == [
        "price.tiers: graduated tiers bill 5700 for 10 units, unit_amount 570"
    ]


def test_a_volume_tier_with_a_flat_amount_is_applied_to_the_contract():
    row, _ = contract(price(unit=None, tiers=FLAT, mode="volume"), 10)
    assert (row["unit_amount"], row["quantity"]) == (420, 10)


def test_a_tiered_amount_that_is_not_a_whole_unit_amount_is_quarantined():
    row, out = contract(price(unit=None, tiers=FLAT, mode="graduated"), 8)  # 49.00 / 8
    assert row is None
    rule, message = quarantined(out, "si_1")
    assert rule == RULE_UNSUPPORTED
    assert message.startswith("price.tiers: graduated tiers bill 4900 for 8 units")


def test_metered_tiers_keep_the_first_tier_price_unless_a_tier_is_flat():
    row, out = contract(price(unit=None, tiers=FONTS, mode="graduated", usage="metered"), None)
    assert out.quarantine.empty and (row["unit_amount"], row["quantity"]) == (700, 0)
    row, out = contract(price(unit=None, tiers=FLAT, mode="graduated", usage="metered"), None)
    assert row is None
    rule, message = quarantined(out, "si_1")
    assert rule == RULE_UNSUPPORTED and message.startswith("price.tiers[0].flat_amount: ")


def test_tiers_without_their_list_and_tiers_with_a_transform_are_quarantined():
    p = price(unit=None, mode="graduated")
    p["billing_scheme"] = "tiered"  # an event's price: tiers are never embedded
    _, out = contract(p, 3)
    assert quarantined(out, "si_1") == (
        RULE_REQUIRED, "price.tiers: missing (a tiered price needs its tiers)")  # fmt: skip
    p = price(unit=None, tiers=FONTS, mode="volume", transform={"divide_by": 10, "round": "up"})
    _, out = contract(p, 3)
    assert quarantined(out, "si_1")[1].startswith("price.transform_quantity: combined with tiers")


# ------------------------------------------------------------------------ line discounts


def line(amount=1000, **fields) -> dict:
    ln = fixture("line_item")
    ln.update(id="il_1", amount=amount, currency="usd", period={"start": T0, "end": T0 + 31 * DAY},
              pricing={"type": "price_details", "price_details": {"price": "price_1",
                                                                 "product": "prod_1"}},
              taxes=[], **fields)  # fmt: skip
    ln["parent"]["type"] = "subscription_item_details"
    return ln


def invoice_of(ln: dict, total: int) -> dict:
    inv = stripe_invoice("in_1", "cus_1", T0, lines=[ln])
    inv.update(total=total, subtotal=total)
    return inv


def discount() -> dict:
    d = fixture("discount")
    d.update(id="di_1", invoice="in_1", customer="cus_1")
    return d


def test_a_discounted_line_s_net_amount():
    ln = line(discounts=[discount()], discount_amounts=[{"amount": 250, "discount": "di_1"}],
              pretax_credit_amounts=[{"type": "discount", "amount": 250, "discount": discount(),
                                      "credit_balance_transaction": None}])  # fmt: skip
    out = normalize_all(invoices=[invoice_of(ln, 750)])
    assert out.quarantine.empty, out.quarantine
    assert out.invoice_lines["amount"].tolist() == [750]  # 10.00 less 2.50
    assert out.invoices["subtotal"].tolist() == [750]


def test_a_legacy_line_with_discount_amounts_only():
    ln = line(discounts=["di_1"], discount_amounts=[{"amount": 250, "discount": "di_1"}],
              pretax_credit_amounts=None)  # fmt: skip
    out = normalize_all(invoices=[invoice_of(ln, 750)])
    assert out.invoice_lines["amount"].tolist() == [750]


@pytest.mark.parametrize(
    "fields, rule, message",
    [
        (
            {"pretax_credit_amounts": [{"type": "credit_balance_transaction", "amount": 250,
                                        "credit_balance_transaction": "cbtxn_1"}]},
            RULE_UNSUPPORTED,
            "pretax_credit_amounts[].credit_balance_transaction: billing credits",
        ),
        (
            {"discount_amounts": [{"amount": 300, "discount": "di_1"}],
             "pretax_credit_amounts": [{"type": "discount", "amount": 250, "discount": "di_1"}]},
            RULE_UNSUPPORTED,
            "discount_amounts: sum 300 differs from the discounts in pretax_credit_amounts (250)",
        ),
        (
            {"discounts": ["di_1"], "discount_amounts": None, "pretax_credit_amounts": None},
            RULE_REQUIRED,
            "discount_amounts: the line names discounts but not their amounts",
        ),
    ],
)  # fmt: skip
def test_line_credits_that_cannot_be_expressed_quarantine_the_invoice(fields, rule, message):
    out = normalize_all(invoices=[invoice_of(line(**fields), 750)])
    assert out.invoices.empty and out.invoice_lines.empty
    got_rule, got = quarantined(out, "in_1/il_1")
    assert got_rule == rule and got.startswith(message)
    assert quarantined(out, "in_1")[0] == "lines_valid"


@pytest.mark.parametrize("name", ["price", "line_item", "discount"])
def test_the_vendored_fixtures_are_stripes_objects(name):
    obj = fixture(name)
    assert obj["object"] == name and obj["id"]
