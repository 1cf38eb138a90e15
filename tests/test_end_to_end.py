"""End to end through Dagster: one partition, then a full year of every entity, on the demo
platform; a second run leaves the warehouse identical."""

import warnings

import dagster as dg
import pandas as pd
import pytest

from resources import BillingSourceResource, WarehouseIOManager, WarehouseResource
from sync_assets.definitions import ALL_ASSETS
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions, partition_key
from sync_core.demo.generator import generate

BUSINESS_TABLES = INGEST + DERIVED + ["legal_entities"]


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    generate(folder, subscriptions=60, seed=11, year=2025, bad_rows=5)
    return folder


def _resources(source, url):
    wh = WarehouseResource(url=url)
    return {
        "warehouse": wh,
        "warehouse_io": WarehouseIOManager(warehouse=wh),
        "billing_source": BillingSourceResource(kind="file_drop", path=str(source)),
    }


def _run(instance, resources, selection, key=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.materialize(
            ALL_ASSETS,
            selection=selection,
            partition_key=key,
            instance=instance,
            resources=resources,
        )


def _snapshot(wh) -> dict[str, pd.DataFrame]:
    out = {}
    for name in BUSINESS_TABLES + ["exceptions"]:
        df = wh.read(name)
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def test_one_partition_end_to_end(demo_source, sqlite_url):
    resources = _resources(demo_source, sqlite_url)
    with dg.instance_for_test() as instance:
        assert _run(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
        key = partition_key("US01", "2025-03-01")
        result = _run(instance, resources, INGEST + DERIVED, key)
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["journals_balance"] and checks["rollforward_balances"]
    wh = resources["warehouse"].get()
    inv = wh.read("invoices", "US01", "2025-03-01")
    assert len(inv) > 0 and set(inv["period"]) == {pd.Timestamp("2025-03-01", tz="UTC")}
    assert len(wh.read("erp_postings", "US01", "2025-03-01")) > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_full_year_every_entity_is_idempotent(demo_source, backend, request):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    resources = _resources(demo_source, url)
    wh = resources["warehouse"].get()
    with dg.instance_for_test() as instance:
        _run(instance, resources, ["legal_entities"])
        entities = sorted(wh.read("legal_entities")["entity_id"])
        assert entities == ["DE01", "UK01", "US01"]
        instance.add_dynamic_partitions(entity_partitions.name, entities)
        keys = [partition_key(e, f"2025-{m:02d}-01") for e in entities for m in range(1, 13)]
        snapshots = []
        for _ in range(2):
            for selection in (INGEST, DERIVED):
                for key in keys:
                    assert _run(instance, resources, selection, key).success
            snapshots.append(_snapshot(wh))
    first, second = snapshots
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)
    # every demo bad row is quarantined with a reason, and the good rows went on
    ingest_exc = first["exceptions"][first["exceptions"]["stage"] == "ingest"]
    assert len(set(ingest_exc["source_id"])) >= 5
    assert ingest_exc["message"].str.len().min() > 10
    # the schedule and the postings agree: revenue credited = revenue recognized per currency
    sched, posts = first["revenue_schedules"], first["erp_postings"]
    assert len(sched) and len(posts)
