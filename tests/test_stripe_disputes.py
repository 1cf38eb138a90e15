"""The Stripe normalizer maps the contract 1.1 fields: disputes, invoice ``uncollectible_at`` and
``balance_applied``, on Stripe's published object shapes (tests/fixtures/stripe, vendored from
stripe/openapi fixtures3.json) with the fields each case needs set to literal figures.

Figures: Stripe's customer balance example (a 31.00 USD invoice, 11.00 of credit balance
applied, 20.00 paid) and Stripe's 15.00 USD dispute fee.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from sync_core.stripe.currencies import RULE_MINOR_UNITS
from sync_core.stripe.normalize import RULE_REQUIRED, normalize_all

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400


def fixture(name: str) -> dict:
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def charge(currency: str = "usd", amount: int = 3100) -> dict:
    ch = fixture("charge")
    ch.update(id="ch_1", amount=amount, currency=currency, customer="cus_1", invoice="in_1",
              created=T0 + DAY, status="succeeded", captured=True,
              amount_captured=amount)  # fmt: skip
    return ch


def dispute(status: str, *, amount: int = 3100, currency: str = "usd", bts=()) -> dict:
    d = fixture("dispute")
    d.update(id="dp_1", charge="ch_1", amount=amount, currency=currency, status=status,
             created=T0 + 10 * DAY, balance_transactions=list(bts))  # fmt: skip
    return d


def balance_transaction(amount: int, fee: int, created: int, currency: str = "usd") -> dict:
    bt = fixture("balance_transaction")
    bt.update(amount=amount, fee=fee, net=amount - fee, created=created, currency=currency,
              type="adjustment", reporting_category="dispute", source="dp_1")  # fmt: skip
    return bt


def closed_event(created: int) -> dict:
    ev = fixture("event")
    ev.update(id="evt_closed", type="charge.dispute.closed", created=created)
    ev["data"] = {"object": dispute("lost")}
    return ev


def run(*disputes, events=(), currency="usd", amount=3100):
    return normalize_all(
        charges=[charge(currency, amount)], disputes=list(disputes), events=list(events),
        default_entity="US01",
    )  # fmt: skip


def row(out) -> dict:
    assert out.quarantine.empty, out.quarantine.to_dict("records")
    assert len(out.disputes) == 1
    return out.disputes.iloc[0].to_dict()


def test_a_lost_dispute_with_its_fee_and_close_event():
    withdrawal = balance_transaction(-3100, 1500, T0 + 10 * DAY)  # funds and the 15.00 fee
    out = run(dispute("lost", bts=[withdrawal]), events=[closed_event(T0 + 40 * DAY)])
    r = row(out)
    assert (r["dispute_id"], r["payment_id"], r["invoice_id"], r["customer_id"]) == (
        "dp_1", "ch_1", "in_1", "cus_1")  # fmt: skip
    assert (r["amount"], r["currency"], r["fee"], r["fee_currency"]) == (3100, "USD", 1500, "USD")
    assert r["status"] == "lost"
    assert r["created_at"] == pd.Timestamp("2026-01-11", tz="UTC")
    assert r["closed_at"] == pd.Timestamp("2026-02-10", tz="UTC")


def test_an_inquiry_has_no_fee_and_no_close():
    r = row(run(fixture("dispute") | {"charge": "ch_1", "created": T0}))
    assert r["status"] == "warning_needs_response"  # the fixture's own status
    assert (r["amount"], r["fee"], r["fee_currency"]) == (1000, 0, "USD")
    assert pd.isna(r["closed_at"])


def test_a_won_dispute_closes_when_the_funds_come_back():
    bts = [balance_transaction(-3100, 1500, T0 + 10 * DAY),
           balance_transaction(3100, 0, T0 + 50 * DAY)]  # fmt: skip
    r = row(run(dispute("won", bts=bts)))
    assert r["fee"] == 1500
    assert r["closed_at"] == pd.Timestamp("2026-02-20", tz="UTC")


def test_a_lost_dispute_without_a_close_date_is_quarantined():
    out = run(dispute("lost", bts=[balance_transaction(-3100, 1500, T0 + 10 * DAY)]))
    assert out.disputes.empty
    q = out.quarantine.iloc[0]
    assert (q["object_type"], q["source_id"], q["rule"]) == ("disputes", "dp_1", RULE_REQUIRED)
    assert q["message"].startswith("closed_at: a lost dispute without its charge.dispute.closed")


def test_a_dispute_of_an_unknown_charge_is_quarantined():
    out = normalize_all(disputes=[dispute("needs_response")], default_entity="US01")
    q = out.quarantine.iloc[0]
    assert (q["source_id"], q["rule"]) == ("dp_1", RULE_REQUIRED)
    assert q["message"].startswith("charge: no customer")


def test_an_isk_dispute_in_iso_minor_units_with_its_usd_fee():
    bts = [balance_transaction(-7000, 1500, T0 + 10 * DAY)]  # settled in USD
    r = row(run(dispute("needs_response", amount=1_000_000, currency="isk", bts=bts),
                currency="isk", amount=1_000_000))  # fmt: skip
    assert (r["amount"], r["currency"]) == (10_000, "ISK")  # 10,000 ISK
    assert (r["fee"], r["fee_currency"]) == (1500, "USD")


def test_a_fractional_isk_dispute_is_quarantined():
    out = run(dispute("needs_response", amount=1_000_050, currency="isk"), currency="isk")
    assert out.disputes.empty
    assert out.quarantine["rule"].tolist() == [RULE_MINOR_UNITS]


# ----------------------------------------------------------------------------- invoices


def invoice(**changes) -> dict:
    inv = fixture("invoice")
    inv.update(status="open", total=3100, amount_due=2000, customer="cus_1", subscription=None,
               total_taxes=[], starting_balance=-1100, ending_balance=0)  # fmt: skip
    inv["status_transitions"] = {**inv["status_transitions"], "finalized_at": T0 + 14 * DAY}
    line = inv["lines"]["data"][0]
    line.update(amount=3100, period={"start": T0 + 14 * DAY, "end": T0 + 45 * DAY})
    line["pricing"]["price_details"] = {"price": "price_1", "product": "prod_1"}
    inv.update(changes)
    return inv


def test_customer_balance_applied_to_an_invoice():
    """31.00 invoice, the customer's 11.00 credit (balance -1100 -> 0) applied: 1100."""
    out = normalize_all(invoices=[invoice()], default_entity="US01")
    assert out.quarantine.empty, out.quarantine.to_dict("records")
    inv = out.invoices.iloc[0]
    assert (inv["total"], inv["balance_applied"]) == (3100, 1100)
    assert pd.isna(inv["uncollectible_at"])


