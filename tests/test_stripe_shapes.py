"""Shape tests: the Stripe normalizer accepts every object it reads exactly as Stripe returns it
(Stripe's published example objects, /work/shared/fixtures/stripe/fixtures3.json), in the
nested ``parent`` line shape and in the legacy flat shape derived from it.

The fixture's amounts and dates are placeholders: no figure from it is asserted. A record
either becomes canonical rows or a quarantine row with a reason (or a note when skipped);
it never raises.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sync_core.contracts.validate import EXCEPTION_COLUMNS, SOURCE_ID
from sync_core.filedrop import file_columns
from sync_core.stripe.normalize import (
    NOTE_COLUMNS,
    OBJECTS,
    RULE_REQUIRED,
    Normalized,
    normalize_all,
    objects_from_events,
)

FIXTURES = Path(os.environ.get("STRIPE_FIXTURES", "/work/shared/fixtures/stripe/fixtures3.json"))
READ_TYPES = (
    "customer",
    "subscription",
    "subscription_item",
    "invoice",
    "line_item",
    "invoiceitem",
    "credit_note",
    "credit_note_line_item",
    "invoice_payment",
    "charge",
    "refund",
    "billing.meter_event",
    "event",
    "price",
)
DAY = 86_400

pytestmark = pytest.mark.skipif(not FIXTURES.exists(), reason=f"{FIXTURES} not found")


def _walk(node, found: dict) -> None:
    if isinstance(node, dict):
        kind = node.get("object")
        if isinstance(kind, str) and kind not in found:
            found[kind] = node
        for v in node.values():
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)


@pytest.fixture(scope="module")
def fx() -> dict[str, dict]:
    """One example object per ``object`` type, top-level resources first."""
    data = json.loads(FIXTURES.read_text(encoding="utf-8"))
    found: dict[str, dict] = {}
    resources = data.get("resources", data) if isinstance(data, dict) else data
    if isinstance(resources, dict):  # the resource named after its type wins, then others
        for k, v in resources.items():
            if isinstance(v, dict) and v.get("object") == k:
                found[k] = v
        for k, v in resources.items():
            if isinstance(v, dict) and isinstance(v.get("object"), str):
                found.setdefault(v["object"], v)
                found.setdefault(k, v)  # e.g. deleted_customer
    _walk(data, found)
    return {k: copy.deepcopy(v) for k, v in found.items()}


# ----------------------------------------------------------------------------- derivations


def finalized(inv: dict, at: int = 1_735_700_000) -> dict:
    inv = copy.deepcopy(inv)
    inv["status"] = "open"
    inv["status_transitions"] = {**(inv.get("status_transitions") or {}), "finalized_at": at}
    return inv


def with_product(line: dict, price: dict) -> dict:
    """The nested line with ``pricing.price_details`` as Stripe fills it for a priced line."""
    line = copy.deepcopy(line)
    pricing = dict(line.get("pricing") or {"type": "price_details"})
    pricing["price_details"] = {"price": price["id"], "product": price["product"]}
    line["pricing"] = pricing
    return line


def legacy_line(line: dict, price: dict) -> dict:
    """The flat pre-basil shape of a nested line (``type``, ``subscription``, ...)."""
    line = copy.deepcopy(line)
    parent = line.pop("parent", None) or {}
    ptype = parent.get("type")
    details = parent.get(ptype) or {}
    line.pop("pricing", None)
    taxes = line.pop("taxes", None) or []
    line["type"] = "invoiceitem" if ptype == "invoice_item_details" else "subscription"
    line["subscription"] = details.get("subscription")
    line["subscription_item"] = details.get("subscription_item")
    line["proration"] = bool(details.get("proration"))
    line["price"] = copy.deepcopy(price)
    line["tax_amounts"] = [
        {"amount": t.get("amount"), "inclusive": t.get("tax_behavior") == "inclusive"}
        for t in taxes
    ]
    return line


def legacy_invoice(inv: dict, price: dict) -> dict:
    inv = copy.deepcopy(inv)
    parent = inv.pop("parent", None) or {}
    inv["subscription"] = (parent.get("subscription_details") or {}).get("subscription")
    taxes = inv.pop("total_taxes", None) or []
    inv["tax"] = sum(t.get("amount") or 0 for t in taxes) if taxes else None
    inv["lines"] = {
        **inv["lines"],
        "data": [legacy_line(ln, price) for ln in inv["lines"]["data"]],
    }
    return inv


def legacy_credit_note(cn: dict) -> dict:
    cn = copy.deepcopy(cn)
    refunds = cn.pop("refunds", None) or []
    cn["refund"] = (refunds[0].get("refund") if refunds else None) and {
        "id": refunds[0]["refund"],
        "object": "refund",
        "amount": refunds[0].get("amount_refunded"),
    }
    cn.pop("total_taxes", None)
    cn["tax_amounts"] = []
    for ln in cn["lines"]["data"]:
        ln.pop("taxes", None)
        ln.pop("pretax_credit_amounts", None)
        ln["tax_amounts"] = []
    return cn


# ----------------------------------------------------------------------------- checks


def accounted(result: Normalized, object_type: str, source_id: str) -> str:
    """'row', 'quarantine' or 'note' - a record is always one of them."""
    frame = getattr(result, object_type)
    if source_id in set(frame[SOURCE_ID[object_type]]):
        return "row"
    q = result.quarantine[
        (result.quarantine["object_type"] == object_type)
        & (result.quarantine["source_id"] == source_id)
    ]
    if len(q):
        assert q["rule"].map(lambda r: isinstance(r, str) and r != "").all()
        assert q["message"].map(lambda m: isinstance(m, str) and m != "").all()
        assert (q["owner"].isin(["integration", "master_data", "billing_ops"])).all()
        return "quarantine"
    notes = result.notes[result.notes["source_id"] == source_id]
    assert len(notes), f"{object_type} {source_id} vanished: no row, quarantine or note"
    return "note"


def assert_canonical(result: Normalized) -> None:
    for name in OBJECTS:
        frame = getattr(result, name)
        assert list(frame.columns) == [c.name for c in file_columns(name)], name
        for spec in file_columns(name):
            dtype = str(frame[spec.name].dtype)
            if spec.kind == "timestamp":
                assert dtype == "datetime64[ns, UTC]", (name, spec.name, dtype)
            elif spec.kind == "int":
                assert dtype == "Int64", (name, spec.name, dtype)
            elif spec.kind == "bool":
                assert dtype == "boolean", (name, spec.name, dtype)
    assert list(result.quarantine.columns) == EXCEPTION_COLUMNS
    assert list(result.notes.columns) == NOTE_COLUMNS


def run(**kw) -> Normalized:
    result = normalize_all(default_entity="US01", **kw)
    assert_canonical(result)
    return result


# ----------------------------------------------------------------------------- tests


def test_fixture_has_every_type_we_read(fx):
    missing = [t for t in READ_TYPES if t not in fx]
    assert not missing, f"fixture lacks {missing}"
    inv_line = fx["invoice"]["lines"]["data"][0]
    assert "parent" in inv_line, "the fixture's lines are expected in the nested shape"


@pytest.mark.parametrize("shape", ["nested", "legacy"])
def test_every_read_object_parses_or_is_quarantined(fx, shape):
    price = fx["price"]
    draft = copy.deepcopy(fx["invoice"])
    open_inv = finalized(fx["invoice"])
    open_inv["id"] = "in_open"
    priced = finalized(fx["invoice"])
    priced["id"] = "in_priced"
    priced["lines"]["data"] = [with_product(ln, price) for ln in priced["lines"]["data"]]
    standalone = finalized(fx["invoice"])
    standalone["id"] = "in_standalone"
    standalone["lines"]["data"] = [with_product(fx["line_item"], price)]
    invoices = [draft, open_inv, priced, standalone]
    credit_note = copy.deepcopy(fx["credit_note"])
    cn_single = copy.deepcopy(fx["credit_note"])
    cn_single["id"] = "cn_single"
    cn_single["lines"]["data"] = [fx["credit_note_line_item"]]
    credit_notes = [credit_note, cn_single]
    if shape == "legacy":
        invoices = [legacy_invoice(i, price) for i in invoices]
        credit_notes = [legacy_credit_note(c) for c in credit_notes]
    sub_of_item = copy.deepcopy(fx["subscription"])
    sub_of_item["id"] = "sub_from_item"
    sub_of_item["items"]["data"] = [fx["subscription_item"]]

    result = run(
        customers=[fx["customer"]],
        subscriptions=[fx["subscription"], sub_of_item],
        invoices=invoices,
        credit_notes=credit_notes,
        invoice_payments=[fx["invoice_payment"]],
        charges=[fx["charge"]],
        refunds=[fx["refund"]],
        meter_events=[fx["billing.meter_event"]],
        events=[fx["event"]],
    )

    assert accounted(result, "customers", fx["customer"]["id"])
    for sub in (fx["subscription"], sub_of_item):
        for item in sub["items"]["data"]:
            assert accounted(result, "subscription_contracts", item["id"]) == "row"
    assert accounted(result, "invoices", draft["id"]) == "note"  # drafts are skipped
    for inv in invoices[1:]:
        assert accounted(result, "invoices", inv["id"]) in ("row", "quarantine")
        for ln in inv["lines"]["data"]:
            assert accounted(result, "invoice_lines", f"{inv['id']}/{ln['id']}")
    # priced lines carry everything the contract needs: rows, in both shapes
    for inv in (invoices[2], invoices[3]):
        assert accounted(result, "invoices", inv["id"]) == "row"
    lines = result.invoice_lines
    assert set(lines["line_type"]) <= {"subscription", "invoiceitem", "usage"}
    assert lines["line_key"].str.contains("/").all()
    assert (lines["period_start"] < lines["period_end"]).all()
    for cn in credit_notes:
        assert accounted(result, "credit_notes", cn["id"]) in ("row", "quarantine")
        for ln in cn["lines"]["data"]:
            assert accounted(result, "credit_note_lines", ln["id"])
    assert accounted(result, "payments", fx["charge"]["id"])
    assert accounted(result, "payments", fx["refund"]["id"])
    ip = fx["invoice_payment"]
    ip_id = (ip.get("payment") or {}).get(ip["payment"].get("type")) or ip["id"]
    assert accounted(result, "payments", ip_id)
    assert accounted(result, "usage_events", fx["billing.meter_event"]["identifier"])
    # the example event carries a plan: not read, noted
    assert accounted(result, "customers", fx["event"]["data"]["object"]["id"]) == "note"


def test_deleted_objects_are_noted(fx):
    deleted = [fx[k] for k in ("deleted_customer", "deleted_invoice") if k in fx]
    assert deleted, "the fixture has deleted_* examples"
    result = run(
        customers=[o for o in deleted if o["object"] == "customer"],
        invoices=[o for o in deleted if o["object"] == "invoice"],
    )
    for o in deleted:
        kind = "customers" if o["object"] == "customer" else "invoices"
        assert accounted(result, kind, o["id"]) == "note"


def test_nested_and_legacy_lines_agree(fx):
    price = fx["price"]
    nested = finalized(fx["invoice"])
    nested["lines"]["data"] = [with_product(ln, price) for ln in nested["lines"]["data"]]
    legacy = legacy_invoice(nested, price)
    a = run(invoices=[nested]).invoice_lines
    b = run(invoices=[legacy]).invoice_lines
    cols = ["line_key", "line_type", "proration", "product_id", "subscription_id"]
    cols += ["subscription_item_id", "period_start", "period_end", "tax_behavior"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert len(a) == len(nested["lines"]["data"])


def test_one_off_line_gets_a_one_day_period_and_a_note(fx):
    inv = finalized(fx["invoice"])
    line = with_product(fx["line_item"], fx["price"])
    line["period"] = {"start": 1_735_700_000, "end": 1_735_700_000}
    inv["lines"]["data"] = [line]
    result = run(invoices=[inv])
    row = result.invoice_lines.iloc[0]
    assert row["period_end"] - row["period_start"] == pd.Timedelta(days=1)
    assert (result.notes["kind"] == "adjusted").sum() == 1


@pytest.mark.parametrize("shape", ["nested", "legacy"])
def test_inclusive_tax_is_taken_out_of_the_amount(fx, shape):
    inv = finalized(fx["invoice"])
    line = with_product(fx["line_item"], fx["price"])
    line.update(amount=1210, period={"start": 1_735_700_000, "end": 1_735_700_000 + 30 * DAY})
    line["taxes"] = [{"amount": 210, "tax_behavior": "inclusive", "taxable_amount": 1000}]
    line["discount_amounts"] = []
    line["pretax_credit_amounts"] = []
    inv["lines"]["data"] = [line]
    inv["total"], inv["total_taxes"] = 1210, [{"amount": 210, "tax_behavior": "inclusive"}]
    if shape == "legacy":
        inv = legacy_invoice(inv, fx["price"])
    result = run(invoices=[inv])
    ln = result.invoice_lines.iloc[0]
    assert (ln["amount"], ln["tax_amount"], ln["tax_behavior"]) == (1000, 210, "inclusive")
    header = result.invoices.iloc[0]
    assert (header["subtotal"], header["tax"], header["total"]) == (1000, 210, 1210)


def test_missing_required_fields_are_quarantined_not_raised(fx):
    no_currency = finalized(fx["invoice"])
    no_currency["id"] = "in_no_currency"
    no_currency.pop("currency")
    no_id = finalized(fx["invoice"])
    no_id.pop("id")
    no_period = finalized(fx["invoice"])
    no_period["id"] = "in_no_period"
    bad = with_product(fx["line_item"], fx["price"])
    bad.pop("period")
    good = with_product(fx["line_item"], fx["price"])
    good["id"] = "il_good"
    no_period["lines"]["data"] = [bad, good]
    garbage = {"object": "invoice", "id": "in_garbage", "status": "paid", "lines": "oops"}
    weird_amount = finalized(fx["invoice"])
    weird_amount["id"] = "in_weird"
    weird_amount["total"] = "12.5"
    result = run(
        invoices=[no_currency, no_id, no_period, garbage, weird_amount, "not an object"],
        customers=[{"object": "customer"}, fx["customer"]],
        credit_notes=[{"id": "cn_x", "object": "credit_note"}],
        charges=[{"id": "ch_x", "object": "charge", "status": "succeeded"}],
    )
    q = result.quarantine
    assert len(result.invoices) == 0 and len(result.invoice_lines) == 0
    by_id = q.set_index("source_id")

    def message(sid):
        m = by_id.loc[sid, "message"]
        return " ".join(m) if isinstance(m, pd.Series) else m

    assert "currency" in message("in_no_currency")
    assert "period.start" in message(f"in_no_period/{bad['id']}")
    assert by_id.loc["in_no_period", "rule"] == "lines_valid"  # whole document out
    assert by_id.loc["in_no_period/il_good", "rule"] == "header_quarantined"
    assert "total" in message("in_weird")
    assert "currency" in message("in_garbage")  # the first missing field is named
    assert q.loc[q["object_type"] == "invoices", "source_id"].isna().sum() >= 1  # no id
    assert (q["rule"] == RULE_REQUIRED).sum() >= 5
    assert set(q["owner"]) <= {"integration", "master_data"}
    # the example customer has neither an address country nor a name: one is named
    assert any(f in message(fx["customer"]["id"]) for f in ("address.country", "name"))
    assert q["period"].dtype == "datetime64[ns, UTC]"


def test_entity_comes_from_metadata_then_default(fx):
    inv = finalized(fx["invoice"])
    inv["lines"]["data"] = [with_product(ln, fx["price"]) for ln in inv["lines"]["data"]]
    tagged = copy.deepcopy(inv)
    tagged["id"] = "in_tagged"
    tagged["metadata"] = {"legal_entity": "DE01"}
    result = normalize_all(invoices=[inv, tagged], default_entity="US01")
    ent = dict(zip(result.invoices["invoice_id"], result.invoices["entity_id"]))
    assert ent == {inv["id"]: "US01", "in_tagged": "DE01"}
    assert set(result.invoice_lines["entity_id"]) == {"US01", "DE01"}
    # no metadata and no default: quarantined with the reason, never guessed
    result = normalize_all(invoices=[inv])
    assert result.invoices.empty
    assert "legal_entity" in result.quarantine["message"].iloc[0]


def test_events_unpack_to_latest_object(fx):
    inv = finalized(fx["invoice"])
    inv["lines"]["data"] = [with_product(ln, fx["price"]) for ln in inv["lines"]["data"]]
    paid = copy.deepcopy(inv)
    paid["status"] = "paid"
    events = [
        {"id": "evt_2", "object": "event", "type": "invoice.paid", "created": 20,
         "data": {"object": paid}},
        {"id": "evt_1", "object": "event", "type": "invoice.finalized", "created": 10,
         "data": {"object": inv}},
        {"id": "evt_3", "object": "event", "type": "invoiceitem.created", "created": 30,
         "data": {"object": fx["invoiceitem"]}},
        fx["event"],
        {"id": "evt_broken", "object": "event", "data": None},
    ]  # fmt: skip
    objs = objects_from_events(events)
    assert [o["status"] for o in objs["invoice"]] == ["paid"]
    result = run(events=events)
    assert list(result.invoices["status"]) == ["paid"]
    assert accounted(result, "invoices", fx["invoiceitem"]["id"]) == "note"
