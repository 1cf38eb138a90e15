"""The sandbox billing API's payment intents, balance transactions, payouts, invoice items and
prices, and an events feed that holds each object as it was at the event's time.

One sandbox of 60 subscriptions (seed 7), read over HTTP with plain ``requests`` and through
``BillingSandbox.objects``; the file drop it was built from is the reference."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from sandboxes.billing_api import BillingSandbox
from sandboxes.billing_api.balance import payout_day, stripe_fee
from sync_core.filedrop import read_object

AUTH = {"Authorization": "Bearer sk_test_x"}
DAY = 86_400


@pytest.fixture(scope="module")
def api():
    with BillingSandbox(subscriptions=60) as sandbox:
        yield sandbox


def get(api: BillingSandbox, path: str, **params) -> dict:
    r = requests.get(f"{api.url}{path}", params=params, headers=AUTH, timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def list_all(api: BillingSandbox, path: str, **params) -> list[dict]:
    out, after = [], None
    while True:
        page = get(api, path, limit=100, **params, **({"starting_after": after} if after else {}))
        assert page["object"] == "list"
        out += page["data"]
        if not page["has_more"]:
            return out
        after = page["data"][-1]["id"]


@pytest.fixture(scope="module")
def drop(api):
    """The file drop's payments: payment id -> record."""
    df = read_object(api.data_dir, "payments")
    return {r["payment_id"]: r for r in df.to_dict("records")}


@pytest.fixture(scope="module")
def events(api):
    return list(reversed(api.objects("events")))  # oldest first


# ------------------------------------------------------------------ payment intents


def test_a_pi_collected_invoice_links_intent_charge_invoice_payment_and_refund(api, drop):
    ips = list_all(api, "/v1/invoice_payments")
    by_pi = [ip for ip in ips if ip["payment"]["type"] == "payment_intent"]
    by_charge = [ip for ip in ips if ip["payment"]["type"] == "charge"]
    assert by_pi and by_charge and len(by_pi) > 2 * len(by_charge)  # most go through a PI
    for ip in by_pi[:25]:
        assert "charge" not in ip["payment"]  # Stripe names the intent instead
        pi = get(api, f"/v1/payment_intents/{ip['payment']['payment_intent']}")
        # the intent's id is the file drop's canonical payment id of that invoice
        rec = drop[pi["id"]]
        assert (rec["kind"], rec["invoice_id"], rec["status"]) == (
            "payment",
            ip["invoice"],
            "succeeded",
        )
        assert pi["object"] == "payment_intent" and pi["status"] == "succeeded"
        assert pi["amount"] == pi["amount_received"] == ip["amount_paid"] == rec["amount"]
        assert pi["latest_charge"] == "ch_" + pi["id"].removeprefix("py_")
        ch = get(api, f"/v1/charges/{pi['latest_charge']}")
        assert ch["payment_intent"] == pi["id"] and ch["status"] == "succeeded"
        assert ch["metadata"]["invoice_id"] == ip["invoice"] == pi["metadata"]["invoice_id"]
        assert pi["metadata"]["legal_entity"] == rec["entity_id"]
    for ip in by_charge:
        ch = get(api, f"/v1/charges/{ip['payment']['charge']}")
        assert ch["id"] in drop and ch["payment_intent"] is None
    # a refund of a PI-collected payment names both, as Stripe does
    refunds = [r for r in list_all(api, "/v1/refunds") if r["payment_intent"]]
    assert refunds
    for rf in refunds:
        assert rf["charge"] == "ch_" + rf["payment_intent"].removeprefix("py_")
        assert get(api, f"/v1/charges/{rf['charge']}")["payment_intent"] == rf["payment_intent"]
        assert get(api, "/v1/refunds", charge=rf["charge"])["data"][0]["id"] == rf["id"]
        assert drop[rf["payment_intent"]]["invoice_id"] == drop[rf["id"]]["invoice_id"]


def test_a_failed_attempt_leaves_its_intent_waiting_for_a_payment_method(api):
    failed = [pi for pi in api.objects("payment_intents") if pi["status"] != "succeeded"]
    assert failed
    for pi in failed:
        assert pi["status"] == "requires_payment_method" and pi["amount_received"] == 0
        ch = get(api, f"/v1/charges/{pi['latest_charge']}")
        assert ch["status"] == "failed" and ch["balance_transaction"] is None
        assert pi["last_payment_error"]["charge"] == ch["id"]


# ------------------------------------------------------------ balance and payouts


def test_fee_is_2_9_percent_half_up_plus_30():
    assert stripe_fee(10_000) == 320  # 290.0 + 30
    assert stripe_fee(500) == 45  # 14.5 -> 15, half up, + 30
    assert stripe_fee(499) == 44  # 14.471 -> 14, + 30
    assert stripe_fee(517) == 45  # 14.993 -> 15, + 30
    assert stripe_fee(1) == 30  # 0.029 -> 0, + 30


