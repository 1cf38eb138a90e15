"""What a finance user reads on the asset pages: amounts with their currency, a description,
an owner and kinds on every asset, a description on every check and every multi-asset output,
the contract's columns on every table, and a first month that a setting can move."""

import dagster as dg
import pandas as pd
import pytest

from sync_assets.definitions import defs
from sync_assets.metadata import CONTRACT_MODELS, check_result, frame_metadata
from sync_assets.partitions import entity_partitions, first_period, partition_key
from sync_assets.reconciliation import _drift_metadata
from sync_core.contracts import MODELS
from sync_core.demo.generator import generate
from sync_core.money import UnknownCurrency
from sync_core.money_format import format_amount, plot_value
from sync_core.proposal_checks import CheckOutcome
from tests.helpers import make_resources, materialize

GRAPH = defs.resolve_asset_graph()
ASSET_KEYS = sorted(GRAPH.get_all_asset_keys(), key=lambda k: k.to_user_string())


# -- format_amount ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (4095778, "USD", "USD 40,957.78"),
        (500, "JPY", "JPY 500"),
        (1234, "KWD", "KWD 1.234"),
        (12, "CLF", "CLF 0.0012"),
        (5, "EUR", "EUR 0.05"),
        (-100, "USD", "USD -1.00"),
        (-4095778, "USD", "USD -40,957.78"),
        (-1234567, "JPY", "JPY -1,234,567"),
        (-5, "KWD", "KWD -0.005"),
        (0, "USD", "USD 0.00"),
        (0, "JPY", "JPY 0"),
        (10**15, "USD", "USD 10,000,000,000,000.00"),  # exact where a float is not
        (10**15 - 1, "USD", "USD 9,999,999,999,999.99"),
    ],
)
def test_format_amount(minor, currency, text):
    assert format_amount(minor, currency) == text


def test_format_amount_takes_numpy_integers_and_refuses_what_is_not_minor_units():
    import numpy as np

    assert format_amount(np.int64(-250), "GBP") == "GBP -2.50"
    for bad in (12.5, 100.0, True, "100"):
        with pytest.raises(TypeError):
            format_amount(bad, "USD")
    with pytest.raises(UnknownCurrency):
        format_amount(100, "XYZ")


def test_plot_value_is_major_units():
    assert plot_value(4095778, "USD") == 40957.78
    assert plot_value(500, "JPY") == 500.0
    assert plot_value(-1234, "KWD") == -1.234


# -- money in metadata ------------------------------------------------------------------


def test_functional_totals_are_grouped_by_the_functional_currency():
    lines = pd.DataFrame(
        {
            "currency": ["EUR", "EUR", "JPY"],
            "functional_currency": ["USD", "USD", "USD"],
            "debit": [1000, 250, 700],
            "debit_functional": [1100, 275, 5],
        }
    )
    meta = frame_metadata(lines, "debit_functional")
    assert meta["debit_functional_USD_display"].value == "USD 13.80"
    assert meta["debit_functional_USD"].value == 13.80
    assert meta["debit_functional_by_currency"].value == {"USD": "USD 13.80"}
    assert not any("EUR" in k or "JPY" in k for k in meta)
    by_tx = frame_metadata(lines, "debit")
    assert by_tx["debit_EUR_display"].value == "EUR 12.50"
    assert by_tx["debit_JPY_display"].value == "JPY 700"


def test_check_figures_in_a_currency_get_their_display_text():
    outcome = CheckOutcome(
        "schedule_equals_proposed_gl",
        False,
        {"max_drift_minor": 1700, "drift_Revenue_functional_USD": -1700, "drift_AR_txn_JPY": 3},
    )
    meta = check_result(outcome, "proposed_journals").metadata
    assert meta["max_drift_minor"].value == 1700  # kept numeric, as the guards read it
    assert meta["drift_Revenue_functional_USD"].value == -1700
    assert meta["drift_Revenue_functional_USD_display"].value == "USD -17.00"
    assert meta["drift_AR_txn_JPY_display"].value == "JPY 3"
    assert "max_drift_minor_display" not in meta  # a maximum over currencies has none


def test_reconciliation_drift_reads_with_its_currency():
    result = pd.DataFrame(
        {
            "account": ["Revenue", "AR", "Revenue"],
            "kind": ["functional", "functional", "transaction"],
            "currency": ["KWD", "KWD", "USD"],
            "drift": [-1234, 0, 999],
        }
    )
    meta = _drift_metadata(result)
    assert meta["drift_Revenue"].value == -1.234
    assert meta["drift_Revenue_display"].value == "KWD -1.234"
    assert meta["drift_AR_display"].value == "KWD 0.000"
    assert set(meta) == {"drift_Revenue", "drift_Revenue_display", "drift_AR", "drift_AR_display"}


