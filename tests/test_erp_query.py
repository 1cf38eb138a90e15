"""The sandbox ERP's SuiteQL read and the client that reads the GL back through it: pages,
the SQL ledger's frame shape, and a query endpoint that only ever reads."""

import pytest
import requests

from sandboxes.erp_server import ErpSandbox
from sandboxes.erp_server import query as erp_query
from sync_core.erp.rest import RestErpClient
from sync_core.reconcile import gl_balances

ACCOUNTS = {"Cash": "1000", "AccountsReceivable": "1100", "TaxLiability": "2300",
            "DeferredRevenue": "2400"}  # fmt: skip


def journal(eid, period, lines, currency="USD", subsidiary="1"):
    return {"externalId": eid, "subsidiary": subsidiary, "tranDate": f"{period}-28",
            "period": period, "currency": currency, "memo": f"memo {eid}",
            "line": {"items": [{"account": a, "debit": d, "credit": c, "entity": "C-1",
                                "custcol_correlation_id": "in_1"} for a, d, c in lines]}}  # fmt: skip


INVOICE = [("1100", 3410, 0), ("2400", 0, 3100), ("2300", 0, 310)]


@pytest.fixture
def erp(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite") as sandbox, RestErpClient(sandbox.url) as client:
        outcomes = [client.put_journal(j) for j in [  # one by one: internal ids in this order
            journal("US01-INV-in_1-v1", "2026-01", INVOICE),
            journal("US01-INV-in_1-v1-REV", "2026-02", [(a, c, d) for a, d, c in INVOICE]),
            journal("US01-PAY-py_9-v1", "2026-01", [("1000", 5000, 0), ("1100", 0, 5000)],
                    currency="EUR"),
            journal("UK01-PAY-py_2-v1", "2026-01", [("1000", 70, 0), ("1100", 0, 70)],
                    subsidiary="2"),
        ]]  # fmt: skip
        assert {o.status for o in outcomes} == {"posted"}
        yield sandbox, client


def test_suiteql_pages_until_has_more_is_false(erp):
    sandbox, client = erp
    r = requests.post(f"{sandbox.url}/services/rest/query/v1/suiteql?limit=3&offset=0",
                      json={"q": "SELECT id, externalid FROM transaction ORDER BY id"},
                      headers={"Prefer": "transient"})  # fmt: skip
    page = r.json()
    assert r.status_code == 200
    assert (page["count"], page["hasMore"], page["totalResults"], page["offset"]) == (3, True, 4, 0)
    assert page["items"][0] == {"links": [], "id": "1", "externalid": "US01-INV-in_1-v1"}
    assert [x["rel"] for x in page["links"]] == ["self", "next"]
    rows = client.suiteql("SELECT externalid FROM transaction ORDER BY id", page_size=1)
    assert [x["externalid"] for x in rows] == ["US01-INV-in_1-v1", "US01-INV-in_1-v1-REV",
                                                "US01-PAY-py_9-v1", "UK01-PAY-py_2-v1"]  # fmt: skip


def test_read_journals_has_the_sql_ledger_shape_and_feeds_gl_balances(erp):
    _, client = erp
    heads, lines = client.read_journals("US01", "1", ACCOUNTS, "USD")
    assert heads["external_id"].tolist() == ["US01-INV-in_1-v1", "US01-INV-in_1-v1-REV",
                                             "US01-PAY-py_9-v1"]  # fmt: skip
    assert heads["reverses"].tolist() == [None, "US01-INV-in_1-v1", None]
    assert heads["event"].tolist() == ["invoice_finalized", "invoice_finalized", "payment"]
    assert heads["document_id"].tolist() == ["in_1", "in_1", "py_9"]
    inv = lines[lines["external_id"] == "US01-INV-in_1-v1"]
    assert inv[["account", "debit", "credit"]].values.tolist() == [
        ["AccountsReceivable", 3410, 0], ["DeferredRevenue", 0, 3100], ["TaxLiability", 0, 310],
    ]  # fmt: skip
    # a journal in the functional currency: base amounts = transaction amounts; in EUR the
    # sandbox (like a payload without exchange rate) does not know them
    assert inv["debit_functional"].tolist() == [3410, 0, 0]
    assert lines.loc[lines["currency"] == "EUR", "debit_functional"].isna().all()
    jan = gl_balances(heads, lines, "2026-01-01", "US01")
    txn = jan[jan["kind"] == "transaction"].set_index(["account", "currency"])["balance"]
    assert txn.to_dict() == {("AccountsReceivable", "EUR"): -5000, ("AccountsReceivable", "USD"): 3410,
                             ("Cash", "EUR"): 5000, ("DeferredRevenue", "USD"): -3100,
                             ("TaxLiability", "USD"): -310}  # fmt: skip
    feb = gl_balances(heads, lines, "2026-02-01", "US01")
    usd = feb[(feb["kind"] == "functional")].set_index("account")["balance"]
    assert usd.to_dict() == {"AccountsReceivable": 0, "DeferredRevenue": 0, "TaxLiability": 0}


def test_an_erp_account_mapped_from_two_accounts_is_a_clear_error(erp):
    _, client = erp
    with pytest.raises(ValueError, match="ERP account 1100 is mapped from AccountsReceivable"):
        client.read_journals("US01", "1", {**ACCOUNTS, "CustomerBalance": "1100"}, "USD")


@pytest.mark.parametrize(
    ("q", "detail"),
    [
        ("DELETE FROM journal_entry", "Only SELECT queries are allowed"),
        ("SELECT 1; DELETE FROM journal_entry", "Only one statement is allowed"),
        ("SELECT * FROM journal_entry", "prohibited"),
        ("SELECT name FROM sqlite_master", "prohibited"),
        ("PRAGMA writable_schema = 1", "Only SELECT queries are allowed"),
        ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n",
         "Only SELECT queries are allowed"),
        ("SELECT load_extension('x')", "not authorized"),
    ],
)  # fmt: skip
def test_the_query_endpoint_only_reads(erp, q, detail):
    sandbox, _ = erp
    r = requests.post(f"{sandbox.url}/query/v1/suiteql", json={"q": q},
                      headers={"Prefer": "transient"})  # fmt: skip
    assert r.status_code == 400
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
    assert detail in r.json()["o:errorDetails"][0]["detail"]
    assert len(sandbox.journals()) == 4


