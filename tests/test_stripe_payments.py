"""One canonical payment per settlement, whatever shape Stripe sends it in
(``sync_core.stripe.payments``), on Stripe's published object shapes (tests/fixtures/stripe,
vendored from stripe/openapi fixtures3.json) with the fields each case needs set.

The case: an invoice ``in_1`` of 10.00 USD (1000) collected through the PaymentIntent
``pi_1``, whose charge is ``ch_1`` (API ``2025-03-31.basil``: the charge names the
PaymentIntent, not the invoice; the invoice payment names the PaymentIntent, not the charge).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.bench_microbatch import legal_entities_csv, stripe_invoice
from sync_core.filedrop import read_object
from sync_core.stripe import landing
from sync_core.stripe.normalize import RULE_UNSUPPORTED, normalize_all

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
PAID = T0 + DAY + 60  # the charge, 2026-01-02 00:01 UTC


def fixture(name: str) -> dict:
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def invoice(iid: str = "in_1", amount: int = 1000) -> dict:
    return stripe_invoice(iid, "cus_1", T0, amount)


def charge(cid="ch_1", pi: str | None = "pi_1", *, status="succeeded", created=PAID, amount=1000):
    ch = fixture("charge")
    ok = status == "succeeded"
    ch.update(id=cid, payment_intent=pi, amount=amount, currency="usd", customer="cus_1",
              status=status, created=created, paid=ok, captured=ok,
              amount_captured=amount if ok else 0)  # fmt: skip
    return ch


def invoice_payment(payment: dict, *, invoice_id="in_1", amount=1000, status="paid") -> dict:
    ip = fixture("invoice_payment")
    ip.update(id=f"inpay_{invoice_id}", invoice=invoice_id, amount_paid=amount,
              amount_requested=amount, currency="usd", status=status, payment=payment,
              status_transitions={"canceled_at": None, "paid_at": PAID})  # fmt: skip
    return ip


def by_intent(pi="pi_1", **kw) -> dict:
    return invoice_payment({"type": "payment_intent", "payment_intent": pi}, **kw)


def payment_intent(pid="pi_1", *, status="succeeded", received=1000, latest="ch_1") -> dict:
    pi = fixture("payment_intent")
    pi.update(id=pid, amount=1000, amount_received=received, currency="usd", customer="cus_1",
              status=status, latest_charge=latest, created=T0 + 60,
              last_payment_error=None, next_action=None)  # fmt: skip
    return pi


def refund(rid="re_1", *, charge_id=None, pi=None, amount=400) -> dict:
    rf = fixture("refund")
    rf.update(id=rid, charge=charge_id, payment_intent=pi, amount=amount, currency="usd",
              status="succeeded", created=PAID + 5 * DAY)  # fmt: skip
    return rf


def event(etype: str, obj: dict, created: int) -> dict:
    ev = fixture("event")
    ev.update(id=f"evt_{etype}_{obj['id']}", type=etype, created=created, data={"object": obj})
    return ev


def pay_rows(out) -> list[tuple]:
    cols = ["payment_id", "kind", "invoice_id", "customer_id", "amount", "status"]
    return [tuple(r) for r in out.payments[cols].itertuples(index=False)]


# ------------------------------------------------------------------------- one batch


def test_a_charge_and_its_invoice_payment_are_one_payment():
    out = normalize_all(invoices=[invoice()], charges=[charge()], invoice_payments=[by_intent()])
    assert out.quarantine.empty, out.quarantine
    assert pay_rows(out) == [("pi_1", "payment", "in_1", "cus_1", 1000, "succeeded")]
    row = out.payments.iloc[0]
    assert row["entity_id"] == "US01"  # the invoice's entity
    assert row["created_at"] == pd.Timestamp("2026-01-02 00:01", tz="UTC")  # the charge's


def test_an_invoice_payment_of_type_charge_is_keyed_by_the_charge():
    out = normalize_all(
        invoices=[invoice()],
        charges=[charge(pi=None)],
        invoice_payments=[invoice_payment({"type": "charge", "charge": "ch_1"})],
    )
    assert out.quarantine.empty, out.quarantine
    assert pay_rows(out) == [("ch_1", "payment", "in_1", "cus_1", 1000, "succeeded")]


def test_a_payment_record_is_one_payment():
    ip = invoice_payment({"type": "payment_record", "payment_record": "prec_1"})
    out = normalize_all(invoices=[invoice()], invoice_payments=[ip])
    assert out.quarantine.empty, out.quarantine
    # the customer comes from the invoice: an invoice payment names none
    assert pay_rows(out) == [("prec_1", "payment", "in_1", "cus_1", 1000, "succeeded")]


def test_a_failed_then_a_succeeded_charge_of_one_intent_is_one_succeeded_payment():
    failed = charge("ch_0", status="failed", created=PAID - 3_600)
    out = normalize_all(
        invoices=[invoice()],
        charges=[failed, charge("ch_1")],
        payment_intents=[payment_intent()],
        invoice_payments=[by_intent()],
    )
    assert out.quarantine.empty, out.quarantine
    assert pay_rows(out) == [("pi_1", "payment", "in_1", "cus_1", 1000, "succeeded")]
    assert out.payments.iloc[0]["created_at"] == pd.Timestamp("2026-01-02 00:01", tz="UTC")


def test_a_failed_attempt_that_never_settles_keeps_a_failed_row():
    out = normalize_all(charges=[charge(status="failed")], default_entity="US01")
    assert pay_rows(out) == [("pi_1", "payment", None, "cus_1", 1000, "failed")]


def test_a_payment_intent_succeeded_event_alone_is_one_payment():
    ev = event("payment_intent.succeeded", payment_intent(), PAID + 2)
    out = normalize_all(events=[ev], default_entity="US01")
    assert out.quarantine.empty, out.quarantine
    assert pay_rows(out) == [("pi_1", "payment", None, "cus_1", 1000, "succeeded")]
    # dated when it succeeded (the event), not when it was created (at finalization)
    assert out.payments.iloc[0]["created_at"] == pd.Timestamp("2026-01-02 00:01:02", tz="UTC")
    assert not out.notes["message"].str.contains("not read").any()


def test_a_payment_intent_not_yet_succeeded_is_noted_not_a_payment():
    out = normalize_all(payment_intents=[payment_intent(status="processing")])
    assert out.payments.empty and out.quarantine.empty
    assert out.notes[["source_id", "kind"]].values.tolist() == [["pi_1", "skipped"]]


def test_a_refund_linked_only_through_its_payment_intent_takes_the_invoice():
    out = normalize_all(
        invoices=[invoice()],
        invoice_payments=[by_intent()],
        refunds=[refund(pi="pi_1")],
        default_entity="US01",
    )
    assert out.quarantine.empty, out.quarantine
    pays = out.payments.set_index("payment_id")
    assert pays.loc["re_1", ["kind", "invoice_id", "customer_id", "amount"]].tolist() == [
        "refund", "in_1", "cus_1", 400]  # fmt: skip
    # a refund naming the charge finds the same settlement through the charge
    out = normalize_all(
        invoices=[invoice()], charges=[charge()], invoice_payments=[by_intent()],
        refunds=[refund(charge_id="ch_1")],
    )  # fmt: skip
    assert out.payments.set_index("payment_id").loc["re_1", "invoice_id"] == "in_1"


def test_a_dispute_names_the_settlement():
    d = fixture("dispute")
    d.update(id="dp_1", charge="ch_1", payment_intent="pi_1", amount=1000, currency="usd",
             status="needs_response", created=PAID + 3 * DAY, balance_transactions=[])  # fmt: skip
    out = normalize_all(
        invoices=[invoice()], charges=[charge()], invoice_payments=[by_intent()], disputes=[d]
    )
    assert out.quarantine.empty, out.quarantine
    r = out.disputes.iloc[0]
    assert (r["payment_id"], r["invoice_id"], r["customer_id"]) == ("pi_1", "in_1", "cus_1")


def test_a_payment_split_across_invoices_or_amounts_is_quarantined():
    out = normalize_all(
        invoices=[invoice("in_1", 1000), invoice("in_2", 500)],
        charges=[charge(amount=1500)],
        invoice_payments=[by_intent(), by_intent(invoice_id="in_2", amount=500)],
    )
    assert out.payments.empty
    q = out.quarantine.set_index("source_id").loc["pi_1"]
    assert q["rule"] == RULE_UNSUPPORTED and q["message"].startswith("amount: ")
    out = normalize_all(
        invoices=[invoice("in_1"), invoice("in_2")],
        invoice_payments=[by_intent(), by_intent(invoice_id="in_2")],
    )
    q = out.quarantine.set_index("source_id").loc["pi_1"]
    assert q["rule"] == RULE_UNSUPPORTED
    assert q["message"] == "invoice: one payment linked to 2 invoices (in_1, in_2)"


# ------------------------------------------------------------------------- across batches


@pytest.fixture
def mirror(tmp_path):
    seed = legal_entities_csv(tmp_path / "legal_entities.csv")
    folder = tmp_path / "mirror"
    n = iter(range(1, 100))

    def land(out) -> None:
        i = next(n)
        bid = landing.batch_id(T0 + i, "e", f"{i:06d}")
        landing.land_objects(folder, out, bid, legal_entities_seed=seed)

    land.folder = folder
    return land


def latest(folder, name: str) -> pd.DataFrame:
    return landing.latest_records(
        read_object(folder, name), name, landing.committed_batches(folder)
    )


def context(folder) -> dict:
    """What the sensor's mirror context gives the normalizer: earlier invoices and payments."""
    inv, pays = latest(folder, "invoices"), latest(folder, "payments")
    pays = pays[pays["kind"] == "payment"].astype(object).where(pays.notna(), None)
    return {
        "invoice_info": {r.invoice_id: (r.entity_id, r.customer_id) for r in inv.itertuples()},
        "payment_info": {
            r.payment_id: (r.invoice_id, r.customer_id, r.status) for r in pays.itertuples()
        },
    }


