"""The seeded demo platform: deterministic, contract-valid, consistent and complete; the
default call unchanged, and a wide platform (10 entities x 24 months) with a steady book."""

from __future__ import annotations

import filecmp
import hashlib
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from sync_core import filedrop
from sync_core.contracts.models import MODELS
from sync_core.demo import late_changes
from sync_core.demo.entities import CURRENCY_TABLE, ENTITY_TABLE
from sync_core.demo.generator import ENTITIES, generate
from sync_core.filedrop import PERIOD_COLUMN as PERIOD_FROM
from sync_core.money import exponent, format_money

SUBS = 400  # small enough to be quick, large enough for every feature to appear
WIDE = dict(subscriptions=2000, seed=7, months=24, entities=10, bad_rows=0)
# sha256 over the files (MODELS order) of generate(subscriptions=400, seed=11, bad_rows=0)
# before months and entities existed: the default call writes the same bytes
CLEAN_DIGEST = "ea4e9fbe1c2960ae4c8e31fd6d311bafded8ce21779dce46db78da2f497e812e"
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


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> tuple[Path, dict[str, int], dict[str, pd.DataFrame]]:
    folder = tmp_path_factory.mktemp("wide")
    counts = generate(folder, **WIDE)
    return folder, counts, read_drop(folder)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in MODELS:
        h.update((folder / f"{name}.csv").read_bytes())
    return h.hexdigest()


def test_the_default_call_writes_what_it_always_wrote(clean):
    folder, counts, _ = clean
    assert _digest(folder) == CLEAN_DIGEST
    assert counts == {
        "legal_entities": 3, "customers": 320, "subscription_contracts": 585,
        "usage_events": 5233, "invoices": 2105, "invoice_lines": 2540, "credit_notes": 84,
        "credit_note_lines": 76, "payments": 1998, "disputes": 28,
    }  # fmt: skip


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


@pytest.mark.parametrize("platform", ["clean", "wide"])
def test_invoice_and_credit_note_arithmetic(platform, request):
    _, _, f = request.getfixturevalue(platform)
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


# ----------------------------------------------------------------------------- wide platform


def test_wide_platform_entities_and_counts(wide):
    _, counts, f = wide
    assert counts == {
        "legal_entities": 10, "customers": 1600, "subscription_contracts": 3443,
        "usage_events": 60423, "invoices": 24953, "invoice_lines": 29736, "credit_notes": 998,
        "credit_note_lines": 928, "payments": 23996, "disputes": 368,
    }  # fmt: skip
    le = f["legal_entities"]
    assert le["entity_id"].tolist() == [
        "US01", "UK01", "DE01", "FR01", "CA01", "AU01", "JP01", "NL01", "SG01", "SE01",
    ]  # fmt: skip
    assert le["functional_currency"].tolist() == [
        "USD", "GBP", "EUR", "EUR", "CAD", "AUD", "JPY", "EUR", "SGD", "SEK",
    ]  # fmt: skip
    assert le["erp_subsidiary_id"].tolist() == [str(i) for i in range(1, 11)]
    # the first three are the default demo's, unchanged
    rows = le[["entity_id", "name", "functional_currency", "country", "erp_subsidiary_id"]]
    assert [tuple(r) for r in rows.head(3).itertuples(index=False)] == list(ENTITIES)
    for name in MODELS:
        assert set(f[name]["entity_id"]) <= set(le["entity_id"]), name
    cust = f["customers"]
    assert cust["erp_customer_id"].dropna().str.fullmatch(r"C-[A-Z]{2}01-\d{6}").all()


