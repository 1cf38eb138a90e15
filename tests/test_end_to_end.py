"""End to end through Dagster: one partition, then a full year of every entity, on the demo
platform; a second run leaves the warehouse identical."""

import dagster as dg
import pandas as pd
import pytest

from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions, partition_key
from sync_core.demo.generator import generate
from sync_core.warehouse.schema import TABLES
from tests.helpers import make_resources, materialize

# the assets stored as warehouse tables (not the queue view, close_status and ops_metrics, whose
# rows carry the time and run that computed them)
BUSINESS_TABLES = [n for n in INGEST + DERIVED if n in TABLES] + ["legal_entities"]


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    generate(folder, subscriptions=60, seed=11, year=2025, bad_rows=5)
    return folder


def _resources(source, url):
    return make_resources(source, url)


def _run(instance, resources, selection, key=None):
    return materialize(instance, resources, selection, key)


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
        assert checks["proposal_balanced"] and checks["rollforward_balances"]
        assert checks["schedule_equals_proposed_gl"] and checks["proposal_accounts_mapped"]
    wh = resources["warehouse"].get()
    inv = wh.read("invoices", "US01", "2025-03-01")
    assert len(inv) > 0 and set(inv["period"]) == {pd.Timestamp("2025-03-01", tz="UTC")}
    assert len(wh.read("erp_postings", "US01", "2025-03-01")) > 0


def _materialize_year(instance, resources, entities, months=range(1, 13)):
    keys = [partition_key(e, f"2025-{m:02d}-01") for e in entities for m in months]
    for selection in (INGEST, DERIVED):
        for key in keys:
            assert _run(instance, resources, selection, key).success


def _assert_rerun_changed_nothing(first, second, entity, months=range(1, 13)):
    """Every table is identical after a rerun; the proposal, a diff against the ERP, now
    shows every journal of the rerun months as already posted (or still held)."""
    for name in first:
        if name != "proposed_journals":
            pd.testing.assert_frame_equal(first[name], second[name], obj=name)
    p = second["proposed_journals"]
    rerun = p[(p["entity_id"] == entity) & p["period"].dt.month.isin(list(months))]
    assert len(rerun) > 0
    assert set(rerun.loc[rerun["status"] == "ready", "action"]) == {"unchanged"}
    assert set(rerun.loc[rerun["status"] == "held", "action"]) <= {"new"}
    keys = ["journal_key", "line_no"]
    before = first["proposed_journals"].drop(columns="action").sort_values(keys)
    after = p.drop(columns="action").sort_values(keys)
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))


def _assert_subledger_equals_gl(tables):
    """Controller invariants: schedule revenue = revenue of every proposed journal, and = GL
    revenue + the revenue of held journals; invoice totals = AR debits."""
    sched, posts, inv = tables["revenue_schedules"], tables["erp_postings"], tables["invoices"]
    keys = ["entity_id", "period"]
    net = sched.assign(net=sched["recognized_functional"] - sched["contra_revenue_functional"])
    revenue = net.groupby(keys)["net"].sum()
    rev_lines = posts[posts["account"] == "Revenue"]
    gl = (
        (rev_lines["credit_functional"] - rev_lines["debit_functional"])
        .groupby([rev_lines["entity_id"], rev_lines["period"]])
        .sum()
    )
    joined = pd.concat([revenue.rename("schedule"), gl.rename("gl")], axis=1).fillna(0)
    assert (joined["schedule"] == joined["gl"]).all(), joined[joined["schedule"] != joined["gl"]]
    assert joined["gl"].sum() > 0
    posted = rev_lines[rev_lines["posting_status"] == "posted"]
    held = rev_lines[rev_lines["posting_status"] == "held"]
    assert len(held) > 0  # the demo has customers without an ERP id: their revenue waits
    by = lambda df: (df["credit_functional"] - df["debit_functional"]).groupby(  # noqa: E731
        [df["entity_id"], df["period"]]).sum()  # fmt: skip
    total = by(posted).add(by(held), fill_value=0).reindex(joined.index, fill_value=0)
    assert (total == joined["schedule"]).all()
    ar = posts[(posts["event"] == "invoice_finalized") & (posts["account"] == "AccountsReceivable")]
    ar_by_doc = ar.groupby("document_id")["debit"].sum()
    totals = inv.set_index("invoice_id")["total"].reindex(ar_by_doc.index)
    assert len(ar_by_doc) > 0 and (ar_by_doc == totals).all()
    balance = posts.groupby(["external_id", "currency"])[["debit", "credit"]].sum()
    assert (balance["debit"] == balance["credit"]).all()


@pytest.mark.slow
def test_full_year_every_entity_on_sqlite_is_idempotent(demo_source, sqlite_url):
    resources = _resources(demo_source, sqlite_url)
    wh = resources["warehouse"].get()
    with dg.instance_for_test() as instance:
        _run(instance, resources, ["legal_entities"])
        entities = sorted(wh.read("legal_entities")["entity_id"])
        assert entities == ["DE01", "UK01", "US01"]
        instance.add_dynamic_partitions(entity_partitions.name, entities)
        _materialize_year(instance, resources, entities)
        first = _snapshot(wh)
        _materialize_year(instance, resources, ["UK01"])  # a second run changes nothing
        second = _snapshot(wh)
    _assert_rerun_changed_nothing(first, second, "UK01")
    ingest_exc = first["exceptions"][first["exceptions"]["stage"] == "ingest"]
    # the five bad demo rows, each with its reason; a bad line also holds its whole document
    root = ingest_exc[~ingest_exc["rule"].isin(["header_quarantined", "lines_valid"])]
    assert root["source_id"].nunique() == 5
    assert ingest_exc["message"].str.len().min() > 10
    held = first["exceptions"][first["exceptions"]["stage"] == "posting"]
    # a customer without an ERP id holds its documents' journals and their share of revenue
    assert set(held["rule"]) == {"customer_erp_id", "document_held"}
    assert set(held["owner"]) == {"master_data"}
    _assert_subledger_equals_gl(first)


@pytest.mark.slow
@pytest.mark.postgres
def test_full_year_on_postgres(demo_source, postgres_url):
    resources = _resources(demo_source, postgres_url)
    wh = resources["warehouse"].get()
    assert wh.dialect == "postgresql"
    with dg.instance_for_test() as instance:
        _run(instance, resources, ["legal_entities"])
        instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
        _materialize_year(instance, resources, ["US01"])
        first = _snapshot(wh)
        _materialize_year(instance, resources, ["US01"], months=[3, 4])
        second = _snapshot(wh)
    _assert_rerun_changed_nothing(first, second, "US01", months=[3, 4])
    _assert_subledger_equals_gl(first)
