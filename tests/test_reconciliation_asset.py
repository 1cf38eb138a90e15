"""Reconciliation through Dagster on the demo platform: after a normal run the GL read back
from the ERP equals the subledger on every account; a ledger line deleted behind the
platform's back is drift, and the check fails with that amount. Both targets: the SQL ledger
and the sandbox NetSuite ERP (OAuth 2.0, customers registered from the file drop) read back
through SuiteQL over transaction / transactionline / transactionaccountingline."""

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sandboxes.erp_server import ErpSandbox
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions, partition_key
from sync_core.demo.generator import generate
from sync_core.erp.netsuite_body import to_minor_units
from tests.helpers import make_resources, materialize

RECONCILE = ["reconciliation", "reconciliation_items"]
MONTHS = ["2025-01-01", "2025-02-01", "2025-03-01"]


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    generate(folder, subscriptions=40, seed=11, year=2025, bad_rows=0)
    return folder


def run_months(instance, resources, entity="US01", months=MONTHS):
    assert materialize(instance, resources, ["legal_entities"]).success
    instance.add_dynamic_partitions(entity_partitions.name, [entity])
    keys = [partition_key(entity, m) for m in months]
    for key in keys:
        assert materialize(instance, resources, INGEST, key).success
    return [materialize(instance, resources, DERIVED, key) for key in keys]


def checks(result) -> dict:
    return {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey("reconciliation")
    }


def assert_reconciled(result):
    got = checks(result)
    assert set(got) == {"gl_equals_subledger", "postings_complete"}
    assert got["gl_equals_subledger"].passed, got["gl_equals_subledger"].metadata
    assert got["postings_complete"].passed, got["postings_complete"].metadata
    assert got["gl_equals_subledger"].metadata["drift_Revenue"].value == 0.0


def deleted_revenue_line(url: str, period: str) -> int:
    """Delete the Revenue line of the month's USD revenue journal from the SQL ledger and
    return its credit in minor units (what the GL no longer has)."""
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        row = conn.execute(sa.text(
            "select l.external_id, l.line_no, l.credit_functional from ledger_journal_lines l "
            "join ledger_journals j on j.external_id = l.external_id "
            "where j.entity_id = 'US01' and j.period = :p and j.event = 'revenue' "
            "and l.account = 'Revenue' and l.currency = 'USD' and j.reverses is null "
            "order by l.credit_functional desc limit 1"), {"p": period}).one()  # fmt: skip
        conn.execute(sa.text("delete from ledger_journal_lines where external_id = :e "
                             "and line_no = :n"), {"e": row[0], "n": row[1]})  # fmt: skip
    eng.dispose()
    return int(row[2])


def test_after_a_normal_run_the_gl_equals_the_subledger(demo_source, sqlite_url):
    resources = make_resources(demo_source, sqlite_url)
    with dg.instance_for_test() as instance:
        results = run_months(instance, resources)
    for result in results:
        assert_reconciled(result)
    table = resources["warehouse"].get().read("reconciliation", "US01")
    assert set(table["period"]) == {pd.Timestamp(m, tz="UTC") for m in MONTHS}
    assert (table["drift"] == 0).all() and set(table["severity"]) == {"PASS"}
    march = table[(table["period"] == pd.Timestamp(MONTHS[-1], tz="UTC"))
                  & (table["kind"] == "functional")].set_index("account")  # fmt: skip
    # the comparison is not empty: revenue earned, deferred revenue and cash on both sides
    assert march.loc["Revenue", "gl"] < 0 and march.loc["Revenue", "subledger"] < 0
    assert march.loc["DeferredRevenue", "gl"] < 0 and march.loc["Cash", "gl"] > 0
    items = resources["warehouse"].get().read("reconciliation_items", "US01")
    held = items[items["item_type"] == "held"]
    assert held["reason_code"].notna().all() and held["owner"].notna().all()


def test_a_deleted_ledger_line_is_drift_and_the_check_fails(demo_source, sqlite_url):
    resources = make_resources(demo_source, sqlite_url)
    with dg.instance_for_test() as instance:
        run_months(instance, resources)
        credit = deleted_revenue_line(sqlite_url, "2025-03-01")
        assert credit > 100  # above the 1.00 USD materiality of config/erp.yaml
        result = materialize(instance, resources, RECONCILE, partition_key("US01", MONTHS[-1]))
    got = checks(result)["gl_equals_subledger"]
    assert not got.passed and got.severity == dg.AssetCheckSeverity.ERROR
    # the GL lost a credit of `credit` on Revenue: the subledger's credit balance exceeds it
    assert got.metadata["drift_Revenue"].value == pytest.approx(-credit / 100)
    assert got.metadata["accounts_with_drift"].value == 1
    row = resources["warehouse"].get().read("reconciliation", "US01", MONTHS[-1])
    rev = row[(row["account"] == "Revenue") & (row["kind"] == "functional")]
    assert rev["drift"].tolist() == [-credit] and rev["severity"].tolist() == ["ERROR"]


def rest_settings(erp: ErpSandbox) -> dict:
    """ErpResource fields of the REST target with the sandbox's OAuth 2.0 client."""
    c = erp.credentials
    return {"target": "rest", "rest_base_url": erp.url, "rest_auth": "oauth2",
            "oauth_client_id": c.client_id, "oauth_certificate_id": c.certificate_id,
            "oauth_private_key": c.private_key_pem}  # fmt: skip


def test_the_rest_target_is_read_back_through_suiteql(demo_source, sqlite_url, tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", filedrop=demo_source) as erp:
        resources = make_resources(demo_source, sqlite_url, **rest_settings(erp))
        with dg.instance_for_test() as instance:
            results = run_months(instance, resources, months=MONTHS[:2])
            for result in results:
                assert_reconciled(result)
            queries = [r for r in erp.requests() if r["ref"].endswith("/suiteql")]
            assert queries and {r["status"] for r in queries} == {200}  # the GL came by SuiteQL
            # the ERP loses a journal the platform believes posted
            journals = [j for j in erp.journals() if j["externalId"].startswith("US01-INV-")
                        and not j["externalId"].endswith("-REV")]  # fmt: skip
            lost = max(journals, key=lambda j: sum(i.get("debit") or 0 for i in j["line"]["items"]))
            with erp.state.store.transaction() as store:
                store.conn.execute("delete from journal_line where journal = ?", (int(lost["id"]),))
                store.conn.execute("delete from journal_entry where internal_id = ?",
                                   (int(lost["id"]),))  # fmt: skip
            result = materialize(instance, resources, RECONCILE, partition_key("US01", MONTHS[1]))
        ar_id, currency = erp.master.account_id("1100"), lost["currency"]["refName"]
    got = checks(result)["gl_equals_subledger"]
    assert not got.passed and got.severity == dg.AssetCheckSeverity.ERROR
    ar = next(i for i in lost["line"]["items"] if i["account"]["id"] == ar_id)
    row = resources["warehouse"].get().read("reconciliation", "US01", MONTHS[1])
    drift = row[(row["account"] == "AccountsReceivable") & (row["kind"] == "transaction")
                & (row["currency"] == currency)]["drift"]  # fmt: skip
    assert drift.tolist() == [to_minor_units(ar.get("debit") or 0, currency)
                              - to_minor_units(ar.get("credit") or 0, currency)]  # fmt: skip
    assert drift.tolist()[0] != 0