def test_wide_platform_bills_every_entity_every_month_at_a_steady_volume(wide):
    _, _, f = wide
    inv = f["invoices"]
    month = inv["finalized_at"].dt.strftime("%Y-%m")
    per = inv.groupby([month, "entity_id"]).size().unstack(fill_value=0)
    assert per.shape == (24, 10) and per.index[0] == "2025-01" and per.index[-1] == "2026-12"
    assert per.min().min() == 21  # every entity has invoices in each of the 24 months
    total = per.sum(axis=1)
    assert (total["2025-06"], total["2026-12"]) == (1038, 1060)
    assert abs(total["2026-12"] / total["2025-06"] - 1) < 0.25
    assert (total.min(), total.max()) == (1016, 1060)  # steady from the first month
    assert per.loc["2026-12"].to_dict() == {
        "AU01": 60, "CA01": 71, "DE01": 153, "FR01": 119, "JP01": 56, "NL01": 52, "SE01": 26,
        "SG01": 41, "UK01": 168, "US01": 314,
    }  # fmt: skip
    # the numbering restarts every year
    assert (
        inv.loc[inv["finalized_at"] >= pd.Timestamp("2026-01-01", tz="UTC"), "number"]
        .str.match(r"[A-Z]{2}01-2026-\d{6}$")
        .all()
    )
    assert set(inv["number"].str[5:9]) == {"2025", "2026"} and inv["number"].is_unique
    # churn continues and annual terms renew into the second year
    contracts = f["subscription_contracts"]
    cancels = contracts[contracts["amendment_type"] == "cancel"]["effective_at"].dt.year
    assert (cancels == 2025).sum() > 200 and (cancels == 2026).sum() > 200
    lines = f["invoice_lines"]
    annual = set(contracts.loc[contracts["interval"] == "year", "contract_id"])
    renewed = lines[
        lines["subscription_item_id"].isin(annual) & (lines["line_type"] == "subscription")
    ]
    assert renewed.groupby("subscription_item_id").size().max() == 2
    assert (renewed["period_start"].dt.year == 2026).sum() > 250


def test_wide_platform_stays_inside_its_24_months(wide):
    _, _, frames = wide
    lo, hi = pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2027-01-01", tz="UTC")
    for name, col in PERIOD_FROM.items():
        assert frames[name][col].between(lo, hi, inclusive="left").all(), name
    for name, col in [("invoices", "voided_at"), ("credit_notes", "voided_at")]:
        assert frames[name][col].dropna().between(lo, hi, inclusive="left").all(), name


def test_wide_platform_passes_the_file_drop_contract(wide):
    folder, counts, frames = wide
    assert failing_rows(frames) == {}
    for name in MODELS:  # the pipeline's own reader
        assert len(filedrop.read_object(folder, name)) == counts[name], name


def test_wide_platform_keeps_every_feature(wide):
    _, _, f = wide
    inv, lines, cn, pay = (f[n] for n in ("invoices", "invoice_lines", "credit_notes", "payments"))
    contracts = f["subscription_contracts"]
    assert set(contracts["amendment_type"]) == {
        "new", "upgrade", "downgrade", "quantity_change", "cancel", "renew", "entity_change",
    }  # fmt: skip
    assert set(inv["status"]) == {"paid", "open", "void", "uncollectible"}
    assert set(cn["type"]) == {"pre_payment", "post_payment"} and (cn["status"] == "void").any()
    assert (pay["kind"] == "refund").any() and (pay["status"] == "failed").any()
    assert (lines["line_type"] == "usage").any() and lines["proration"].any()
    assert not lines["line_id"].is_unique and lines["line_key"].is_unique
    assert len(f["disputes"]) > 0
    # in the second year too
    year2 = pd.Timestamp("2026-01-01", tz="UTC")
    assert set(inv.loc[inv["finalized_at"] >= year2, "status"]) == set(inv["status"])
    assert (cn["issued_at"] >= year2).sum() > 400
    assert (f["disputes"]["created_at"] >= year2).sum() > 150
    functional = f["legal_entities"].set_index("entity_id")["functional_currency"]
    foreign = inv["currency"] != inv["entity_id"].map(functional)
    assert foreign.any() and (inv.loc[foreign, "fx_rate"] != "1").all()
    assert (inv.loc[~foreign, "fx_rate"] == "1").all()


