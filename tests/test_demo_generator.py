"""The seeded demo platform: deterministic, contract-valid, consistent and complete."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from sync_core.contracts.models import MODELS
from sync_core.demo.generator import generate
from sync_core.filedrop import PERIOD_COLUMN as PERIOD_FROM

SUBS = 400  # small enough to be quick, large enough for every feature to appear
HEADER_OF = {
    "invoice_lines": ("invoices", "invoice_id"),
    "credit_note_lines": ("credit_notes", "credit_note_id"),
}


def read_drop(folder: Path) -> dict[str, pd.DataFrame]:
    """The minimal reader of the file-drop format: types from the model, ``period`` derived."""
    frames = {}
    for name, model in MODELS.items():
        df = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        for col, spec in model.to_schema().columns.items():
            if col not in df:
                continue
            kind = str(spec.dtype)
            if kind.startswith("datetime64"):
                df[col] = pd.to_datetime(df[col].replace("", None), utc=True)
            elif kind in ("bool", "boolean"):
                df[col] = df[col].map({"true": True, "false": False})
            elif kind == "int64":
                df[col] = df[col].astype("int64")
            else:
                df[col] = df[col].replace("", None)
        if name in PERIOD_FROM:
            ts = df[PERIOD_FROM[name]].dt.tz_convert(None)
            df["period"] = ts.dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
        frames[name] = df
    for name, (header, key) in HEADER_OF.items():
        period = frames[header].set_index(key)["period"]
        frames[name]["period"] = frames[name][key].map(period)
    return frames


def failing_rows(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    failing = {}
    for name, model in MODELS.items():
        try:
            model.validate(frames[name], lazy=True)
        except pa.errors.SchemaErrors as err:
            cases = err.failure_cases
            assert cases["index"].notna().all(), cases[cases["index"].isna()]
            failing[name] = cases["index"].nunique()
    return failing


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[str, int], dict[str, pd.DataFrame]]:
    folder = tmp_path_factory.mktemp("clean")
    counts = generate(folder, subscriptions=SUBS, seed=11, bad_rows=0)
    return folder, counts, read_drop(folder)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, clean):
    folder, counts, _ = clean
    again = generate(tmp_path / "again", subscriptions=SUBS, seed=11, bad_rows=0)
    assert again == counts
    names = [f"{n}.csv" for n in MODELS]
    match, mismatch, errors = filecmp.cmpfiles(folder, tmp_path / "again", names, shallow=False)
    assert match == names and not mismatch and not errors
    generate(tmp_path / "other", subscriptions=SUBS, seed=12, bad_rows=0)
    _, mismatch, _ = filecmp.cmpfiles(folder, tmp_path / "other", names, shallow=False)
    assert "invoices.csv" in mismatch and "usage_events.csv" in mismatch


def test_format_of_the_drop(clean):
    folder, counts, frames = clean
    for name, model in MODELS.items():
        raw = (folder / f"{name}.csv").read_bytes()
        assert b"\r" not in raw
        header = raw.split(b"\n", 1)[0].decode().split(",")
        assert header == [c for c in model.to_schema().columns if c != "period"]
        assert len(frames[name]) == counts[name]
        assert (frames[name]["entity_id"].notna()).all()
    ts = pd.read_csv(folder / "invoices.csv", dtype=str)["finalized_at"]
    assert ts.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    ids = {
        "customers": ["customer_id"],
        "subscription_contracts": ["contract_id", "version"],
        "usage_events": ["event_id"],
        "invoices": ["invoice_id"],
        "invoice_lines": ["line_key"],
        "credit_notes": ["credit_note_id"],
        "credit_note_lines": ["credit_note_line_id"],
        "payments": ["payment_id"],
    }
    for name, cols in ids.items():
        df = frames[name]
        assert df.equals(df.sort_values(cols, kind="stable")), name
    # everything happens inside the year
    lo, hi = pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")
    for name, col in PERIOD_FROM.items():
        assert frames[name][col].between(lo, hi, inclusive="left").all(), name
    for name, col in [("invoices", "voided_at"), ("credit_notes", "voided_at")]:
        assert frames[name][col].dropna().between(lo, hi, inclusive="left").all(), name


def test_every_file_validates_without_bad_rows(clean):
    _, _, frames = clean
    assert failing_rows(frames) == {}


def test_invoice_and_credit_note_arithmetic(clean):
    _, _, f = clean
    inv, lines = f["invoices"].set_index("invoice_id"), f["invoice_lines"]
    sums = lines.groupby("invoice_id")[["amount", "tax_amount"]].sum()
    assert (sums["amount"] == inv["subtotal"].reindex(sums.index)).all()
    assert (sums["tax_amount"] == inv["tax"].reindex(sums.index)).all()
    assert set(sums.index) == set(inv.index)
    assert (inv["total"] == inv["subtotal"] + inv["tax"]).all()
    assert (lines["currency"].values == inv.loc[lines["invoice_id"], "currency"].values).all()

    cn, cnl = f["credit_notes"].set_index("credit_note_id"), f["credit_note_lines"]
    settled = cn["refund_amount"] + cn["credit_balance_amount"] + cn["out_of_band_amount"]
    pre = cn["type"] == "pre_payment"
    assert (settled[pre] == 0).all()
    assert (settled[~pre] == cn.loc[~pre, "total"]).all()
    assert (cn["total"] == cn["subtotal"] + cn["tax"]).all()
    line_sums = cnl.groupby("credit_note_id")[["amount", "tax_amount"]].sum()
    assert (line_sums["amount"] == cn.loc[line_sums.index, "subtotal"]).all()
    assert (line_sums["tax_amount"] == cn.loc[line_sums.index, "tax"]).all()
    keyed = cnl["invoice_line_key"].dropna()
    assert keyed.isin(set(lines["line_key"])).all()
    assert (cn["total"] <= inv.loc[cn["invoice_id"], "total"].values).all()

    pay = f["payments"]
    ok = pay[(pay["kind"] == "payment") & (pay["status"] == "succeeded")]
    assert ok["invoice_id"].is_unique
    paid = inv[inv["status"] == "paid"]
    assert set(ok["invoice_id"]) == set(paid.index)
    live_pre = cn[pre & (cn["status"] == "issued")].groupby("invoice_id")["total"].sum()
    due = paid["total"] - live_pre.reindex(paid.index, fill_value=0)
    assert (ok.set_index("invoice_id")["amount"].reindex(paid.index) == due).all()
    assert (ok["currency"].values == inv.loc[ok["invoice_id"], "currency"].values).all()
    assert (ok["created_at"].values > inv.loc[ok["invoice_id"], "finalized_at"].values).all()
    refunds = pay[pay["kind"] == "refund"].set_index("credit_note_id")
    with_refund = cn[cn["refund_amount"] > 0]
    assert set(refunds.index) == set(with_refund.index)
    assert (refunds["amount"] == with_refund.loc[refunds.index, "refund_amount"]).all()
    assert (refunds["invoice_id"] == with_refund.loc[refunds.index, "invoice_id"]).all()
    unpaid = inv[inv["status"] != "paid"].index
    assert not ok["invoice_id"].isin(unpaid).any()

    # usage lines bill the previous period's summed quantity at the tiered price
    usage = lines[lines["line_type"] == "usage"]
    first = usage["quantity"].clip(upper=1000)
    assert (usage["amount"] == 2 * first + (usage["quantity"] - first)).all()
    ev = f["usage_events"].merge(
        usage[["subscription_item_id", "period_start", "period_end", "quantity"]],
        on="subscription_item_id",
        suffixes=("", "_line"),
    )
    ev = ev[(ev["timestamp"] >= ev["period_start"]) & (ev["timestamp"] < ev["period_end"])]
    per_line = ev.groupby(["subscription_item_id", "period_start"])["quantity"].sum()
    billed = usage.set_index(["subscription_item_id", "period_start"])["quantity"]
    assert (billed[billed > 0] == per_line.reindex(billed[billed > 0].index)).all()
    assert f["usage_events"]["event_id"].is_unique


def test_exactly_the_requested_bad_rows_fail(tmp_path):
    generate(tmp_path, subscriptions=SUBS, seed=11, bad_rows=5)
    failing = failing_rows(read_drop(tmp_path))
    assert sum(failing.values()) == 5
    assert len(failing) == 5  # spread over five objects


def test_every_feature_is_present(clean):
    _, _, f = clean
    inv, lines, cn, cnl, pay = (
        f[n] for n in ("invoices", "invoice_lines", "credit_notes", "credit_note_lines", "payments")
    )
    contracts, customers = f["subscription_contracts"], f["customers"]
    assert set(inv["entity_id"]) == {"US01", "UK01", "DE01"}
    assert set(contracts["interval"]) == {"month", "year"}
    assert set(contracts["amendment_type"]) == {
        "new", "upgrade", "downgrade", "quantity_change", "cancel", "renew", "entity_change",
    }  # fmt: skip
    assert contracts["metered"].any()
    prorations = lines[lines["proration"]]
    assert (prorations["amount"] < 0).any() and (prorations["amount"] > 0).any()
    assert (prorations["line_type"] == "invoiceitem").all()
    assert (lines["line_type"] == "usage").any()
    assert not lines["line_id"].is_unique and lines["line_key"].is_unique
    assert set(cn["type"]) == {"pre_payment", "post_payment"}
    assert (cn["status"] == "void").any()
    assert cnl["invoice_line_key"].isna().any() and cnl["invoice_line_key"].notna().any()
    assert not cn["credit_note_id"].isin(cnl["credit_note_id"]).all()  # some have no lines
    assert (pay["kind"] == "refund").any() and (pay["status"] == "failed").any()
    assert set(inv["status"]) == {"paid", "open", "void", "uncollectible"}
    functional = f["legal_entities"].set_index("entity_id")["functional_currency"]
    foreign = inv["currency"] != inv["entity_id"].map(functional)
    assert foreign.any() and (inv.loc[foreign, "fx_rate"] != "1").all()
    assert (inv.loc[~foreign, "fx_rate"] == "1").all()
    assert customers["erp_customer_id"].isna().any()
    assert customers["erp_customer_id"].dropna().str.fullmatch(r"C-(US01|UK01|DE01)-\d{6}").all()
    assert (lines["tax_amount"] > 0).any() and (lines["tax_amount"] == 0).any()
