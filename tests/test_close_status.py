"""close_status, the exception queue's open rows and ops_metrics after a small whole-chain run.

The file drop is tests/fixtures/filedrop/stripe_examples (US01: a 31 USD subscription from
2025-01-15, paid; CA01: 32 USD of metered usage invoiced on 2025-02-14) with CA01's customer
lacking its ERP id, so CA01's February journals wait in the exception queue for master data.
Both entities' January and February run as the demo runs them (an ingest stage, then a
ranged derived stage per entity)."""

import shutil

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sync_assets import runner
from sync_assets.partitions import entity_partitions, partition_key
from sync_core.erp.periods import set_period_status
from sync_core.status import read_status
from tests.helpers import make_resources, materialize

FIXTURE = "tests/fixtures/filedrop/stripe_examples"
PARTS = [("US01", "2025-01-01"), ("US01", "2025-02-01"), ("CA01", "2025-01-01"),
         ("CA01", "2025-02-01")]  # fmt: skip


def _set_erp_id(folder, customer: str, erp_id: str) -> None:
    path = folder / "customers.csv"
    c = pd.read_csv(path, dtype=str, keep_default_na=False)
    c.loc[c["customer_id"] == customer, "erp_customer_id"] = erp_id
    c.to_csv(path, index=False)


def _latest(instance, asset: str, key: str) -> dict:
    rec = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
    ).records[0]
    return rec.asset_materialization.metadata


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("close_status")
    drop = tmp / "drop"
    shutil.copytree(FIXTURE, drop)
    _set_erp_id(drop, "cus_ex4", "")
    resources = make_resources(drop, f"sqlite:///{tmp / 'wh.sqlite'}")
    with dg.instance_for_test() as instance:
        assert materialize(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, ["CA01", "US01"])
        runner.run_stages(instance, resources, PARTS, PARTS, trigger="test", say=lambda _: None)
        yield instance, resources, drop


def _row(resources, entity: str, period: str) -> dict:
    wh = resources["warehouse"].get()
    rows = read_status(wh.engine, entity)
    return rows[rows["period"] == pd.Timestamp(period, tz="UTC")].iloc[0].to_dict()


def test_a_clean_month_is_reconciled_with_its_counts(chain):
    instance, resources, _ = chain
    row = _row(resources, "US01", "2025-01-01")
    # customer, contract, invoice, invoice line, payment
    assert row["records"] == 5 and row["quarantined"] == 0
    assert (row["exceptions_finance"], row["exceptions_master_data"],
            row["exceptions_integration"]) == (0, 0, 0)  # fmt: skip
    assert row["schedule_rows"] == 1
    # 31 USD from 2025-01-15 by day: 17.00 recognized in January, 14.00 deferred
    assert (row["revenue_functional"], row["deferred_functional"]) == (1700, 1400)
    assert row["functional_currency"] == "USD"
    # invoice finalized, payment, January revenue
    assert (row["proposed_journals"], row["posted_journals"], row["held_journals"]) == (3, 3, 0)
    assert row["reconciled"] and row["accounts_with_drift"] == 0 and row["drift_functional"] == 0
    assert row["drift_severity"] == "PASS"
    assert row["stage"] == "reconciled" and row["waiting_on"] is None
    assert not row["revenue_closed"] and row["closed_by"] is None
    assert pd.notna(row["ingested_at"]) and row["ingested_at"] <= row["updated_at"]
    feb = _row(resources, "US01", "2025-02-01")
    assert (feb["records"], feb["revenue_functional"], feb["deferred_functional"]) == (0, 1400, 0)
    assert feb["stage"] == "reconciled"
    # one ranged run materialized both months: each carries its own figures
    jan_meta, feb_meta = (_latest(instance, "close_status", f"US01|2025-0{m}-01") for m in (1, 2))
    assert (jan_meta["records"].value, feb_meta["records"].value) == (5, 0)
    assert jan_meta["revenue_functional"].value == 1700 and jan_meta["stage"].value == "reconciled"
    assert "| US01 | 2025-01 | reconciled |" in jan_meta["status"].value


def test_a_month_waiting_on_master_data_says_so(chain):
    _, resources, _ = chain
    row = _row(resources, "CA01", "2025-02-01")
    assert row["records"] == 3  # the invoice, its line and the February usage event
    assert row["exceptions_master_data"] == 2 and row["exceptions_finance"] == 0
    # the invoice journal (no ERP customer) and February's revenue, held behind it
    assert (row["proposed_journals"], row["posted_journals"], row["held_journals"]) == (2, 0, 2)
    assert row["revenue_functional"] == 1700  # 17 units in February
    assert row["stage"] == "posting_held"
    assert row["waiting_on"].startswith("master_data: 2 exceptions")
    jan = _row(resources, "CA01", "2025-01-01")
    # 15 units used in January: revenue accrued before the invoice, held behind it
    assert (jan["records"], jan["revenue_functional"], jan["held_journals"]) == (3, 1500, 1)
    assert jan["stage"] == "posting_held" and jan["exceptions_master_data"] == 1


