"""The Stripe client against the sandbox billing API: paging, retries, checkpoints, nested
lines, the events hook, and a round trip demo files -> Stripe JSON -> canonical frames."""

from __future__ import annotations

import json
import logging
import time

import pandas as pd
import pytest
import requests

from sandboxes.billing_api import BillingSandbox
from sync_core.filedrop import read_object
from sync_core.stripe import StripeAPIError, StripeClient
from sync_core.stripe.client import encode_params
from sync_core.stripe.normalize import normalize_all, objects_from_events

KEY = "sk_test_sandbox_secret_123"
T0 = 1_750_000_000
ADDED = {"in_big", "cn_big", "sub_big", "cus_hooked"}  # objects tests add at run time
ID_COLUMNS = {
    "customers": "customer_id",
    "usage_events": "event_id",
    "invoices": "invoice_id",
    "invoice_lines": "line_key",
    "credit_notes": "credit_note_id",
    "credit_note_lines": "credit_note_line_id",
    "payments": "payment_id",
}


def client(api: BillingSandbox, **kw) -> StripeClient:
    kw.setdefault("backoff_base_s", 0.001)
    kw.setdefault("timeout_s", 5)
    return StripeClient(api.url, api_key=KEY, **kw)


def customer(i: int, created: int) -> dict:
    return {
        "id": f"cus_t{i:05d}",
        "object": "customer",
        "created": created,
        "name": f"Tie {i}",
        "email": None,
        "currency": "usd",
        "address": {"country": "US"},
        "metadata": {"legal_entity": "US01"},
    }


@pytest.fixture(scope="module")
def ties():
    """An empty sandbox with 1,234 customers, most sharing one ``created`` second."""
    with BillingSandbox(subscriptions=0) as api:
        created = [T0] * 1000 + [T0 + 1] * 200 + [T0 - 1] * 34
        api.add_objects("customers", [customer(i, c) for i, c in enumerate(created)])
        yield api


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("billing-demo")
    with BillingSandbox(folder, subscriptions=80, seed=11, bad_rows=0) as api:
        yield api


# ----------------------------------------------------------------------------- paging


@pytest.mark.parametrize("page_size", [100, 7, 1])
def test_paging_returns_exactly_the_servers_ids(ties, page_size):
    c = client(ties, page_size=page_size)
    ids = [o["id"] for o in c.list_all("/v1/customers")]
    expected = ties.ids("customers")
    assert len(expected) == 1234
    assert ids == expected  # same order (newest first, ids break ties), no gap, no repeat
    assert len(set(ids)) == len(ids)


def test_created_filter_and_ending_before(ties):
    c = client(ties)
    newer = [o["id"] for o in c.list_all("/v1/customers", created_gte=T0)]
    assert len(newer) == 1200 and newer == ties.ids("customers")[:1200]
    headers = {"Authorization": f"Bearer {KEY}"}
    all_ids = ties.ids("customers")
    r = requests.get(
        f"{ties.url}/v1/customers",
        params={"limit": 5, "ending_before": all_ids[20]},
        headers=headers,
        timeout=5,
    ).json()
    assert [o["id"] for o in r["data"]] == all_ids[15:20] and r["has_more"] is True


def test_checkpoint_resume_after_a_crash_has_no_gap_and_no_duplicate(ties):
    expected = ties.ids("customers")
    seen, checkpoint = [], None
    c = client(ties, page_size=100)
    for n, (page, cursor) in enumerate(c.iter_pages("/v1/customers")):
        seen.extend(o["id"] for o in page)
        checkpoint = cursor  # persisted after the page is processed
        if n == 4:
            break  # the process dies here, after the checkpoint of page 5
    assert checkpoint == seen[-1]
    # while the process was down a customer was created: it lands at the head of the list
    ties.add_event("customer.created", customer(99_999, T0 + 10))
    resumed = client(ties, page_size=100)
    pages = list(resumed.iter_pages("/v1/customers", cursor=checkpoint))
    assert pages[-1][1] is None and all(cur for _, cur in pages[:-1])
    for page, _ in pages:
        seen.extend(o["id"] for o in page)
    assert seen == expected and len(set(seen)) == len(seen)
    # the next incremental pull picks the new one up
    fresh = [o["id"] for o in resumed.list_all("/v1/customers", created_gte=T0 + 2)]
    assert fresh == ["cus_t99999"]


# ----------------------------------------------------------------------------- retries