@pytest.mark.parametrize("first", ["charge", "invoice_payment"])
def test_the_objects_of_one_payment_in_two_batches_are_one_payment(mirror, first):
    objects = {
        "charge": {"charges": [charge()]},
        "invoice_payment": {"invoice_payments": [by_intent()]},
    }
    second = "charge" if first == "invoice_payment" else "invoice_payment"
    mirror(normalize_all(invoices=[invoice()], **objects[first]))
    mirror(normalize_all(**objects[second], **context(mirror.folder)))
    pays = latest(mirror.folder, "payments")
    cols = ["payment_id", "invoice_id", "customer_id", "amount", "status"]
    assert pays[cols].values.tolist() == [["pi_1", "in_1", "cus_1", 1000, "succeeded"]]


def test_without_the_mirror_s_payments_a_late_charge_would_lose_its_invoice(mirror):
    mirror(normalize_all(invoices=[invoice()], invoice_payments=[by_intent()]))
    ctx = context(mirror.folder)
    alone = normalize_all(
        charges=[charge()], invoice_info=ctx["invoice_info"], default_entity="US01"
    )
    assert pay_rows(alone) == [("pi_1", "payment", None, "cus_1", 1000, "succeeded")]
    linked = normalize_all(charges=[charge()], **ctx)
    assert pay_rows(linked) == [("pi_1", "payment", "in_1", "cus_1", 1000, "succeeded")]