def test_a_charges_balance_transaction_has_the_fee_and_net(api):
    charges = [c for c in api.objects("charges") if c["amount"] == 1800 and c["paid"]]
    assert charges
    txn = get(api, f"/v1/balance_transactions/{charges[0]['balance_transaction']}")
    # 1,800 x 2.9 % = 52.2 -> 52, + 30 = 82; net 1,800 - 82 = 1,718
    assert (txn["amount"], txn["fee"], txn["net"]) == (1800, 82, 1718)
    assert txn["fee_details"] == [
        {
            "amount": 82,
            "application": None,
            "currency": charges[0]["currency"],
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    assert (txn["type"], txn["reporting_category"], txn["source"]) == (
        "charge",
        "charge",
        charges[0]["id"],
    )
    assert "payout" not in txn  # sandbox bookkeeping, not served
    refund = api.objects("refunds")[0]
    rt = get(api, f"/v1/balance_transactions/{refund['balance_transaction']}")
    assert (rt["amount"], rt["fee"], rt["net"]) == (-refund["amount"], 0, -refund["amount"])
    assert rt["fee_details"] == [] and rt["source"] == refund["id"]


def test_the_balance_transactions_of_a_payout_sum_to_its_amount(api):
    payouts = list_all(api, "/v1/payouts")
    assert payouts and {p["status"] for p in payouts} == {"paid"}
    assert list_all(api, "/v1/payouts", status="pending") == []
    for po in payouts[:12]:
        txns = list_all(api, "/v1/balance_transactions", payout=po["id"])
        own = [t for t in txns if t["type"] == "payout"]
        paid = [t for t in txns if t["type"] != "payout"]
        assert [t["id"] for t in own] == [po["balance_transaction"]]
        assert own[0]["amount"] == own[0]["net"] == -po["amount"] and po["amount"] > 0
        assert sum(t["net"] for t in paid) == po["amount"]
        assert {t["currency"] for t in txns} == {po["currency"]}
        created = dt.datetime.fromtimestamp(po["created"], dt.UTC)
        assert (created.weekday(), created.hour, created.minute) == (0, 0, 0)  # a Monday
        assert po["arrival_date"] == po["created"] + 2 * DAY and po["automatic"] is True
        assert all(t["available_on"] < po["created"] for t in paid)
        entities = set()
        for t in paid:
            src = get(api, f"/v1/{'charges' if t['type'] == 'charge' else 'refunds'}/{t['source']}")
            entities.add(src["metadata"]["legal_entity"])
        assert entities == {po["metadata"]["legal_entity"]}
    # every charge or refund transaction is paid out once, except the trailing ones of an
    # entity and currency whose sum is not positive (Stripe pays out no negative balance)
    stored = api.objects("balance_transactions")
    assert sum(t["net"] for t in stored if t["payout"] and t["type"] != "payout") == sum(
        p["amount"] for p in payouts
    )
    entity = {o["id"]: o["metadata"]["legal_entity"] for o in api.objects("charges")}
    entity |= {o["id"]: o["metadata"]["legal_entity"] for o in api.objects("refunds")}
    last_paid, unpaid = {}, {}
    for t in stored:
        if t["type"] == "payout":
            continue
        key = (entity[t["source"]], t["currency"])
        if t["payout"]:
            last_paid[key] = max(last_paid.get(key, 0), t["available_on"])
        else:
            unpaid.setdefault(key, []).append(t)
    for key, ts in unpaid.items():
        assert sum(t["net"] for t in ts) <= 0, key
        assert min(t["available_on"] for t in ts) > last_paid.get(key, 0), key


def test_payout_week_rule():
    # Wed 2025-01-08 12:00 UTC -> Mon 2025-01-13; Sun 2025-01-12 -> the same Monday;
    # Mon 2025-01-13 00:00 -> Mon 2025-01-20
    assert payout_day(1736337600) == 1736726400
    assert payout_day(1736726399) == 1736726400
    assert payout_day(1736726400) == 1737331200


def test_balance_transaction_filters(api):
    ch = next(c for c in api.objects("charges") if c["paid"])
    assert [t["id"] for t in get(api, "/v1/balance_transactions", source=ch["id"])["data"]] == [
        ch["balance_transaction"]
    ]
    payouts = list_all(api, "/v1/balance_transactions", type="payout")
    assert payouts and {t["type"] for t in payouts} == {"payout"}
    gbp = list_all(api, "/v1/balance_transactions", currency="gbp")
    assert gbp and {t["currency"] for t in gbp} == {"gbp"}


# ------------------------------------------------------------ invoice items, prices


def test_invoice_items_are_the_ones_the_lines_name(api):
    named = {}
    for inv in api.objects("invoices"):
        for ln in inv["lines"]["data"]:
            p = ln["parent"]
            ii = (p["subscription_item_details"] or p["invoice_item_details"] or {}).get(
                "invoice_item"
            )
            if ii:
                named[ii] = ln
    assert named
    items = list_all(api, "/v1/invoiceitems")
    assert {i["id"] for i in items} == set(named)
    for it in items:
        ln = named[it["id"]]
        assert it["object"] == "invoiceitem" and "created" not in it
        assert (it["invoice"], it["amount"], it["currency"], it["period"]) == (
            ln["invoice"],
            ln["amount"],
            ln["currency"],
            ln["period"],
        )
        assert it["proration"] is True and it["discountable"] is False
        assert it["pricing"]["price_details"] == ln["pricing"]["price_details"]


def test_prices_list_and_retrieve(api):
    prices = list_all(api, "/v1/prices")
    assert prices and all("tiers" not in p for p in prices)
    used = {i["price"]["id"] for s in api.objects("subscriptions") for i in s["items"]["data"]}
    assert used <= {p["id"] for p in prices}
    metered = next(p for p in prices if p["billing_scheme"] == "tiered")
    assert "tiers" not in get(api, f"/v1/prices/{metered['id']}")
    assert len(get(api, f"/v1/prices/{metered['id']}", **{"expand[]": "tiers"})["tiers"]) == 2
    usd = list_all(api, "/v1/prices", currency="usd")
    assert usd and {p["currency"] for p in usd} == {"usd"}


@pytest.mark.parametrize(
    "name", ["payment_intents", "balance_transactions", "payouts", "invoiceitems", "prices"]
)
def test_new_list_endpoints_page(api, name):
    ids = [o["id"] for o in list_all(api, f"/v1/{name}")]
    assert len(ids) > 3 and ids == api.ids(name)
    small = get(api, f"/v1/{name}", limit=3)
    assert small["has_more"] and [o["id"] for o in small["data"]] == ids[:3]
    back = get(api, f"/v1/{name}", limit=2, ending_before=ids[3])
    assert [o["id"] for o in back["data"]] == ids[1:3]
    assert get(api, f"/v1/{name}/{ids[0]}")["id"] == ids[0]


# ------------------------------------------------------------ events at their time


def test_subscription_created_events_show_the_subscription_as_created(api, events):
    contracts = read_object(api.data_dir, "subscription_contracts")
    first = contracts[contracts["version"] == 1].set_index("contract_id")["price_id"].to_dict()
    created = [e for e in events if e["type"] == "customer.subscription.created"]
    assert len(created) == 60
    canceled_now = {s["id"] for s in api.objects("subscriptions") if s["status"] == "canceled"}
    invoiced = {i["id"]: i["created"] for i in api.objects("invoices")}
    assert canceled_now  # the served state differs from the created one for these
    for e in created:
        sub = e["data"]["object"]
        assert sub["status"] in ("active", "trialing") and sub["canceled_at"] is None
        assert sub["created"] == e["created"]
        assert sub["latest_invoice"] is None or invoiced[sub["latest_invoice"]] <= e["created"]
        assert {i["id"]: i["price"]["id"] for i in sub["items"]["data"]} == {
            i["id"]: first[i["id"]] for i in sub["items"]["data"]
        }
        assert "previous_attributes" not in e["data"]


def test_updated_events_carry_previous_attributes_and_deleted_the_canceled_state(api, events):
    last: dict[str, dict] = {}
    updated = deleted = 0
    for e in events:
        if not e["type"].startswith("customer.subscription."):
            assert e["type"].endswith(".updated") or "previous_attributes" not in e["data"]
            continue
        sub = e["data"]["object"]
        if e["type"] == "customer.subscription.updated":
            prev = e["data"]["previous_attributes"]
            assert prev, e["id"]
            for k, v in prev.items():
                assert v == last[sub["id"]][k] != sub[k], (e["id"], k)
            updated += 1
        elif e["type"] == "customer.subscription.deleted":
            assert sub["status"] == "canceled" and sub["canceled_at"] == e["created"]
            assert last[sub["id"]]["status"] != "canceled"
            deleted += 1
        last[sub["id"]] = sub
    assert updated and deleted
    final = {s["id"]: s for s in api.objects("subscriptions")}
    assert {k: v["status"] for k, v in last.items()} == {k: s["status"] for k, s in final.items()}


def test_invoice_events_show_the_invoice_then(api, events):
    for e in events:
        inv = e["data"]["object"]
        if e["type"] == "invoice.finalized":
            assert (inv["status"], inv["amount_paid"], inv["attempted"]) == ("open", 0, False)
        elif e["type"] == "invoice.paid":
            assert inv["status"] == "paid" and inv["amount_remaining"] == 0
        elif e["type"] == "invoice.updated":
            prev = e["data"]["previous_attributes"]
            assert prev["status"] == "open" and inv["status"] != "open"


def test_invoice_payment_and_payment_intent_events(api, events):
    paid = [e for e in events if e["type"] == "invoice_payment.paid"]
    assert {e["data"]["object"]["id"] for e in paid} == set(api.ids("invoice_payments"))
    served = list_all(api, "/v1/events", type="invoice_payment.*")
    assert len(served) == len(paid)
    intents = {e["data"]["object"]["id"] for e in events if e["type"].startswith("payment_in")}
    assert intents == set(api.ids("payment_intents"))
    po = [e for e in events if e["type"] == "payout.created"]
    assert po and {e["data"]["object"]["status"] for e in po} == {"pending"}