def test_429_bursts_and_500s_are_retried(ties, caplog):
    expected = ties.ids("customers")
    ties.faults(burst_429=3, retry_after_s=0.01)
    c = client(ties)
    with caplog.at_level(logging.WARNING, logger="sync_core.stripe.client"):
        assert [o["id"] for o in c.list_all("/v1/customers")] == expected
    assert c.stats["retries"] == 3
    assert KEY not in caplog.text and KEY not in repr(c)
    ties.faults(error_rate_500=0.3, seed=5)
    try:
        c = client(ties)
        assert [o["id"] for o in c.list_all("/v1/customers")] == expected
        assert c.stats["retries"] > 0
    finally:
        ties.faults(error_rate_500=0.0)
    ties.faults(burst_disconnect=2, burst_500=2)
    c = client(ties)
    assert [o["id"] for o in c.list_all("/v1/customers")] == expected
    assert c.stats["retries"] == 4


def test_retry_after_is_honoured_and_retries_are_bounded(ties):
    slept: list[float] = []
    ties.faults(burst_429=2, retry_after_s=3)
    c = client(ties, sleep=slept.append)
    assert len(list(c.list_all("/v1/customers", created_gte=T0 + 1))) >= 200
    assert slept and min(slept) >= 3  # the server's Retry-After, not the 1 ms backoff
    ties.faults(burst_429=5, retry_after_s=0)
    c = client(ties, max_retries=2)
    with pytest.raises(StripeAPIError) as err:
        list(c.list_all("/v1/customers"))
    assert err.value.status == 429 and "Too many requests" in str(err.value)
    ties.faults(burst_429=0)


def test_other_4xx_raise_with_stripes_message(ties):
    c = client(ties)
    with pytest.raises(StripeAPIError) as err:
        list(c.list_all("/v1/customers", start_after="cus_missing"))
    assert err.value.status == 400 and "No such customer" in str(err.value)
    assert c.stats["retries"] == 0
    r = requests.get(f"{ties.url}/v1/customers", timeout=5)
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    r = requests.get(f"{ties.url}/v1/customers", headers={"Authorization": "Bearer "}, timeout=5)
    assert r.status_code == 401
    with pytest.raises(ValueError):
        StripeClient(ties.url, api_key="")
    assert encode_params({"created": {"gte": 1}, "types": ["a", "b"], "x": True, "n": None}) == [
        ("created[gte]", "1"),
        ("types[]", "a"),
        ("types[]", "b"),
        ("x", "true"),
    ]


# ----------------------------------------------------------------------------- nested lists


def _line(i: int, invoice: str) -> dict:
    return {
        "id": f"il_big_{i:03d}",
        "object": "line_item",
        "amount": 100 + i,
        "currency": "usd",
        "invoice": invoice,
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {"invoice_item": f"ii_{i}", "proration": False},
        },
        "pricing": {"type": "price_details", "price_details": {"price": "p", "product": "prod_x"}},
        "period": {"start": T0, "end": T0 + 30 * 86_400},
        "quantity": 1,
        "taxes": [],
    }


def test_invoice_lines_beyond_the_first_ten_are_fetched(demo):
    lines = [_line(i, "in_big") for i in range(25)]
    inv = {
        "id": "in_big",
        "object": "invoice",
        "created": T0,
        "currency": "usd",
        "customer": "cus_big",
        "status": "open",
        "status_transitions": {"finalized_at": T0},
        "total": sum(ln["amount"] for ln in lines),
        "total_taxes": [],
        "metadata": {"legal_entity": "US01"},
        "lines": {"object": "list", "data": lines},
    }
    demo.add_event("invoice.finalized", inv, created=T0)
    raw = requests.get(
        f"{demo.url}/v1/invoices/in_big", headers={"Authorization": f"Bearer {KEY}"}, timeout=5
    ).json()
    assert len(raw["lines"]["data"]) == 10 and raw["lines"]["has_more"] is True
    c = client(demo, page_size=7)  # the lines endpoint pages too
    (full,) = [i for i in c.invoices(created_gte=T0 - 1) if i["id"] == "in_big"]
    assert [ln["id"] for ln in full["lines"]["data"]] == [ln["id"] for ln in lines]
    result = normalize_all(invoices=[full])
    assert len(result.invoice_lines) == 25 and result.quarantine.empty
    assert int(result.invoice_lines["amount"].sum()) == int(result.invoices["subtotal"].iloc[0])
    # a truncated list is never taken as the whole invoice
    truncated = normalize_all(invoices=[raw])
    assert truncated.invoices.empty and "has_more" in truncated.quarantine["message"].iloc[0]


# ----------------------------------------------------------------------------- events


def test_events_feed_and_runtime_hook(demo):
    c = client(demo)
    types = {e["type"] for e in c.events()}
    assert {"invoice.finalized", "invoice.paid", "customer.created"} <= types
    last = max(e["created"] for e in c.events())
    assert list(c.events(created_gte=last + 1)) == []
    body = {
        "type": "customer.created",
        "created": last + 5,
        "object": customer(1, last + 5) | {"id": "cus_hooked"},
    }
    r = requests.post(
        f"{demo.url}/sandbox/events",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=5,
    )
    assert r.status_code == 200
    new = list(c.events(created_gte=last + 1, types=["customer.created"]))
    assert [e["data"]["object"]["id"] for e in new] == ["cus_hooked"]
    assert any(o["id"] == "cus_hooked" for o in c.customers(created_gte=last + 1))
    only_inv = {e["type"] for e in c.events(params={"type": "invoice.*"})}
    assert only_inv and all(t.startswith("invoice.") for t in only_inv)


