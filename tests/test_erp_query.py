"""The sandbox ERP's SuiteQL endpoint: NetSuite's tables and columns over the journals and the
master data, pages, amounts in currency units (base currency on the accounting lines), and a
query endpoint that only ever reads."""

import pytest
import requests

from sandboxes.erp_server import ErpSandbox
from sandboxes.erp_server import query as erp_query

QUERY = "/query/v1/suiteql"


def journal(erp, eid, month, lines, currency="USD", subsidiary="1", rate=None) -> dict:
    m = erp.master
    items = [{"account": {"id": m.account_id(a)}, **({"debit": d} if d else {"credit": c}),
              "memo": f"{eid} {a}"} for a, d, c in lines]  # fmt: skip
    body = {"externalId": eid, "subsidiary": {"id": subsidiary},
            "currency": {"id": m.currency_id(currency)}, "tranDate": f"{month}-28",
            "postingPeriod": {"id": m.period_id(month)}, "memo": f"memo {eid}",
            "line": {"items": items}}  # fmt: skip
    if rate is not None:
        body["exchangeRate"] = rate
    return body


INVOICE = [("1100", 34.10, 0), ("2400", 0, 31.00), ("2300", 0, 3.10)]


@pytest.fixture
def erp(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite") as sandbox:
        session = requests.Session()
        session.auth = sandbox.credentials.oauth1()
        for body in (  # one by one: internal ids in this order
            journal(sandbox, "US01-INV-in_1-v1", "2026-01", INVOICE),
            journal(sandbox, "US01-INV-in_1-v1-REV", "2026-02", [(a, c, d) for a, d, c in INVOICE]),
            journal(sandbox, "US01-PAY-py_9-v1", "2026-01", [("1000", 50, 0), ("1100", 0, 50)],
                    currency="EUR", rate=1.0835),
            journal(sandbox, "US01-PAY-py_8-v1", "2026-01", [("1000", 0.1, 0), ("1000", 0.2, 0),
                                                             ("1100", 0, 0.3)], currency="EUR"),
            journal(sandbox, "UK01-PAY-py_2-v1", "2026-01", [("1000", 0.7, 0), ("1100", 0, 0.7)],
                    currency="GBP", subsidiary="2"),
        ):  # fmt: skip
            url = f"{sandbox.url}/record/v1/journalEntry/eid:{body['externalId']}?replace=line"
            assert session.put(url, json=body).status_code == 204
        yield sandbox, session


def post(erp, q, params=None, headers=None):
    sandbox, session = erp
    return session.post(f"{sandbox.url}{QUERY}", params=params, json={"q": q},
                        headers={"Prefer": "transient"} if headers is None else headers)  # fmt: skip


def rows(erp, q) -> list[dict]:
    r = post(erp, q)
    assert r.status_code == 200, r.text
    return [{k: v for k, v in i.items() if k != "links"} for i in r.json()["items"]]


def test_suiteql_pages_until_has_more_is_false(erp):
    r = post(erp, "SELECT id, externalid FROM transaction ORDER BY id", {"limit": 3, "offset": 0})
    page = r.json()
    assert r.status_code == 200
    assert (page["count"], page["hasMore"], page["totalResults"], page["offset"]) == (3, True, 5, 0)
    assert page["items"][0] == {"links": [], "id": "1", "externalid": "US01-INV-in_1-v1"}
    assert [x["rel"] for x in page["links"]] == ["first", "next", "last", "self"]
    last = post(erp, "SELECT id FROM transaction ORDER BY id", {"limit": 3, "offset": 3}).json()
    assert (last["count"], last["hasMore"]) == (2, False)
    assert [x["rel"] for x in last["links"]] == ["first", "prev", "last", "self"]


def test_lines_carry_currency_and_subsidiary_amounts(erp):
    q = ("SELECT t.externalid, c.symbol, l.id, l.subsidiary, l.debitforeignamount AS fd, "
         "l.creditforeignamount AS fc, a.debit, a.credit, ac.acctnumber FROM transaction t "
         "JOIN currency c ON c.id = t.currency JOIN transactionline l ON l.transaction = t.id "
         "JOIN transactionaccountingline a ON a.transaction = t.id AND a.transactionline = l.id "
         "JOIN account ac ON ac.id = a.account WHERE t.externalid IN "
         "('US01-INV-in_1-v1', 'US01-PAY-py_9-v1', 'US01-PAY-py_8-v1') ORDER BY t.id, l.id")  # fmt: skip
    got = [(r["externalid"], r["symbol"], r["acctnumber"], r.get("fd"), r.get("fc"),
            r.get("debit"), r.get("credit")) for r in rows(erp, q)]  # fmt: skip
    assert got == [
        ("US01-INV-in_1-v1", "USD", "1100", "34.1", None, "34.1", None),
        ("US01-INV-in_1-v1", "USD", "2400", None, "31", None, "31"),
        ("US01-INV-in_1-v1", "USD", "2300", None, "3.1", None, "3.1"),
        # EUR at 1.0835, half up to USD cents: 50 x 1.0835 = 54.175 -> 54.18
        ("US01-PAY-py_9-v1", "EUR", "1000", "50", None, "54.18", None),
        ("US01-PAY-py_9-v1", "EUR", "1100", None, "50", None, "54.18"),
        # no exchangeRate in the body: the subsidiary-currency amounts are unknown
        ("US01-PAY-py_8-v1", "EUR", "1000", "0.1", None, None, None),
        ("US01-PAY-py_8-v1", "EUR", "1000", "0.2", None, None, None),
        ("US01-PAY-py_8-v1", "EUR", "1100", None, "0.3", None, None),
    ]  # fmt: skip


def test_aggregates_and_dates(erp):
    q = ("SELECT t.externalid, SUM(l.debitforeignamount) AS d, SUM(l.foreignamount) AS net, "
         "TO_CHAR(t.trandate, 'YYYY-MM') AS month, NVL(t.memo, 'none') AS memo FROM transaction t "
         "JOIN transactionline l ON l.transaction = t.id WHERE t.trandate >= "
         "TO_DATE('2026-01-01', 'YYYY-MM-DD') GROUP BY t.externalid, t.trandate, t.memo "
         "ORDER BY t.externalid")  # fmt: skip
    got = {r["externalid"]: (r["d"], r["net"], r["month"]) for r in rows(erp, q)}
    assert got["US01-PAY-py_8-v1"] == ("0.3", "0", "2026-01")  # 0.1 + 0.2, printed exactly
    assert got["US01-INV-in_1-v1-REV"] == ("34.1", "0", "2026-02")
    periods = rows(erp, "SELECT p.periodname, TO_CHAR(p.startdate, 'MM/DD/YYYY') AS s, p.isposting "
                        "FROM transaction t JOIN accountingperiod p ON p.id = t.postingperiod "
                        "WHERE t.id = 2")  # fmt: skip
    assert periods == [{"periodname": "Feb 2026", "s": "02/01/2026", "isposting": "T"}]
    subs = rows(erp, "SELECT s.id, c.symbol FROM subsidiary s JOIN currency c ON c.id = s.currency "
                     "WHERE s.id IN (1, 2, 7) ORDER BY s.id")  # fmt: skip
    assert subs == [{"id": "1", "symbol": "USD"}, {"id": "2", "symbol": "GBP"},
                    {"id": "7", "symbol": "JPY"}]  # fmt: skip


@pytest.mark.parametrize(
    ("q", "detail"),
    [
        ("DELETE FROM journal_entry", "Only SELECT queries are allowed"),
        ("SELECT 1; DELETE FROM journal_entry", "Only one statement is allowed"),
        ("SELECT * FROM journal_entry", "prohibited"),
        ("SELECT * FROM ns_account", "prohibited"),
        ("SELECT name FROM sqlite_master", "prohibited"),
        ("PRAGMA writable_schema = 1", "Only SELECT queries are allowed"),
        ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n",
         "Only SELECT queries are allowed"),
        ("SELECT load_extension('x')", "not authorized"),
        ("SELECT subsidiary FROM transaction", "no such column"),  # it is on transactionline
    ],
)  # fmt: skip
def test_the_query_endpoint_only_reads(erp, q, detail):
    r = post(erp, q)
    assert r.status_code == 400
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
    assert detail in r.json()["o:errorDetails"][0]["detail"]
    assert len(erp[0].journals()) == 5


def test_a_string_literal_is_data_not_sql_and_a_slow_query_is_stopped(erp, monkeypatch):
    assert rows(erp, "SELECT count(*) AS n FROM transaction WHERE memo = 'a; DROP x'") == [
        {"n": "0"}
    ]
    monkeypatch.setattr(erp_query, "QUERY_BUDGET_S", -1.0)  # already out of time
    r = post(erp, "SELECT count(*) FROM transactionline a, transactionline b, transactionline c")
    assert r.status_code == 400 and "interrupted" in r.text
    no_header = post(erp, "SELECT 1", headers={})
    assert no_header.status_code == 400 and "Prefer: transient" in no_header.text


def test_the_query_needs_a_login(erp):
    sandbox, _ = erp
    r = requests.post(f"{sandbox.url}{QUERY}", json={"q": "SELECT 1"},
                      headers={"Prefer": "transient"})  # fmt: skip
    assert r.status_code == 401
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