def test_a_string_literal_is_data_not_sql_and_a_slow_query_is_stopped(erp, monkeypatch):
    sandbox, client = erp
    rows = client.suiteql("SELECT count(*) AS n FROM transaction WHERE memo = 'a; DROP x'")
    assert rows == [{"n": "0"}]
    monkeypatch.setattr(erp_query, "QUERY_BUDGET_S", -1.0)  # already out of time
    r = requests.post(f"{sandbox.url}/query/v1/suiteql",
                      json={"q": "SELECT count(*) FROM transactionline a, transactionline b, transactionline c"},
                      headers={"Prefer": "transient"})  # fmt: skip
    assert r.status_code == 400 and "interrupted" in r.text
    no_header = requests.post(f"{sandbox.url}/query/v1/suiteql", json={"q": "SELECT 1"})
    assert no_header.status_code == 400 and "Prefer: transient" in no_header.text


def test_the_query_needs_the_token_when_the_erp_has_one(tmp_path):
    with ErpSandbox(token="s3cret") as sandbox:
        r = requests.post(f"{sandbox.url}/query/v1/suiteql", json={"q": "SELECT 1"},
                          headers={"Prefer": "transient"})  # fmt: skip
        assert r.status_code == 401
        with RestErpClient(sandbox.url, token="s3cret") as client:
            assert client.suiteql("SELECT 1 AS one") == [{"one": "1"}]