def test_jpy_amounts_are_whole_yen(wide):
    _, _, f = wide
    assert exponent("JPY") == 0
    contracts = f["subscription_contracts"]
    jpy = contracts[(contracts["currency"] == "JPY") & ~contracts["metered"]]
    # the monthly plans cost 1,800 to 6,000 yen (annual: ten months), not 18.00 to 60.00
    assert sorted(set(jpy["unit_amount"])) == [1800, 2700, 4000, 6000, 18000, 27000, 40000, 60000]
    inv = f["invoices"]
    jp = inv[inv["currency"] == "JPY"]
    assert len(jp) == 1195 and set(jp["entity_id"]) <= {
        "JP01",
        "US01",
        "UK01",
        "DE01",
        "FR01",
        "CA01",
        "AU01",
        "NL01",
        "SG01",
        "SE01",
    }
    # 10 % consumption tax, rounded to whole yen per line (0 % for exports)
    assert ((jp["tax"] == 0) | ((jp["tax"] - jp["subtotal"] / 10).abs() <= 2)).all()
    assert (jp["tax"] > 0).mean() > 0.9
    assert format_money(int(jp["total"].iloc[0]), "JPY") == "39,600 JPY"  # no decimals
    # JP01 bills foreign customers in USD and EUR at about 150 yen per unit
    own = inv[(inv["entity_id"] == "JP01") & (inv["currency"] != "JPY")]
    assert set(own["currency"]) == {"USD", "EUR"}
    assert own["fx_rate"].astype(float).between(100, 250).all()
    fee = f["disputes"].set_index("currency")["fee"].groupby(level=0).first()
    assert fee["JPY"] == CURRENCY_TABLE["JPY"][2] == 1500


def test_late_changes_pick_from_the_wide_platform(wide):
    folder, _, _ = wide
    from sync_assets import cli

    delivery = late_changes.late_changes(cli.read_drop(folder), 2025, "US01")
    assert delivery.entity == "US01" and delivery.close_through == "2025-02-01"
    assert delivery.voided_invoice.startswith("in_")


def test_entities_and_months_bounds(tmp_path):
    counts = generate(tmp_path / "one", 50, months=6, entities=1, bad_rows=0)
    assert counts["legal_entities"] == 1
    inv = filedrop.read_object(tmp_path / "one", "invoices")
    assert set(inv["entity_id"]) == {"US01"}
    assert inv["finalized_at"].max() < pd.Timestamp("2025-07-01", tz="UTC")
    assert len(ENTITY_TABLE) == 20 and len({e[0] for e in ENTITY_TABLE}) == 20
    for entity in ENTITY_TABLE:
        assert abs(sum(p for _, p in entity[7]) - 1) < 1e-9, entity[0]
    for _, prices, _ in CURRENCY_TABLE.values():  # a downgrade steps at most 1.5x down
        assert all(b <= 1.5 * a for a, b in zip(prices, prices[1:]))
    for bad in (dict(entities=0), dict(entities=21), dict(months=0)):
        with pytest.raises(ValueError):
            generate(tmp_path / "bad", 10, **bad)


def test_demo_run_months_must_fit_the_partitions():
    from sync_assets import demo_run

    assert demo_run.periods(2025, 24)[::23] == ["2025-01-01", "2026-12-01"]
    now = pd.Timestamp("2026-12-01", tz="UTC")
    demo_run.check_range(2025, 24, 10, now=now)
    with pytest.raises(ValueError, match="after the current month 2026-12.*at most 24 months"):
        demo_run.check_range(2025, 25, 10, now=now)
    with pytest.raises(ValueError, match="before the first monthly partition"):
        demo_run.check_range(2024, 12, 3, now=now)
    with pytest.raises(ValueError, match="--entities"):
        demo_run.check_range(2025, 12, 21, now=now)
