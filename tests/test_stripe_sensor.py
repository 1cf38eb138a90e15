"""The Stripe event sensor against the sandbox billing API: events -> mirror -> run requests.

Sandbox on a free loopback port, events added with explicit ``created`` times in 2025 (inside
the partitions), a cursor that starts reading at 2025-03-01.
"""

from __future__ import annotations

import gc
import json
import warnings

import dagster as dg
import pandas as pd
import pytest

from benchmarks.bench_microbatch import (
    DAY,
    legal_entities_csv,
    stripe_credit_note,
    stripe_customer,
    stripe_invoice,
    stripe_line,
)
from resources import BillingSourceResource
from resources.stripe import StripeResource
from sandboxes.billing_api import BillingSandbox
from schedules.stripe_reconcile import STATE_FILE, stripe_nightly_reconcile
from sensors.stripe_events import OVERLAP_S, initial_cursor, stripe_event_sensor
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions
from sync_core.stripe import landing
from tests.helpers import make_resources, materialize

T0 = int(pd.Timestamp("2025-03-01", tz="UTC").timestamp())
MAR, APR, MAY = T0 + 2 * DAY, T0 + 33 * DAY, T0 + 64 * DAY  # Mar 3, Apr 3, May 4


@pytest.fixture
def api():
    with BillingSandbox(subscriptions=0) as sandbox:
        yield sandbox


@pytest.fixture
def stripe(api, tmp_path):
    seed = legal_entities_csv(tmp_path / "legal_entities.csv")
    return StripeResource(
        api_key="sk_test_sensor",
        base_url=api.url,
        mirror_path=str(tmp_path / "mirror"),
        legal_entities_seed=str(seed),
    )


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
        # build_schedule_context(resources=...) leaves an ephemeral instance behind; collected
        # later, its dispose would reset Dagster's current state storage to a dead instance
        # (DefinitionsLoadContext then fails in a later test): dispose it now, in order
        gc.collect()


def evaluate(instance, stripe, cursor) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"stripe": stripe})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stripe_event_sensor(ctx)


def keys(result: dg.SensorResult) -> list[str]:
    return [str(r.partition_key) for r in result.run_requests]


def added(result: dg.SensorResult) -> list[str]:
    return [k for req in result.dynamic_partitions_requests or [] for k in req.partition_keys]


def apply(instance, result: dg.SensorResult) -> None:
    """What the daemon does with the result's dynamic partition requests."""
    if added(result):
        instance.add_dynamic_partitions(entity_partitions.name, added(result))


def cursor_of(result) -> dict:
    return json.loads(result.cursor)


def mirror(stripe) -> BillingSourceResource:
    return BillingSourceResource(kind="stripe_mirror", path=stripe.mirror_path)


def seed_march(api) -> dict:
    api.add_event("customer.created", stripe_customer("cus_1", MAR), MAR)
    line = stripe_line("il_1", "in_1", 3100, MAR, MAR + 7 * DAY)  # service inside March
    inv = stripe_invoice("in_1", "cus_1", MAR + 60, lines=[line])
    api.add_event("invoice.finalized", inv, MAR + 60)
    return inv


def test_events_become_one_batch_and_one_run_per_partition(api, stripe, instance):
    seed_march(api)
    first = evaluate(instance, stripe, initial_cursor(T0))
    assert keys(first) == ["US01|2025-03-01"]
    (req,) = first.run_requests
    assert req.run_key.startswith("stripe-US01-2025-03-01-")
    assert req.tags["sync/trigger"] == "stripe_events"
    assert added(first) == ["US01"]  # a new legal entity becomes a partition
    cur = cursor_of(first)
    assert cur["high_water"] == MAR + 60 and cur["batches"] == 1 and len(cur["seen"]) == 2
    inv = mirror(stripe).read("invoices")
    assert list(inv["invoice_id"]) == ["in_1"] and len(mirror(stripe).read("invoice_lines")) == 1
    assert len(landing.committed_batches(stripe.mirror_path)) == 1

    # the same window is re-read (overlap) but nothing is new: no batch, no run, same cursor
    apply(instance, first)
    again = evaluate(instance, stripe, first.cursor)
    assert again.run_requests == [] and again.skip_reason
    assert cursor_of(again)["high_water"] == MAR + 60
    assert len(landing.committed_batches(stripe.mirror_path)) == 1


