"""`billing-sync run`: a finance user's own file drop through the Dagster chain.

The case (tests/fixtures/filedrop/stripe_examples) is Stripe's worked examples 1 and 4
(domain brief, "Worked examples"): a 31 USD monthly subscription from Jan 15 recognizes
17.00 USD in January (14.00 USD deferred) and 14.00 USD in February; metered usage of 15
units on Jan 25 and 17 on Feb 4, billed 32 USD on Feb 14, recognizes 15.00 USD in January
(unbilled AR 15.00 USD) and 17.00 USD in February.
"""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sync_assets import cli

CASE = Path(__file__).parent / "fixtures" / "filedrop" / "stripe_examples"
NOW = pd.Timestamp("2025-06-10", tz="UTC")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A tmp Dagster instance and SQLite warehouse (ledger and queue in the same file)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SYNC_WAREHOUSE_URL", url)
    for name in ("SYNC_SOURCE_KIND", "SYNC_SOURCE_PATH"):
        monkeypatch.setenv(name, "unset-by-test")  # restored after the test; main() sets them
    for name in ("SYNC_LEDGER_URL", "SYNC_ERP_TARGET", "SYNC_ERP_URL", "SYNC_ERP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return {"home": home, "url": url}


def _materialized(asset: str) -> set[str]:
    with dg.DagsterInstance.get() as instance:
        return set(instance.get_materialized_partitions(dg.AssetKey(asset)))


def _row(out: str, entity: str, period: str) -> list[str]:
    """The summary row of an entity and period, split on whitespace."""
    rows = [ln.split() for ln in out.splitlines() if ln.split()[:2] == [entity, period]]
    assert len(rows) == 1, out
    return rows[0]


def test_partitions_of_the_drop_are_its_record_and_service_months():
    drop = cli.read_drop(CASE)
    parts = cli.drop_partitions(drop, now=NOW)
    assert parts.entities == ["CA01", "US01"]
    assert parts.ingest == [("CA01", "2025-01-01"), ("CA01", "2025-02-01"), ("US01", "2025-01-01")]
    # US01's service Jan 15 - Feb 15 earns in February, where US01 has no record
    assert parts.derived == [
        ("CA01", "2025-01-01"), ("CA01", "2025-02-01"),
        ("US01", "2025-01-01"), ("US01", "2025-02-01"),
    ]  # fmt: skip
    assert parts.outside == []


def test_entity_and_month_range_narrow_the_partitions():
    drop = cli.read_drop(CASE)
    parts = cli.drop_partitions(drop, entity="US01", start="2025-02", end="2025-03", now=NOW)
    assert parts.entities == ["US01"]
    assert parts.ingest == []
    assert parts.derived == [("US01", "2025-02-01")]


def test_months_after_the_current_month_are_reported_not_run():
    parts = cli.drop_partitions(cli.read_drop(CASE), now=pd.Timestamp("2025-01-31", tz="UTC"))
    assert ("US01", "2025-02-01") not in parts.derived
    assert parts.outside == [("CA01", "2025-02-01"), ("US01", "2025-02-01")]


def test_a_late_void_and_a_customer_change_touch_their_months():
    whole = cli.read_drop(CASE)
    late = {name: df.iloc[0:0] for name, df in whole.items()}
    inv = whole["invoices"][whole["invoices"]["invoice_id"] == "in_ex1"].copy()
    inv["voided_at"] = pd.Timestamp("2025-04-02", tz="UTC")
    late["invoices"] = inv
    late["customers"] = whole["customers"][whole["customers"]["customer_id"] == "cus_ex4"]
    parts = cli.drop_partitions(late, whole, now=NOW)
    assert parts.ingest == [("CA01", "2025-01-01"), ("US01", "2025-01-01")]
    # the void month; the customer's invoice (Feb), usage (Jan, Feb) and service months
    assert parts.derived == [
        ("CA01", "2025-01-01"), ("CA01", "2025-02-01"),
        ("US01", "2025-01-01"), ("US01", "2025-04-01"),
    ]  # fmt: skip


def test_a_refund_touches_the_service_months_still_to_come():
    whole = cli.read_drop(CASE)
    late = {name: df.iloc[0:0] for name, df in whole.items()}
    refund = whole["payments"].copy()
    refund["payment_id"], refund["kind"] = "py_refund", "refund"
    refund["created_at"] = pd.Timestamp("2025-01-29T00:00:00Z")
    refund["period"] = pd.Timestamp("2025-01-01", tz="UTC")
    late["payments"] = refund
    parts = cli.drop_partitions(late, whole, now=NOW)
    assert parts.ingest == [("US01", "2025-01-01")]
    # the service Jan 15 - Feb 15 still to come in February stops being recognized
    assert parts.derived == [("US01", "2025-01-01"), ("US01", "2025-02-01")]


def test_run_materializes_exactly_the_drop_and_prints_the_worked_examples(env, capsys):
    assert cli.main(["run", "--source", str(CASE), "--quiet"]) == 0
    out = capsys.readouterr().out

    assert _materialized("invoices") == {"CA01|2025-01-01", "CA01|2025-02-01", "US01|2025-01-01"}
    derived = {"CA01|2025-01-01", "CA01|2025-02-01", "US01|2025-01-01", "US01|2025-02-01"}
    assert _materialized("revenue_schedules") == derived
    assert _materialized("erp_postings") == derived
    with dg.DagsterInstance.get() as instance:
        assert sorted(instance.get_dynamic_partitions("legal_entity")) == ["CA01", "US01"]

    # entity period currency billings revenue deferred unbilled_ar (each "amount USD")
    assert _row(out, "US01", "2025-01")[:11] == [
        "US01", "2025-01", "USD", "31.00", "USD", "17.00", "USD", "14.00", "USD", "0.00", "USD"
    ]  # fmt: skip
    assert _row(out, "US01", "2025-02")[5] == "14.00"
    assert _row(out, "US01", "2025-02")[7] == "0.00"
    assert _row(out, "CA01", "2025-01")[5:10] == ["15.00", "USD", "0.00", "USD", "15.00"]
    assert _row(out, "CA01", "2025-02")[3:10] == [
        "32.00",
        "USD",
        "17.00",
        "USD",
        "0.00",
        "USD",
        "0.00",
    ]
    assert "ERP target sql_ledger:" in out and "0 open posting exceptions" in out

    # what reached the ERP: the GL's revenue per month is the schedule's
    eng = sa.create_engine(env["url"])
    gl = pd.read_sql(
        "select j.entity_id, j.period, sum(l.credit - l.debit) as revenue "
        "from ledger_journal_lines l join ledger_journals j using (external_id) "
        "where l.account = 'Revenue' group by 1, 2 order by 1, 2",
        eng,
    )
    assert [(r.entity_id, str(r.period)[:7], int(r.revenue)) for r in gl.itertuples()] == [
        ("CA01", "2025-01", 1500), ("CA01", "2025-02", 1700),
        ("US01", "2025-01", 1700), ("US01", "2025-02", 1400),
    ]  # fmt: skip


def test_run_of_one_entity_and_month_touches_nothing_else(env, capsys):
    argv = ["run", "--source", str(CASE), "--entity", "US01", "--to", "2025-01", "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert _materialized("revenue_schedules") == {"US01|2025-01-01"}
    assert _materialized("invoices") == {"US01|2025-01-01"}
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("legal_entity") == ["US01"]
    assert _row(out, "US01", "2025-01")[5] == "17.00"
    assert "CA01" not in out


def test_an_unparseable_file_names_file_line_and_field_and_exits_non_zero(tmp_path, env, capsys):
    drop = tmp_path / "drop"
    shutil.copytree(CASE, drop)
    inv = drop / "invoices.csv"
    inv.write_text(inv.read_text().replace(",3100,0,3100,1,0", ",31.00,0,3100,1,0"))
    assert cli.main(["run", "--source", str(drop)]) == 2
    err = capsys.readouterr().err
    assert (
        "invoices.csv, line 2, field 'subtotal': expected an integer (minor units), got '31.00'"
        in err
    )
    assert "Traceback" not in err
    assert _materialized("invoices") == set()


def test_a_bad_legal_entity_fails_the_run_with_its_reason_not_a_traceback(tmp_path, env, capsys):
    drop = tmp_path / "drop"
    shutil.copytree(CASE, drop)
    le = drop / "legal_entities.csv"
    le.write_text(le.read_text().replace("CA,2,day", "CA,2,weekly"))
    assert cli.main(["run", "--source", str(drop), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "legal_entities breaks the contract" in err and "CA01" in err
    assert "Traceback" not in err
    assert _materialized("invoices") == set()


def test_a_month_that_is_not_yyyy_mm_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--source", str(CASE), "--from", "2025-1"])
    assert exc.value.code == 2
    assert "expected a month as YYYY-MM, got '2025-1'" in capsys.readouterr().err
