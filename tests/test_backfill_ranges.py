"""A month depends on the same month upstream, and a backfill of an entity's months is one
ranged run that writes what the month-by-month runs write."""

import dagster as dg
import pandas as pd
import pytest

from sync_assets import runner
from sync_assets.definitions import defs
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import RANGE_END, RANGE_START, entity_partitions, partition_key
from sync_core.demo.generator import generate
from tests.helpers import make_resources, materialize

MONTHS = [f"2025-{m:02d}-01" for m in range(1, 7)]
COMPARED = ["revenue_schedules", "revenue_rollforward", "deferred_revenue_waterfall",
            "accounting_lines", "proposed_journals", "erp_postings", "exceptions"]  # fmt: skip


def test_every_partitioned_dependency_maps_a_month_to_the_same_month():
    graph = defs.resolve_asset_graph()
    pairs = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is None:
            continue
        for parent in node.parent_keys:
            if graph.get(parent).partitions_def is None:
                continue
            mapping = graph.get_partition_mapping(key, parent)
            pairs.append((key.to_user_string(), parent.to_user_string()))
            assert isinstance(mapping, dg.IdentityPartitionMapping), (key, parent, mapping)
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    assert ("revenue_schedules", "invoices") in pairs
    assert ("proposed_journals", "customers") in pairs


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    generate(folder, subscriptions=80, seed=11, year=2025, bad_rows=5)
    return folder


def _snapshot(resources) -> dict[str, pd.DataFrame]:
    wh = resources["warehouse"].get()
    out = {}
    for name in COMPARED:
        df = wh.read(name).drop(columns=["run_id", "detected_at"], errors="ignore")
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    journals = resources["erp"].ledger().journals()
    cols = ["external_id", "entity_id", "period", "event", "document_id", "version",
            "total_debit", "content_hash", "reverses", "correction"]  # fmt: skip
    out["ledger"] = journals[cols].sort_values(["external_id"]).reset_index(drop=True)
    return out


def _start(instance, resources):
    assert materialize(instance, resources, ["legal_entities"]).success
    instance.add_dynamic_partitions(entity_partitions.name, ["US01"])


def test_a_ranged_run_writes_what_month_by_month_runs_write(source, tmp_path):
    by_month = make_resources(source, f"sqlite:///{tmp_path / 'a.sqlite'}")
    ranged = make_resources(source, f"sqlite:///{tmp_path / 'b.sqlite'}")
    with dg.instance_for_test() as instance:
        _start(instance, by_month)
        for selection in (INGEST, DERIVED):
            for m in MONTHS:
                assert materialize(instance, by_month, selection, partition_key("US01", m)).success
    with dg.instance_for_test() as instance:
        _start(instance, ranged)
        parts = [("US01", m) for m in MONTHS]
        runner.run_stages(instance, ranged, parts, parts, say=lambda _: None)
        runs = instance.get_runs()
        # legal entities, one ingest run and one derived run for the six months
        assert len(runs) == 3
        ranged_run = [r for r in runs if r.tags.get(RANGE_START)]
        assert {r.tags[RANGE_END] for r in ranged_run} == {"US01|2025-06-01"}
    a, b = _snapshot(by_month), _snapshot(ranged)
    assert len(a["revenue_schedules"]) > 100 and len(a["ledger"]) > 20, len(a["ledger"])
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


def test_one_month_again_touches_only_that_month(source, tmp_path):
    resources = make_resources(source, f"sqlite:///{tmp_path / 'c.sqlite'}")
    with dg.instance_for_test() as instance:
        _start(instance, resources)
        parts = [("US01", m) for m in MONTHS]
        runner.run_stages(instance, resources, parts, parts, say=lambda _: None)
        before = _snapshot(resources)
        n_runs = len(instance.get_runs())
        key = partition_key("US01", "2025-03-01")
        result = materialize(instance, resources, INGEST + DERIVED, key)
        assert result.success
        touched = {m.partition for m in result.get_asset_materialization_events()
                   for m in [m.event_specific_data.materialization]}  # fmt: skip
        assert touched == {"US01|2025-03-01"}
        assert len(instance.get_runs()) == n_runs + 1
        stats = {
            e.event_specific_data.materialization.asset_key.to_user_string(): (
                e.event_specific_data.materialization.metadata
            )
            for e in result.get_asset_materialization_events()
        }
        assert stats["revenue_schedules"]["documents_recognized"].value == 0
    after = _snapshot(resources)
    proposed = after.pop("proposed_journals")
    march = proposed[proposed["period"] == pd.Timestamp("2025-03-01", tz="UTC")]
    # the month proposed again finds its journals in the ERP: nothing left to post
    assert set(march.loc[march["status"] == "ready", "action"]) == {"unchanged"}
    assert (proposed.drop(columns="action").reset_index(drop=True)
            .equals(before.pop("proposed_journals").drop(columns="action")
                    .reset_index(drop=True)))  # fmt: skip
    for name in before:  # nothing changed in the source: nothing changes, nothing posts
        pd.testing.assert_frame_equal(before[name], after[name], check_dtype=False, obj=name)