def test_no_balance_fields_means_nothing_applied():
    out = normalize_all(invoices=[invoice(starting_balance=None, ending_balance=None)],
                        default_entity="US01")  # fmt: skip
    assert out.invoices.iloc[0]["balance_applied"] == 0


def test_an_isk_balance_applied_is_converted():
    inv = invoice(currency="isk", total=1_000_000, starting_balance=-300_000, ending_balance=0)
    inv["lines"]["data"][0].update(amount=1_000_000, currency="isk")
    out = normalize_all(invoices=[inv], default_entity="US01")
    row_ = out.invoices.iloc[0]
    assert (row_["total"], row_["balance_applied"]) == (10_000, 3_000)


def test_marked_uncollectible_at_becomes_uncollectible_at():
    inv = invoice(status="uncollectible")
    inv["status_transitions"]["marked_uncollectible_at"] = T0 + 60 * DAY
    out = normalize_all(invoices=[inv], default_entity="US01")
    assert out.invoices.iloc[0]["uncollectible_at"] == pd.Timestamp("2026-03-02", tz="UTC")


@pytest.mark.parametrize("name", ["dispute", "invoice", "charge", "balance_transaction", "event"])
def test_the_vendored_fixtures_are_stripes_objects(name):
    obj = fixture(name)
    assert obj["object"] == name and obj["id"]


def test_a_dispute_requests_its_months_and_the_disputed_invoice_s_remaining_service():
    from sync_core.stripe import landing

    withdrawal = balance_transaction(-3100, 1500, T0 + 10 * DAY)
    out = run(dispute("lost", bts=[withdrawal]), events=[closed_event(T0 + 40 * DAY)])
    # the mirror's annual invoice: service Jan 2026 - Jan 2027, disputed on Jan 11
    lines = pd.DataFrame({"line_key": ["in_1/il_1"], "invoice_id": ["in_1"],
                          "period_start": [pd.Timestamp("2026-01-01", tz="UTC")],
                          "period_end": [pd.Timestamp("2026-05-01", tz="UTC")]})  # fmt: skip
    by_doc = landing.affected_by_document(
        out, invoice_lines=lines, now=pd.Timestamp("2026-12-01", tz="UTC")
    )
    assert sorted(by_doc["dp_1"]) == [
        ("US01", "2026-01-01"), ("US01", "2026-02-01"), ("US01", "2026-03-01"),
        ("US01", "2026-04-01"),
    ]  # fmt: skip
