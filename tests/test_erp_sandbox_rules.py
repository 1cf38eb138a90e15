"""The sandbox ERP enforces NetSuite's documented REST behaviour, seen with raw requests and real
signatures: decimal amounts and id references read back exactly, the integer-minor-unit shape
refused, appended lines without replace=line, closed periods, balance, property-name
validation, OAuth 2.0 client credentials, TBA (HMAC-SHA256), and SuiteQL paging."""

import json
import time
from decimal import Decimal

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import Client as OAuth1Client

from sandboxes.erp_server import DEFAULT_ACCOUNTS, ErpSandbox, test_credentials

FILEDROP = "tests/fixtures/filedrop/stripe_examples"
EID = "US01-INV-in_1-v1"
STRICT = {"X-NetSuite-PropertyNameValidation": "Error"}
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def erp(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", filedrop=FILEDROP) as sandbox:
        yield sandbox


@pytest.fixture
def tba(erp):
    session = requests.Session()
    session.auth = erp.credentials.oauth1()
    return session


def ids(erp) -> dict:
    m = erp.master
    return {"ar": m.account_id("1100"), "revenue": m.account_id("4000"), "usd": m.currency_id("USD"),
            "mar": m.period_id("2025-03"), "apr": m.period_id("2025-04"),
            "customer": m.customer_id("C-1001")}  # fmt: skip


def body(erp, amount=100.25, period="mar", tran_date="2025-03-31", **extra) -> dict:
    i = ids(erp)
    return {"externalId": EID, "subsidiary": {"id": "1"}, "currency": {"id": i["usd"]},
            "tranDate": tran_date, "postingPeriod": {"id": i[period]}, "memo": "invoice in_1",
            "line": {"items": [
                {"account": {"id": i["ar"]}, "debit": amount, "memo": "invoice in_1",
                 "entity": {"id": i["customer"]}, "custcol_sync_correlation": "run-abc/evt_1"},
                {"account": {"id": i["revenue"]}, "credit": amount, "memo": "invoice in_1"},
            ]}, **extra}  # fmt: skip


def put(session, erp, payload, replace=True, eid=EID, headers=STRICT):
    url = f"{erp.url}/record/v1/journalEntry/eid:{eid}" + ("?replace=line" if replace else "")
    return session.put(url, json=payload, headers=headers)


def get(session, erp, ref=f"eid:{EID}", expand=True):
    r = session.get(f"{erp.url}/record/v1/journalEntry/{ref}",
                    params={"expandSubResources": "true"} if expand else None)  # fmt: skip
    assert r.status_code == 200, r.text
    return json.loads(r.content, parse_float=Decimal)


def suiteql(session, erp, q, limit=1000, offset=0):
    r = session.post(f"{erp.url}/query/v1/suiteql", params={"limit": limit, "offset": offset},
                     json={"q": q}, headers={"Prefer": "transient"})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def problems(r) -> set:
    assert r.status_code == 400, (r.status_code, r.text)
    return {(d["o:errorCode"], d.get("o:errorPath")) for d in r.json()["o:errorDetails"]}


def details(r) -> str:
    return " | ".join(d["detail"] for d in r.json()["o:errorDetails"])


def test_a_documented_body_reads_back_exactly_with_its_references(erp, tba):
    i = ids(erp)
    r = put(tba, erp, body(erp))
    assert r.status_code == 204 and r.content == b""
    internal_id = r.headers["Location"].rsplit("/", 1)[1]
    assert r.headers["Location"] == f"{erp.url}/record/v1/journalEntry/{internal_id}"
    record = get(tba, erp)
    assert (record["id"], record["externalId"], record["tranDate"]) == (
        internal_id,
        EID,
        "2025-03-31",
    )
    assert (
        record["postingPeriod"]["id"] == i["mar"]
        and record["postingPeriod"]["refName"] == "Mar 2025"
    )
    debit, credit = record["line"]["items"]
    assert debit["debit"] == Decimal("100.25") and "credit" not in debit
    assert (debit["account"]["id"], debit["account"]["refName"]) == (
        i["ar"],
        "1100 AccountsReceivable",
    )
    assert (
        debit["entity"]["id"] == i["customer"]
        and debit["custcol_sync_correlation"] == "run-abc/evt_1"
    )
    assert credit["credit"] == Decimal("100.25") and credit["account"]["id"] == i["revenue"]
    assert set(get(tba, erp, internal_id, expand=False)["line"]) == {"links"}  # a link, unexpanded
    rows = suiteql(tba, erp, "SELECT l.id, l.debitforeignamount, l.creditforeignamount, "
                   "l.foreignamount, l.entity, a.account, a.debit, a.credit, "
                   "TO_CHAR(t.trandate, 'YYYY-MM-DD') AS day, t.postingperiod FROM transaction t "
                   "JOIN transactionline l ON l.transaction = t.id JOIN transactionaccountingline a "
                   "ON a.transaction = l.transaction AND a.transactionline = l.id ORDER BY l.id")["items"]  # fmt: skip
    assert [{k: v for k, v in row.items() if k != "links"} for row in rows] == [
        {"id": "0", "debitforeignamount": "100.25", "foreignamount": "100.25", "entity": i["customer"],
         "account": i["ar"], "debit": "100.25", "day": "2025-03-31", "postingperiod": i["mar"]},
        {"id": "1", "creditforeignamount": "100.25", "foreignamount": "-100.25",
         "account": i["revenue"], "credit": "100.25", "day": "2025-03-31", "postingperiod": i["mar"]},
    ]  # fmt: skip
    [stored] = erp.journals()
    assert [ln.get("debit") for ln in stored["line"]["items"]] == [Decimal("100.25"), None]


def test_the_integer_minor_unit_shape_with_string_references_is_refused(erp, tba):
    legacy = {"externalId": EID, "subsidiary": "1", "currency": "USD", "tranDate": "2025-03-31",
              "period": "2025-03", "line": {"items": [
                  {"account": "1100", "debit": 10025, "credit": 0, "custcol_correlation_id": "e1"},
                  {"account": "4000", "debit": 0, "credit": 10025}]}}  # fmt: skip
    r = put(tba, erp, legacy)
    assert {("INVALID_CONTENT", "subsidiary"), ("INVALID_CONTENT", "currency"),
            ("INVALID_CONTENT", "period"), ("INVALID_CONTENT", "line.items[0].account"),
            ("INVALID_CONTENT", "line.items[1].account"),
            ("INVALID_CONTENT", "line.items[0].custcol_correlation_id")} <= problems(r)  # fmt: skip
    assert "is a reference" in details(r) and erp.journals() == []
    # an account number where the internal id belongs: the documented invalid-reference error
    wrong = body(erp)
    wrong["line"]["items"][0]["account"] = {"id": "1100"}
    r = put(tba, erp, wrong)
    assert problems(r) == {("INVALID_CONTENT", "line.items[0].account")}
    assert details(r) == ("Error while accessing resource: You have entered an Invalid Field "
                          "Value 1100 for the following field: account")  # fmt: skip


@pytest.mark.parametrize(
    ("line", "code", "path", "text"),
    [({"debit": 100.255}, "USER_ERROR", ".debit", "3 decimal places; the currency USD has 2"),
     ({"debit": -5}, "USER_ERROR", ".debit", "negative"),
     ({"debit": "100.25"}, "INVALID_CONTENT", ".debit", "in currency units, not a string"),
     ({"debit": 100.25, "credit": 100.25}, "USER_ERROR", "", "not both"),
     ({"debit": 0}, "USER_ERROR", "", "greater than zero")],
)  # fmt: skip
def test_amounts_are_positive_numbers_within_the_currency_decimals(erp, tba, line, code, path,
                                                                   text):  # fmt: skip
    payload = body(erp)
    first = payload["line"]["items"][0]
    first.pop("debit")
    first.update(line)
    r = put(tba, erp, payload)
    assert (code, "line.items[0]" + path) in problems(r)
    assert text in details(r)


def test_jpy_has_no_decimals(erp, tba):
    m = erp.master
    jp = body(erp, amount=500, tran_date="2025-03-31")
    jp.update(subsidiary={"id": "7"}, currency={"id": m.currency_id("JPY")})
    del jp["line"]["items"][0]["entity"]  # C-1001 belongs to subsidiary 1
    assert put(tba, erp, jp).status_code == 204
    jp["line"]["items"][0]["debit"] = jp["line"]["items"][1]["credit"] = 500.5
    assert "the currency JPY has 0" in details(put(tba, erp, jp))


def test_an_update_without_replace_line_appends_the_lines_and_stays_balanced(erp, tba):
    assert put(tba, erp, body(erp)).status_code == 204
    first = get(tba, erp)["id"]
    assert put(tba, erp, body(erp), replace=False).status_code == 204  # the duplicate trap
    twice = get(tba, erp)
    assert twice["id"] == first and twice["line"]["totalResults"] == 4
    assert [ln["line"] for ln in twice["line"]["items"]] == [0, 1, 2, 3]
    assert [ln.get("debit") for ln in twice["line"]["items"]] == [Decimal("100.25"), None] * 2
    count = "SELECT count(*) AS n FROM transactionline WHERE transaction = " + first
    assert suiteql(tba, erp, count)["items"][0]["n"] == "4"
    assert put(tba, erp, body(erp)).status_code == 204  # replace=line: the request's lines only
    assert get(tba, erp)["line"]["totalResults"] == 2 and get(tba, erp)["id"] == first
    patch = tba.patch(f"{erp.url}/record/v1/journalEntry/{first}", json={"memo": "renamed"})
    assert patch.status_code == 204 and get(tba, erp)["line"]["totalResults"] == 2
    assert erp.journal(EID)["memo"] == "renamed" and erp.journal(EID)["version"] == 4
    half = body(erp)["line"]["items"][:1]
    r = tba.patch(f"{erp.url}/record/v1/journalEntry/eid:{EID}", json={"line": {"items": half}})
    assert details(r) == "The debit and credit totals must be equal."  # appended, unbalanced


def test_a_closed_period_is_a_user_error_naming_the_period(erp, tba):
    erp.configure(closed_periods=["2025-03"], locked_periods=["1:2025-04"])
    r = put(tba, erp, body(erp))
    assert problems(r) == {("USER_ERROR", "postingPeriod")} and "Mar 2025 is closed" in details(r)
    r = put(tba, erp, body(erp, period="apr", tran_date="2025-04-30"))
    assert problems(r) == {("USER_ERROR", "postingPeriod")} and "Apr 2025 is locked" in details(r)
    closed = suiteql(tba, erp, "SELECT periodname, closed FROM accountingperiod WHERE "
                     "periodname IN ('Mar 2025', 'Apr 2025') ORDER BY startdate")["items"]  # fmt: skip
    assert [(p["periodname"], p["closed"]) for p in closed] == [
        ("Mar 2025", "T"),
        ("Apr 2025", "F"),
    ]
    erp.configure(closed_periods=[], locked_periods=[])
    assert put(tba, erp, body(erp)).status_code == 204
    erp.configure(closed_periods=["2025-03"])  # a journal in a closed period cannot change
    assert "Mar 2025 is closed" in details(put(tba, erp, body(erp)))


def test_the_transaction_date_must_fall_in_the_posting_period_unless_allowed(erp, tba):
    r = put(tba, erp, body(erp, period="apr"))
    assert problems(r) == {("USER_ERROR", "tranDate")}
    assert "not within the date range of your accounting period" in details(r)
    erp.configure(date_period_mismatch="allow")
    assert put(tba, erp, body(erp, period="apr")).status_code == 204


def test_debits_must_equal_credits(erp, tba):
    payload = body(erp)
    payload["line"]["items"][1]["credit"] = 100.24
    r = put(tba, erp, payload)
    assert problems(r) == {("USER_ERROR", None)}
    assert details(r) == "The debit and credit totals must be equal."


def test_unknown_fields_are_refused_only_under_the_validation_header(erp, tba):
    payload = body(erp, period_name="2025-03")
    payload["line"]["items"][0]["custcol_correlation_id"] = "e1"
    r = put(tba, erp, payload)
    assert problems(r) == {("INVALID_CONTENT", "period_name"),
                           ("INVALID_CONTENT", "line.items[0].custcol_correlation_id")}  # fmt: skip
    assert put(tba, erp, payload, headers={}).status_code == 204  # NetSuite's default: ignored
    stored = erp.journal(EID)
    assert (
        "period_name" not in stored and "custcol_correlation_id" not in stored["line"]["items"][0]
    )
    assert stored["line"]["items"][0]["custcol_sync_correlation"] == "run-abc/evt_1"


def test_create_refuses_a_taken_external_id_and_unknown_records_are_404(erp, tba):
    assert tba.post(f"{erp.url}/record/v1/journalEntry", json=body(erp)).status_code == 204
    r = tba.post(f"{erp.url}/record/v1/journalEntry", json=body(erp))
    assert problems(r) == {("USER_ERROR", "externalId")} and "already exists" in details(r)
    missing = tba.get(f"{erp.url}/record/v1/journalEntry/eid:nope")
    assert missing.status_code == 404
    assert missing.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"
    assert requests.get(f"{erp.root_url}/record/v1/journalEntry/1").status_code == 404  # root


def token(erp, assertion):
    return requests.post(erp.token_url, data={"grant_type": "client_credentials",
                                              "client_assertion_type": ASSERTION,
                                              "client_assertion": assertion})  # fmt: skip


def test_oauth2_client_credentials(tmp_path):
    auth, client = test_credentials(token_ttl_s=1)
    with ErpSandbox(tmp_path / "erp.sqlite", auth=auth) as erp:
        r = token(erp, client.jwt_assertion(erp.token_url))
        assert r.status_code == 200 and r.json()["expires_in"] == "1"
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert requests.get(f"{erp.url}/record/v1/journalEntry", headers=bearer).status_code == 200
        time.sleep(1.1)
        expired = requests.get(f"{erp.url}/record/v1/journalEntry", headers=bearer)
        assert expired.status_code == 401
        assert expired.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
        assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = int(time.time())
        forged = jwt.encode({"iss": client.client_id, "scope": "rest_webservices", "iat": now,
                             "aud": erp.token_url, "exp": now + 600}, other, algorithm="PS256",
                            headers={"kid": client.certificate_id})  # fmt: skip
        refused = {
            "bad signature": forged,
            "RS256": client.jwt_assertion(erp.token_url, algorithm="RS256"),
            "other audience": client.jwt_assertion("https://tstdrv123.suitetalk.api.netsuite.com/x"),
            "over an hour": client.jwt_assertion(erp.token_url, lifetime_s=3601),
            "expired": client.jwt_assertion(erp.token_url, now=now - 7200),
            "no scope": client.jwt_assertion(erp.token_url, scope=("restlets",)),
        }  # fmt: skip
        for why, assertion in refused.items():
            r = token(erp, assertion)
            assert (r.status_code, r.json()["error"]) == (400, "invalid_grant"), why
        assert requests.get(f"{erp.url}/record/v1/journalEntry").status_code == 401


def test_tba_signatures_nonces_and_timestamps(erp, tba):
    c = erp.credentials
    url = f"{erp.url}/record/v1/journalEntry?limit=5"
    assert tba.get(url).status_code == 200
    prepared = requests.Request("GET", url, auth=c.oauth1()).prepare()
    session = requests.Session()
    assert session.send(prepared).status_code == 200
    replay = session.send(prepared)  # the same nonce again
    assert replay.status_code == 401
    assert replay.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"

    def signed(**client):
        args = {"client_key": c.consumer_key, "client_secret": c.consumer_secret,
                "resource_owner_key": c.token_id, "resource_owner_secret": c.token_secret,
                "signature_method": "HMAC-SHA256", "realm": c.account, **client}  # fmt: skip
        _, headers, _ = OAuth1Client(**args).sign(url, "GET")
        return requests.get(url, headers=headers).status_code

    assert signed() == 200
    assert signed(client_secret="not-the-secret") == 401
    assert signed(timestamp=str(int(time.time()) - 1000)) == 401
    assert signed(realm="OTHER123") == 401
    assert signed(signature_method="HMAC-SHA1") == 401
    reasons = {r["auth"] for r in erp.requests() if r["status"] == 401}
    assert {"nonce already used", "bad signature", "stale or malformed timestamp",
            "realm is not the account id", "signature method is not HMAC-SHA256"} <= reasons  # fmt: skip


def test_suiteql_pages_over_master_data_and_transactions(erp, tba):
    accounts = suiteql(tba, erp, "SELECT acctnumber FROM account ORDER BY id")
    assert {a["acctnumber"] for a in accounts["items"]} == DEFAULT_ACCOUNTS
    months = "SELECT id, periodname FROM accountingperiod WHERE isposting = 'T' ORDER BY id"
    seen, offset = [], 0
    while True:
        page = suiteql(tba, erp, months, limit=10, offset=offset)
        seen += [p["periodname"] for p in page["items"]]
        assert page["totalResults"] == 72 and page["count"] == len(page["items"])
        if not page["hasMore"]:
            break
        assert {x["rel"] for x in page["links"]} >= {"next", "self"}
        offset += 10
    assert (len(seen), seen[0], seen[-1], offset) == (72, "Jan 2023", "Dec 2028", 70)
    for n in range(25):
        payload = body(erp)
        payload["externalId"] = f"E-{n:02d}"
        assert tba.post(f"{erp.url}/record/v1/journalEntry", json=payload).status_code == 204
    pages = [suiteql(tba, erp, "SELECT externalid FROM transaction ORDER BY id", 10, o)
             for o in (0, 10, 20)]  # fmt: skip
    assert [(p["count"], p["hasMore"]) for p in pages] == [(10, True), (10, True), (5, False)]
    assert [x["externalid"] for p in pages for x in p["items"]] == [f"E-{n:02d}" for n in range(25)]
    records = tba.get(
        f"{erp.url}/record/v1/journalEntry", params={"limit": 10, "offset": 20}
    ).json()
    assert (records["count"], records["hasMore"], records["totalResults"]) == (5, False, 25)
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        r = tba.post(f"{erp.url}/query/v1/suiteql", params=bad, json={"q": months},
                     headers={"Prefer": "transient"})  # fmt: skip
        assert r.status_code == 400
    customers = suiteql(tba, erp, "SELECT entityid, subsidiary FROM customer ORDER BY id")["items"]
    assert [(c["entityid"], c["subsidiary"]) for c in customers] == [
        ("C-1001", "1"),
        ("C-2001", "2"),
    ]


def test_a_customer_whose_erp_id_arrives_later_is_registered_from_the_file_drop(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("legal_entities.csv", "customers.csv"):
        (drop / name).write_text(open(f"{FILEDROP}/{name}").read())
    with ErpSandbox(tmp_path / "erp.sqlite", filedrop=drop, auth=None) as erp:
        assert erp.master.customer_id("C-US01-L9") is None
        late = drop / "customers-late.csv"
        late.write_text(  # the second row still being written
            "entity_id,customer_id,name,email,country,currency,erp_customer_id,created_at\n"
            "US01,cus_9,Late Nine,,US,USD,C-US01-L9,2025-02-01T00:00:00Z\n"
            "US01,cus_10,Late Ten,,US,USD,C-US01-L1")  # fmt: skip
        q = "SELECT id, externalid, subsidiary FROM customer WHERE externalid LIKE 'C-US01-L%'"
        rows = suiteql(requests, erp, q)["items"]
        assert [(r["externalid"], r["subsidiary"]) for r in rows] == [("C-US01-L9", "1")]
        assert rows[0]["id"] == erp.master.customer_id("C-US01-L9")
        with late.open("a") as fh:
            fh.write("0,2025-02-02T00:00:00Z\n")
        rows = suiteql(requests, erp, q)["items"]
        assert [r["externalid"] for r in rows] == ["C-US01-L9", "C-US01-L10"]


def test_commit_then_fail_then_a_retry_without_replace_line_doubles_the_journal(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", auth=None, filedrop=FILEDROP,
                    commit_then_fail_rate=1.0) as erp:  # fmt: skip
        assert put(requests, erp, body(erp)).status_code == 500  # written, then failed
        erp.configure(commit_then_fail_rate=0.0)
        assert put(requests, erp, body(erp), replace=False).status_code == 204
        assert len(erp.journal(EID)["line"]["items"]) == 4 and len(erp.journals()) == 1
        assert erp.stats()["commit_then_fail"] == 1