def test_the_exception_queue_lists_the_open_rows_with_reason_and_owner(chain):
    instance, _, _ = chain
    meta = _latest(instance, "posting_exception_queue", "CA01|2025-02-01")
    # the whole queue after CA01's ranged run: its invoice and both months' revenue
    assert meta["open"].value == 3 and meta["open_master_data"].value == 3
    assert meta["open_finance"].value == 0 and meta["open_in_run_months"].value == 3
    assert meta["open_by_owner"].data == {"master_data": 3}
    assert meta["open_by_reason"].data == {"customer_erp_id": 1, "document_held": 2}
    rows = {r.data["journal_key"]: r.data for r in meta["open_rows"].records}
    assert list(rows) == ["CA01-INV-in_ex4", "CA01-REV-REV-202501-USD-in_ex4",
                          "CA01-REV-REV-202502-USD-in_ex4"]  # fmt: skip
    inv = rows["CA01-INV-in_ex4"]
    assert (inv["document"], inv["reason"], inv["owner"], inv["period"], inv["attempts"]) == (
        "in_ex4", "customer_erp_id", "master_data", "2025-02", 1)  # fmt: skip
    assert 0 <= inv["age_days"] < 1
    assert [c.name for c in meta["open_rows"].schema.columns][:6] == [
        "entity", "period", "document", "journal_key", "reason", "owner"]  # fmt: skip


def test_ops_metrics_of_the_run(chain):
    instance, _, _ = chain
    us = _latest(instance, "ops_metrics", "US01|2025-01-01")
    # the invoice and the payment of January, each posted once, none refused
    assert us["events_posted"].value == 2 and us["invoices_posted"].value == 1
    assert (us["failed_postings"].value, us["attempted_postings"].value) == (0, 2)
    assert us["failed_posting_rate"].value == 0.0
    assert us["invoice_post_latency_p95_s"].value > 0
    ca = _latest(instance, "ops_metrics", "CA01|2025-02-01")
    assert ca["open_exceptions_master_data"].value == 2 and ca["events_posted"].value == 0
    assert "invoice_post_latency_p50_s" not in ca  # nothing posted: no percentile
    # no month is closed: both months before the current one are the backlog
    assert ca["close_backlog_months"].value == 2


def test_replay_after_the_erp_id_arrives_empties_the_queue(chain):
    instance, resources, drop = chain
    _set_erp_id(drop, "cus_ex4", "C-2001")
    assert materialize(instance, resources, runner.ingest_assets(),
                       partition_key("CA01", "2025-01-01")).success  # fmt: skip
    replay = ["proposed_journals", "erp_postings", "posting_exception_queue"]
    assert materialize(instance, resources, replay, partition_key("CA01", "2025-02-01")).success
    meta = _latest(instance, "posting_exception_queue", "CA01|2025-02-01")
    # February's two journals posted; January's revenue waits for January's own replay
    assert meta["open"].value == 1 and meta["open_in_run_months"].value == 0
    assert [r.data["journal_key"] for r in meta["open_rows"].records] == [
        "CA01-REV-REV-202501-USD-in_ex4"]  # fmt: skip
    assert materialize(instance, resources, ["close_status"],
                       partition_key("CA01", "2025-02-01")).success  # fmt: skip
    row = _row(resources, "CA01", "2025-02-01")
    assert (row["posted_journals"], row["held_journals"], row["exceptions_master_data"]) == (
        2, 0, 0)  # fmt: skip


def test_a_closed_month_names_who_closed_it(chain):
    instance, resources, _ = chain
    wh = resources["warehouse"].get()
    wh.close_period("US01", "2025-01", "alice")
    key = partition_key("US01", "2025-01-01")
    assert materialize(instance, resources, ["close_status"], key).success
    row = _row(resources, "US01", "2025-01-01")
    # revenue closed, the ERP period still open: a close that did not finish says so
    assert row["stage"] == "close_incomplete" and row["revenue_closed"]
    assert "ERP period still open" in row["waiting_on"] and row["closed_by"] == "alice"
    set_period_status(resources["erp"].ledger().engine, "US01", "2025-01-01", "closed")
    assert materialize(instance, resources, ["close_status"], key).success
    row = _row(resources, "US01", "2025-01-01")
    assert row["stage"] == "closed" and row["erp_period_closed"]
    assert not _row(resources, "US01", "2025-02-01")["revenue_closed"]
    # the period close audit, when it exists, names the closer of that month
    with wh.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS period_close_log (id INTEGER PRIMARY KEY, entity_id TEXT "
                'NOT NULL, period DATE NOT NULL, action TEXT NOT NULL, "by" TEXT NOT NULL, '
                '"at" TIMESTAMP NOT NULL, reason TEXT, run_id TEXT, revenue_closed_through DATE, '
                "erp_status TEXT NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                'INSERT INTO period_close_log (entity_id, period, action, "by", "at", erp_status)'
                " VALUES ('US01', '2025-01-01', 'close', 'bob', '2025-02-03 10:00:00', 'closed')"
            )
        )
    assert materialize(instance, resources, ["close_status"], key).success
    row = _row(resources, "US01", "2025-01-01")
    assert row["closed_by"] == "bob"
    assert row["closed_at"] == pd.Timestamp("2025-02-03 10:00:00", tz="UTC")