def test_a_late_failed_attempt_never_lands_over_a_succeeded_payment(mirror):
    mirror(normalize_all(invoices=[invoice()], charges=[charge()], invoice_payments=[by_intent()]))
    late = normalize_all(charges=[charge("ch_0", status="failed", created=PAID - 60)],
                         **context(mirror.folder))  # fmt: skip
    assert late.payments.empty
    assert late.notes[["source_id", "kind"]].values.tolist() == [["pi_1", "skipped"]]
    # a failure first, then the success in a later batch: the success wins in the mirror
    mirror(normalize_all(charges=[charge("ch_2", "pi_2", status="failed")], default_entity="US01"))
    again = normalize_all(charges=[charge("ch_3", "pi_2")], default_entity="US01",
                          **context(mirror.folder))  # fmt: skip
    assert again.quarantine.empty, again.quarantine
    mirror(again)
    pays = latest(mirror.folder, "payments").set_index("payment_id")
    assert pays.loc["pi_2", "status"] == "succeeded" and len(pays) == 2


def test_a_refund_in_a_later_batch_takes_its_payment_s_invoice(mirror):
    mirror(normalize_all(invoices=[invoice()], charges=[charge()], invoice_payments=[by_intent()]))
    out = normalize_all(refunds=[refund(pi="pi_1")], **context(mirror.folder))
    assert pay_rows(out) == [("re_1", "refund", "in_1", "cus_1", 400, "succeeded")]
    assert out.payments.iloc[0]["entity_id"] == "US01"


@pytest.mark.parametrize("name", ["invoice_payment", "payment_intent", "refund", "discount"])
def test_the_vendored_fixtures_are_stripes_objects(name):
    obj = fixture(name)
    assert obj["object"] == name and obj["id"]


def test_an_uncaptured_charge_is_not_a_payment():
    # Stripe's example charge is an authorization (captured: false): no money moved yet
    auth = charge("ch_2", None)
    auth.update(captured=False, amount_captured=0)
    out = normalize_all(invoices=[invoice()], charges=[auth])
    assert out.payments.empty
    assert "ch_2" in set(out.notes["source_id"])


def test_a_partial_capture_is_the_captured_amount():
    # authorized 1,000, captured 600: the PaymentIntent received 600, one payment of 600
    ch = charge()
    ch.update(amount_captured=600)
    pi = payment_intent(received=600)
    out = normalize_all(invoices=[invoice()], charges=[ch], payment_intents=[pi],
                        invoice_payments=[by_intent(amount=600)])  # fmt: skip
    assert out.payments[["payment_id", "amount", "status"]].values.tolist() == [
        ["pi_1", 600, "succeeded"]
    ]
