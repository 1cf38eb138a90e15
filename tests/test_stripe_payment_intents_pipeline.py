"""A PaymentIntent-paid invoice through the whole pipeline: sandbox events -> the event
sensor -> the mirror -> the billing assets -> the ledger, one payment and one cash journal.

Stripe (API ``2025-03-31.basil``) tells one automatic collection three times: the charge
``ch_1`` (``payment_intent: "pi_1"``, no invoice), the PaymentIntent ``pi_1`` and the invoice
payment naming ``pi_1`` and the invoice. They are added here with explicit ``created`` times in
March 2025 and read in separate sensor evaluations; the canonical payment is ``pi_1``
(``sync_core.stripe.payments``) whichever object a batch holds.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from benchmarks.bench_microbatch import (
    DAY,
    legal_entities_csv,
    stripe_customer,
    stripe_invoice,
    stripe_line,
)
from resources import BillingSourceResource
from resources.stripe import StripeResource
from sandboxes.billing_api import BillingSandbox
from sensors.stripe_events import initial_cursor, stripe_event_sensor
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions
from tests.helpers import make_resources, materialize

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
T0 = int(pd.Timestamp("2025-03-01", tz="UTC").timestamp())
MAR = T0 + 2 * DAY  # Mar 3
PAID = MAR + 3_600  # collected an hour after finalization


def fixture(name: str) -> dict:
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def charge() -> dict:
    ch = fixture("charge")
    ch.update(id="ch_1", payment_intent="pi_1", amount=1000, amount_captured=1000,
              captured=True, currency="usd", customer="cus_1", status="succeeded", paid=True,
              created=PAID)  # fmt: skip
    return ch


def payment_intent() -> dict:
    pi = fixture("payment_intent")
    pi.update(id="pi_1", amount=1000, amount_received=1000, currency="usd", customer="cus_1",
              status="succeeded", latest_charge="ch_1", created=MAR + 60,
              last_payment_error=None, next_action=None)  # fmt: skip
    return pi


def invoice_payment() -> dict:
    ip = fixture("invoice_payment")
    ip.update(id="inpay_1", invoice="in_1", amount_paid=1000, amount_requested=1000,
              currency="usd", status="paid", created=MAR + 60,
              payment={"type": "payment_intent", "payment_intent": "pi_1"},
              status_transitions={"canceled_at": None, "paid_at": PAID})  # fmt: skip
    return ip


PAYMENT_EVENTS = {
    "charge.succeeded": charge,
    "payment_intent.succeeded": payment_intent,
    "invoice_payment.paid": invoice_payment,
}


@pytest.fixture
def api():
    with BillingSandbox(subscriptions=0) as sandbox:
        yield sandbox


@pytest.fixture
def stripe(api, tmp_path):
    seed = legal_entities_csv(tmp_path / "legal_entities.csv")
    return StripeResource(
        api_key="sk_test_pi",
        base_url=api.url,
        mirror_path=str(tmp_path / "mirror"),
        legal_entities_seed=str(seed),
    )


@pytest.fixture
def pipeline(stripe, sqlite_url):
    resources = make_resources(stripe.mirror_path, sqlite_url)
    resources["billing_source"] = BillingSourceResource(
        kind="stripe_mirror", path=stripe.mirror_path
    )
    with dg.instance_for_test() as instance:
        state = {"cursor": initial_cursor(T0), "partitions": set()}

        def evaluate(run: bool = True) -> set[str]:
            """One sensor evaluation; its partitions materialized unless ``run`` is false."""
            ctx = dg.build_sensor_context(
                instance=instance, cursor=state["cursor"], resources={"stripe": stripe}
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = stripe_event_sensor(ctx)
            added = [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]
            if added:  # what the daemon does with the result, then the entities asset
                instance.add_dynamic_partitions(entity_partitions.name, added)
                assert materialize(instance, resources, ["legal_entities"]).success
            state["cursor"] = result.cursor
            keys = {str(r.partition_key) for r in result.run_requests}
            state["partitions"] |= keys
            for key in sorted(keys if run else ()):
                assert materialize(instance, resources, INGEST + DERIVED, key).success
            return keys

        def run_all() -> None:
            for key in sorted(state["partitions"]):
                assert materialize(instance, resources, INGEST + DERIVED, key).success

        evaluate.run_all = run_all
        yield evaluate, resources


def seed_invoice(api) -> None:
    api.add_event("customer.created", stripe_customer("cus_1", MAR), MAR)
    line = stripe_line("il_1", "in_1", 1000, MAR, MAR + 7 * DAY)
    api.add_event("invoice.finalized", stripe_invoice("in_1", "cus_1", MAR, lines=[line]), MAR)


def cash_journals(resources) -> pd.DataFrame:
    """Every journal line on Cash, with its journal's event, document and version."""
    with resources["erp"].ledger().engine.connect() as conn:
        return pd.read_sql(
            "select j.external_id, j.event, j.document_id, j.version, j.reverses, l.account, "
            "l.debit, l.credit from ledger_journals j join ledger_journal_lines l "
            "on l.external_id = j.external_id where l.account = 'Cash' order by j.external_id",
            conn,
        )


def payments(resources) -> pd.DataFrame:
    return resources["warehouse"].get().read("payments", "US01", "2025-03-01")


def assert_one_payment_and_one_cash_debit(resources) -> None:
    pays = payments(resources)
    cols = ["payment_id", "invoice_id", "customer_id", "amount", "status"]
    assert pays[cols].values.tolist() == [["pi_1", "in_1", "cus_1", 1000, "succeeded"]]
    cash = cash_journals(resources)
    assert cash[["event", "document_id", "debit", "credit"]].values.tolist() == [
        ["payment", "pi_1", 1000, 0]
    ]


@pytest.mark.parametrize(
    "order",
    [
        ["charge.succeeded", "payment_intent.succeeded", "invoice_payment.paid"],
        ["invoice_payment.paid", "payment_intent.succeeded", "charge.succeeded"],
    ],
)
def test_three_shapes_in_three_evaluations_are_one_payment(api, pipeline, order):
    evaluate, resources = pipeline
    seed_invoice(api)
    evaluate()
    for n, etype in enumerate(order):
        api.add_event(etype, PAYMENT_EVENTS[etype](), PAID + n)
        evaluate(run=False)  # the three land in three batches before the runs go
    evaluate.run_all()
    assert_one_payment_and_one_cash_debit(resources)


def test_a_run_after_each_batch_still_posts_one_cash_journal(api, pipeline):
    # the invoice payment first: every later batch (charge, PaymentIntent) knows no invoice
    # and takes it from the mirror's payment, so nothing posted ever changes
    evaluate, resources = pipeline
    seed_invoice(api)
    evaluate()
    for n, etype in enumerate(
        ["invoice_payment.paid", "charge.succeeded", "payment_intent.succeeded"]
    ):
        api.add_event(etype, PAYMENT_EVENTS[etype](), PAID + n)
        # each batch asks for March's run, the charge's too (its settlement is pi_1)
        assert evaluate() == {"US01|2025-03-01"}, etype
        assert_one_payment_and_one_cash_debit(resources)