def test_same_cursor_gives_the_same_batch_and_run_keys(api, stripe, instance):
    seed_march(api)
    start = initial_cursor(T0)
    a, b = evaluate(instance, stripe, start), evaluate(instance, stripe, start)
    assert [r.run_key for r in a.run_requests] == [r.run_key for r in b.run_requests]
    assert a.cursor == b.cursor
    # a re-evaluation after a crash rewrote the same batch files, it did not add a batch
    assert len(landing.committed_batches(stripe.mirror_path)) == 1
    assert len(mirror(stripe).read("invoices")) == 1


def test_a_late_event_is_processed_once_and_never_overrides_a_newer_snapshot(api, stripe, instance):
    inv = seed_march(api)
    paid = {**inv, "status": "paid", "status_transitions": {**inv["status_transitions"]}}
    paid["status_transitions"]["paid_at"] = MAR + 600
    api.add_event("invoice.paid", paid, MAR + 600)
    first = evaluate(instance, stripe, initial_cursor(T0))
    apply(instance, first)
    assert mirror(stripe).read("invoices")["status"].tolist() == ["paid"]

    # a late event (older than the high-water mark, inside the overlap window) shows up: an
    # older snapshot of the invoice and a new customer
    late_t = MAR + 600 - OVERLAP_S // 2
    api.add_event("invoice.updated", {**inv, "description": "late"}, late_t)
    api.add_event("customer.created", stripe_customer("cus_2", late_t), late_t)
    second = evaluate(instance, stripe, first.cursor)
    assert keys(second) == ["US01|2025-03-01"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert cursor_of(second)["high_water"] == MAR + 600  # a late event does not move it back
    state = mirror(stripe).read("invoices")
    assert state["status"].tolist() == ["paid"]  # the newer snapshot still wins
    assert sorted(mirror(stripe).read("customers")["customer_id"]) == ["cus_1", "cus_2"]

    # processed once: the next evaluation finds nothing new
    third = evaluate(instance, stripe, second.cursor)
    assert third.run_requests == [] and third.skip_reason

    # an event older than the overlap window is left to the nightly reconcile
    api.add_event("customer.created", stripe_customer("cus_old", T0 + 60), T0 + 60)
    assert evaluate(instance, stripe, second.cursor).run_requests == []


def test_a_late_credit_note_asks_for_the_past_period_and_a_new_entity_is_added(
    api, stripe, instance
):
    seed_march(api)
    first = evaluate(instance, stripe, initial_cursor(T0))
    apply(instance, first)
    inv = stripe_invoice(
        "in_q",
        "cus_1",
        APR,
        lines=[stripe_line("il_q", "in_q", 9000, APR, APR + 90 * DAY)],  # Apr 3 - Jul 2
    )
    api.add_event("invoice.finalized", inv, APR)
    api.add_event("customer.created", stripe_customer("cus_de", MAY, "DE01"), MAY)
    api.add_event("credit_note.created", stripe_credit_note("cn_1", inv, MAY, 3000), MAY + 1)
    second = evaluate(instance, stripe, first.cursor)
    # the credit note (issued in May) lands only with its own lines; the invoice it credits
    # (April, service to July) is found in the mirror
    assert keys(second) == [
        "DE01|2025-05-01",
        "US01|2025-04-01",
        "US01|2025-05-01",
        "US01|2025-06-01",
        "US01|2025-07-01",
    ]
    assert added(second) == ["DE01"]

    # the same credit note in a later batch alone: still the past period (from the mirror)
    apply(instance, second)
    api.add_event("credit_note.updated", stripe_credit_note("cn_1", inv, MAY, 3000), MAY + 2)
    third = evaluate(instance, stripe, second.cursor)
    assert "US01|2025-04-01" in keys(third) and added(third) == []
    assert len(mirror(stripe).read("credit_notes")) == 1


def test_landing_failure_leaves_the_cursor_where_it_was(api, tmp_path, instance):
    seed_march(api)
    stripe = StripeResource(api_key="k", base_url=api.url, mirror_path=str(tmp_path / "m"))
    with pytest.raises(FileNotFoundError, match="legal_entities.csv"):
        evaluate(instance, stripe, initial_cursor(T0))  # no legal entities: nothing landed
    assert not landing.committed_batches(tmp_path / "m")


def test_an_uncommitted_batch_is_invisible(api, stripe, instance):
    seed_march(api)
    evaluate(instance, stripe, initial_cursor(T0))
    folder = stripe.mirror()
    # a crash after the data files but before the manifest: a half batch on disk
    (folder / "invoices-29990101T000000-e999999-x.ndjson").write_text(
        (folder / next(folder.glob("invoices-*")).name).read_text().replace('"open"', '"void"')
    )
    assert mirror(stripe).read("invoices")["status"].tolist() == ["open"]


def test_invoice_lines_beyond_ten_are_fetched(api, stripe, instance):
    api.add_event("customer.created", stripe_customer("cus_1", MAR), MAR)
    lines = [stripe_line(f"il_{i:02d}", "in_big", 100, MAR, MAR + DAY) for i in range(12)]
    api.add_event("invoice.finalized", stripe_invoice("in_big", "cus_1", MAR, lines=lines), MAR)
    evaluate(instance, stripe, initial_cursor(T0))
    assert len(mirror(stripe).read("invoice_lines")) == 12


def test_nightly_reconcile_lands_the_list_state(api, stripe, instance):
    inv = seed_march(api)
    uncollectible = {**inv, "status": "uncollectible"}  # no event for this change
    api.add_objects("invoices", [uncollectible])
    ctx = dg.build_schedule_context(
        instance=instance,
        resources={"stripe": stripe},
        scheduled_execution_time=pd.Timestamp("2025-03-05 03:00", tz="UTC").to_pydatetime(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        requests = stripe_nightly_reconcile(ctx)
    assert [str(r.partition_key) for r in requests] == ["US01|2025-03-01"]
    assert requests[0].run_key == "stripe-reconcile-2025-03-05T0300-US01-2025-03-01"
    assert mirror(stripe).read("invoices")["status"].tolist() == ["uncollectible"]
    assert json.loads((stripe.mirror() / STATE_FILE).read_text())["since"] is None  # full


def test_sensor_batch_then_materialized_partitions_post_the_invoice(api, stripe, sqlite_url):
    seed_march(api)
    resources = make_resources(stripe.mirror_path, sqlite_url)
    resources["billing_source"] = BillingSourceResource(
        kind="stripe_mirror", path=stripe.mirror_path
    )
    with dg.instance_for_test() as instance:
        result = evaluate(instance, stripe, initial_cursor(T0))
        apply(instance, result)
        assert materialize(instance, resources, ["legal_entities"]).success
        for req in result.run_requests:
            assert materialize(instance, resources, INGEST + DERIVED, req.partition_key).success
    wh = resources["warehouse"].get()
    inv = wh.read("invoices", "US01", "2025-03-01")
    assert inv["invoice_id"].tolist() == ["in_1"] and inv["total"].tolist() == [3100]
    journals = resources["erp"].ledger().engine
    with journals.connect() as conn:
        posted = pd.read_sql(
            "select document_id, event from ledger_journals where document_id = 'in_1'", conn
        )
    assert posted["event"].tolist() == ["invoice_finalized"]


def test_without_a_stripe_key_the_sensor_skips_with_the_setting_named(instance, tmp_path):
    keyless = StripeResource(api_key=None, mirror_path=str(tmp_path / "mirror"))
    ctx = dg.build_sensor_context(instance=instance, resources={"stripe": keyless})
    result = stripe_event_sensor(ctx)
    assert isinstance(result, dg.SkipReason) and "STRIPE_API_KEY" in result.skip_message
    with pytest.raises(dg.Failure, match="STRIPE_API_KEY"):
        keyless.client()