# ----------------------------------------------------------------------------- round trip


def _sorted(df: pd.DataFrame, key: str) -> pd.DataFrame:
    return df.sort_values(key).reset_index(drop=True)


def test_normalizer_round_trips_the_demo_files(demo):
    c = client(demo)
    pulled = {
        "customers": list(c.customers()),
        "subscriptions": list(c.subscriptions()),
        "invoices": list(c.invoices()),
        "credit_notes": list(c.credit_notes()),
        "invoice_payments": list(c.invoice_payments()),
        "charges": list(c.charges()),
        "refunds": list(c.refunds()),
        "meter_events": list(c.billing_meter_events()),
    }
    # leave out what other tests added at run time
    pulled = {k: [o for o in v if o["id"] not in ADDED] for k, v in pulled.items()}
    result = normalize_all(**pulled)
    assert result.quarantine.empty, result.quarantine.head()
    for name, key in ID_COLUMNS.items():
        demo_df = read_object(demo.data_dir, name).drop(columns=["_source", "_line"])
        assert len(demo_df) > 0, name
        pd.testing.assert_frame_equal(
            _sorted(getattr(result, name), key), _sorted(demo_df, key), obj=name
        )
    # contracts: the list API shows the current state (one 'new' row per item)
    contracts = read_object(demo.data_dir, "subscription_contracts")
    assert set(result.subscription_contracts["contract_id"]) == set(contracts["contract_id"])
    metered = result.subscription_contracts.set_index("contract_id")["metered"]
    assert metered.to_dict() == contracts.groupby("contract_id")["metered"].first().to_dict()
    # the events feed carries every invoice too
    from_events = objects_from_events(c.events(types=["invoice.finalized", "invoice.paid"]))
    ids = {o["id"] for o in from_events["invoice"]} - ADDED
    assert ids == set(read_object(demo.data_dir, "invoices")["invoice_id"])


def test_credit_note_lines_and_subscription_items_beyond_ten_are_fetched(demo):
    cn_lines = [
        {
            "id": f"cnli_big_{i:03d}",
            "object": "credit_note_line_item",
            "amount": 10,
            "type": "custom_line_item",
            "taxes": [],
        }
        for i in range(13)
    ]
    cn = {
        "id": "cn_big",
        "object": "credit_note",
        "created": T0,
        "currency": "usd",
        "customer": "cus_big",
        "invoice": "in_big",
        "type": "pre_payment",
        "status": "issued",
        "total": 130,
        "total_taxes": [],
        "refunds": [],
        "metadata": {"legal_entity": "US01"},
        "lines": {"object": "list", "data": cn_lines},
    }
    demo.add_event("credit_note.created", cn, created=T0)
    price = {
        "id": "price_seat",
        "object": "price",
        "product": "prod_seat",
        "currency": "usd",
        "unit_amount": 500,
        "billing_scheme": "per_unit",
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
    }
    items = [
        {"id": f"si_big_{i:02d}", "object": "subscription_item", "created": T0, "price": price,
         "quantity": 1}
        for i in range(12)
    ]  # fmt: skip
    sub = {
        "id": "sub_big",
        "object": "subscription",
        "created": T0,
        "customer": "cus_big",
        "status": "active",
        "currency": "usd",
        "metadata": {"legal_entity": "US01"},
        "items": {"object": "list", "data": items},
    }
    demo.add_event("customer.subscription.created", sub, created=T0)
    c = client(demo, page_size=5)
    (full_cn,) = [x for x in c.credit_notes(created_gte=T0) if x["id"] == "cn_big"]
    assert [ln["id"] for ln in full_cn["lines"]["data"]] == [ln["id"] for ln in cn_lines]
    (full_sub,) = [x for x in c.subscriptions(created_gte=T0) if x["id"] == "sub_big"]
    assert [i["id"] for i in full_sub["items"]["data"]] == [i["id"] for i in items]
    result = normalize_all(credit_notes=[full_cn], subscriptions=[full_sub])
    assert len(result.credit_note_lines) == 13 and len(result.subscription_contracts) == 12
    assert result.credit_note_lines["invoice_line_key"].isna().all()  # custom lines: pro rata


def test_slow_pages_are_slow(ties):
    ties.faults(slow_page_ms=60)
    try:
        c = client(ties, page_size=100)
        t = time.perf_counter()
        next(c.iter_pages("/v1/customers"))
        assert time.perf_counter() - t >= 0.06
    finally:
        ties.faults(slow_page_ms=0)