# -- descriptions, owners, kinds --------------------------------------------------------


@pytest.mark.parametrize("key", ASSET_KEYS, ids=lambda k: k.to_user_string())
def test_every_asset_has_a_description_an_owner_and_a_kind(key):
    node = GRAPH.get(key)
    assert node.description and node.description.strip()
    assert node.owners and all(o.startswith("team:") for o in node.owners)
    assert 1 <= len(node.kinds) <= 3


def test_every_check_has_a_description():
    specs = [GRAPH.get_check_spec(k) for k in GRAPH.asset_check_keys]
    assert specs
    missing = [f"{s.asset_key.to_user_string()}:{s.name}" for s in specs if not s.description]
    assert missing == []


def test_every_multi_asset_output_has_its_own_description():
    multi = [ad for ad in GRAPH.assets_defs if len(ad.keys) > 1]
    assert {k.to_user_string() for ad in multi for k in ad.keys} >= {
        "usage_events", "usage_daily", "invoices", "invoice_lines", "revenue_schedules",
        "accounting_lines", "reconciliation", "reconciliation_items",
    }  # fmt: skip
    for ad in multi:
        texts = [ad.specs_by_key[k].description for k in ad.keys]
        assert all(texts), ad.keys
        assert len(set(texts)) == len(texts), texts
    assert (
        "per subscription item, metric and UTC day"
        in GRAPH.get(dg.AssetKey("usage_daily")).description
    )


# -- column schemas ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTRACT_MODELS))
def test_every_table_asset_carries_the_contract_columns(name):
    node = GRAPH.get(dg.AssetKey(name))
    schema = node.metadata["dagster/column_schema"]
    columns = list(CONTRACT_MODELS[name].to_schema().columns)
    assert [c.name for c in schema.columns] == columns
    if name in MODELS or name == "usage_daily":  # the objects docs/data-contract.md describes
        assert all(c.description for c in schema.columns), name
        assert {c.type for c in schema.columns} <= {
            "text", "integer", "money", "boolean", "timestamp", "decimal text"
        }  # fmt: skip


def test_column_schema_carries_the_contract_meaning_and_rules():
    schema = GRAPH.get(dg.AssetKey("invoices")).metadata["dagster/column_schema"]
    col = {c.name: c for c in schema.columns}
    assert col["total"].type == "money"
    assert col["invoice_id"].constraints.unique
    assert col["voided_at"].constraints.nullable
    assert not col["customer_id"].constraints.nullable
    assert col["entity_id"].description == "legal entity that owns the record"


# -- a materialization reads in its currency --------------------------------------------


def test_a_materialization_shows_its_totals_with_their_currency(tmp_path, sqlite_url):
    source = tmp_path / "source"
    generate(source, subscriptions=20, seed=11, year=2025, bad_rows=0)
    resources = make_resources(source, sqlite_url)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(instance, resources, ["legal_entities"]).success
    instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
    key = partition_key("US01", "2025-03-01")
    result = materialize(instance, resources, ["invoices", "invoice_lines"], key)
    assert result.success
    meta = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("invoices")
    )
    stored = (
        resources["warehouse"].get().read("invoices", "US01", pd.Timestamp("2025-03-01", tz="UTC"))
    )
    totals = {c: int(v) for c, v in stored.groupby("currency")["total"].sum().items()}
    assert "USD" in totals and totals["USD"] > 0
    for cur, minor in totals.items():
        whole, cents = divmod(minor, 100)
        assert meta[f"total_{cur}_display"].value == f"{cur} {whole:,}.{cents:02d}"
        assert meta[f"total_{cur}"].value == pytest.approx(minor / 100)
    assert meta["total_by_currency"].value == {c: meta[f"total_{c}_display"].value for c in totals}


# -- partitions -------------------------------------------------------------------------


def test_first_period_setting():
    today = pd.Timestamp("2026-05-14", tz="UTC")
    assert first_period(None, today) == "2025-01-01"
    assert first_period("2025-03", today) == "2025-03-01"
    assert first_period("2025-03-01", today) == "2025-03-01"
    assert first_period("2026-05", today) == "2026-05-01"
    for bad in ("2025-3", "2025-13", "2025-03-15", "1999-12", "2026-06", "March 2025"):
        with pytest.raises(ValueError, match="SYNC_FIRST_PERIOD"):
            first_period(bad, today)
