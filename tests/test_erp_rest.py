"""The NetSuite REST client against the sandbox ERP (sandboxes.erp_server) on a free port:
bodies NetSuite documents (decimal amounts, ``{"id"}`` references), upserts that never double
lines (``?replace=line``, a read-back after an ambiguous attempt), refusals mapped to reasons
and owners, retries under faults, both auth schemes, and the GL read back by SuiteQL."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pandas as pd
import pytest
import requests

from sandboxes.erp_server import ErpSandbox
from sync_core.erp.auth import OAuth2ClientCredentials, TokenBasedAuth
from sync_core.erp.config import ErpConfig, load_erp_config
from sync_core.erp.netsuite_body import dumps
from sync_core.erp.rest import PostOutcome, RestErpClient

CUSTOMER = "C-US01-000123"
MASTER = {"customers": [{"entityid": CUSTOMER, "subsidiary": "1"}]}
FAST = {"timeout_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.2}


def oauth2(erp: ErpSandbox, **kw) -> OAuth2ClientCredentials:
    c = erp.credentials
    return OAuth2ClientCredentials(erp.token_url, c.client_id, c.certificate_id,
                                   c.private_key_pem, **kw)  # fmt: skip


def tba(erp: ErpSandbox, secret: str | None = None) -> TokenBasedAuth:
    c = erp.credentials
    return TokenBasedAuth(c.account, c.consumer_key, secret or c.consumer_secret, c.token_id,
                          c.token_secret)  # fmt: skip


def client_of(erp: ErpSandbox, config: ErpConfig | None = None, auth=None, **kw) -> RestErpClient:
    return RestErpClient(erp.url, auth=auth or oauth2(erp), config=config or load_erp_config(),
                         **{**FAST, **kw})  # fmt: skip


def lines(eid: str, amount: int = 10025, period: str = "2025-03", currency: str = "USD",
          accounts: tuple[str, str] = ("1100", "4000"), credit: int | None = None,
          customer: str | None = CUSTOMER, subsidiary: str = "1") -> pd.DataFrame:  # fmt: skip
    """The posting log's lines of one two-line journal (Dr AR / Cr Revenue), minor units."""
    return pd.DataFrame({
        "external_id": eid, "period": pd.Timestamp(f"{period}-01", tz="UTC"),
        "erp_subsidiary_id": subsidiary, "currency": currency, "erp_account": list(accounts),
        "debit": [amount, 0], "credit": [0, amount if credit is None else credit],
        "erp_customer_id": [customer, None], "correlation_id": f"corr-{eid}",
        "event": "invoice_finalized", "document_id": eid, "memo": f"Invoice {eid}",
        "transaction_date": None, "line_no": [1, 2],
    })  # fmt: skip


def many(n: int, amount: int = 100) -> pd.DataFrame:
    return pd.concat([lines(f"US01-INV-in_{i:04d}-v1", amount + i) for i in range(n)])


def stored(erp: ErpSandbox, eid: str) -> list[tuple[str, str, Decimal]]:
    """(account number, side, amount) of each stored line, in stored order."""
    number = {r["id"]: r["acctnumber"] for r in erp.master.snapshot()[1]["account"]}
    return [(number[i["account"]["id"]], s, i[s]) for i in erp.journal(eid)["line"]["items"]
            for s in ("debit", "credit") if i.get(s) is not None]  # fmt: skip


@pytest.fixture
def erp(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", seed=7, master_data=MASTER) as sandbox:
        yield sandbox


@pytest.fixture
def client(erp):
    with client_of(erp) as c:
        yield c


# --------------------------------------------------------------------------------------------
# the body NetSuite documents


def test_a_journal_of_100_25_reads_back_as_100_25_with_references_resolved(erp, client):
    eid = "US01-INV-in_1-v1"
    (body,) = client.journal_bodies("US01", lines(eid))
    raw = dumps(body).decode()
    assert '"debit":100.25' in raw and '"credit":100.25' in raw  # JSON numbers, not floats
    (out,) = client.post_journals("US01", lines(eid))
    assert (out.status, out.attempts, out.http_status) == ("posted", 1, 204)
    m = erp.master
    got = erp.journal(eid)
    assert got["id"] == out.erp_internal_id
    assert (got["subsidiary"]["id"], got["currency"]["id"]) == ("1", m.currency_id("USD"))
    assert got["postingPeriod"]["id"] == m.period_id("2025-03") and got["tranDate"] == "2025-03-31"
    ar, revenue = got["line"]["items"]
    assert ar["account"]["id"] == m.account_id("1100") and ar["debit"] == Decimal("100.25")
    assert ar["entity"]["id"] == m.customer_id(CUSTOMER) and "credit" not in ar
    assert revenue["account"]["id"] == m.account_id("4000")
    assert revenue["credit"] == Decimal("100.25")
    assert ar["custcol_sync_correlation"] == f"corr-{eid}" and ar["memo"] == f"Invoice {eid}"
    # the client's own read of the record, and the GL read back by SuiteQL, in minor units
    assert client.get_journal(eid)["line"]["items"][0]["debit"] == Decimal("100.25")
    heads, gl = client.read_journals("US01", "1", load_erp_config().accounts("US01"), "USD")
    assert heads["total_debit"].tolist() == [10025]
    assert gl[["account", "debit", "credit", "erp_customer_id", "correlation_id"]].values.tolist(
    ) == [["AccountsReceivable", 10025, 0, CUSTOMER, f"corr-{eid}"],
          ["Revenue", 0, 10025, None, f"corr-{eid}"]]  # fmt: skip
    assert gl["debit_functional"].tolist() == [10025, 0]


def test_zero_decimal_and_three_decimal_currencies(erp, client):
    erp.add_master_data({"currencies": ["KWD"]})  # not one of the demo's currencies
    jpy = lines("US01-INV-jpy-v1", 500, currency="JPY")
    kwd = lines("US01-INV-kwd-v1", 1234, currency="KWD")
    outs = client.post_journals("US01", pd.concat([jpy, kwd]))
    assert [o.status for o in outs] == ["posted", "posted"]
    assert stored(erp, "US01-INV-jpy-v1") == [("1100", "debit", Decimal("500")),
                                              ("4000", "credit", Decimal("500"))]  # fmt: skip
    assert stored(erp, "US01-INV-kwd-v1")[0] == ("1100", "debit", Decimal("1.234"))
    _, gl = client.read_journals("US01", "1", load_erp_config().accounts("US01"), "USD")
    assert sorted(zip(gl["currency"], gl["debit"])) == [("JPY", 0), ("JPY", 500), ("KWD", 0),
                                                        ("KWD", 1234)]  # fmt: skip


# --------------------------------------------------------------------------------------------
# upserts


def test_upsert_twice_replaces_the_lines_and_a_plain_put_would_double_them(erp, client):
    eid = "US01-INV-in_1-v1"
    first = client.post_journals("US01", lines(eid, 100))[0]
    second = client.post_journals("US01", lines(eid, 250))[0]
    assert first.status == second.status == "posted"
    assert first.erp_internal_id == second.erp_internal_id
    assert erp.journal(eid)["version"] == 2 and len(erp.journals()) == 1
    assert stored(erp, eid) == [("1100", "debit", Decimal("2.50")),
                                ("4000", "credit", Decimal("2.50"))]  # replaced  # fmt: skip
    # the duplicate trap the client avoids: the same upsert without ?replace=line appends
    (body,) = client.journal_bodies("US01", lines(eid, 250))
    session = requests.Session()
    session.auth = client.auth
    r = session.put(client.journal_url(eid), data=dumps(body), timeout=5,
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 204
    assert [a for a, _, _ in stored(erp, eid)] == ["1100", "4000", "1100", "4000"]


def test_unknown_fields_are_refused_under_strict_property_names(erp, client):
    (body,) = client.journal_bodies("US01", lines("US01-INV-x-v1"))
    out = client.put_journal({**body, "period": "2025-03"})
    assert (out.status, out.reason, out.owner, out.http_status) == (
        "rejected", "invalid_content", "integration", 400)  # fmt: skip
    assert "INVALID_CONTENT at period:" in out.message and erp.journals() == []


# --------------------------------------------------------------------------------------------
# refusals: reason and owner, never retried


def test_refusals_map_to_reasons_and_owners(tmp_path):
    bogus = ErpConfig(defaults={"internal_ids": {"accounts": {"9100": "999999"}}})
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER,
                    closed_periods=["1:2025-01"], locked_periods=["1:2025-02"]) as erp:  # fmt: skip
        with client_of(erp) as c, client_of(erp, bogus) as b:
            got = {
                "unbalanced": c.post_journals("US01", lines("E-unbal", 100, credit=99))[0],
                "closed": c.post_journals("US01", lines("E-jan", period="2025-01"))[0],
                "locked": c.post_journals("US01", lines("E-feb", period="2025-02"))[0],
                "bad_id": b.post_journals("US01", lines("E-bad", accounts=("9100", "4000")))[0],
            }
        assert {k: (o.status, o.reason, o.owner, o.http_status, o.attempts)
                for k, o in got.items()} == {
            "unbalanced": ("rejected", "unbalanced", "integration", 400, 1),
            "closed": ("rejected", "period_closed", "finance", 400, 1),
            "locked": ("rejected", "period_locked", "finance", 400, 1),
            "bad_id": ("rejected", "invalid_reference", "master_data", 400, 1),
        }  # fmt: skip
        assert "line.items[0].account" in got["bad_id"].message
        assert "Jan 2025" in got["closed"].message and got["closed"].error_code == "USER_ERROR"
        assert erp.journals() == []
        # reopened at run time, the same journal goes through
        erp.configure(closed_periods=[])
        with client_of(erp) as c:
            assert c.post_journals("US01", lines("E-jan", period="2025-01"))[0].status == "posted"


def test_unresolved_references_and_closed_periods_are_not_sent(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER,
                    closed_periods=["2025-01"]) as erp, client_of(erp) as c:  # fmt: skip
        unknown = c.post_journals("US01", lines("E-acct", accounts=("1100", "9999"),
                                                customer="C-NOBODY"))[0]  # fmt: skip
        closed = c.post_journals("US01", lines("E-jan", period="2025-01"))[0]
        assert (unknown.status, unknown.error_code, unknown.reason, unknown.owner) == (
            "rejected", "UNRESOLVED", "invalid_reference", "master_data")  # fmt: skip
        assert "'9999'" in unknown.message and "'C-NOBODY'" in unknown.message
        assert (closed.reason, closed.owner, closed.attempts) == ("period_closed", "finance", 0)
        assert "Jan 2025" in closed.message
        assert not [r for r in erp.requests() if r["method"] == "PUT"]


# --------------------------------------------------------------------------------------------
# faults: a retried upsert never doubles lines


def _puts_and_gets(erp: ErpSandbox) -> Counter:
    return Counter(r["method"] for r in erp.requests() if r["ref"].startswith("eid:"))


def test_faults_every_journal_posted_once_with_its_lines(tmp_path):
    n = 150
    with ErpSandbox(tmp_path / "erp.sqlite", seed=20250331, master_data=MASTER,
                    error_rate_5xx=0.20, error_rate_429=0.10, timeout_rate=0.05,
                    timeout_sleep_s=0.5, timeout_writes=True, commit_then_fail_rate=0.05,
                    retry_after_s=0.05) as erp:  # fmt: skip
        # 40 % of attempts fail: 15 retries make "failed" vanishingly rare
        with client_of(erp, timeout_s=0.3, max_retries=15, backoff_max_s=0.25,
                       max_workers=8) as c:  # fmt: skip
            outs = c.post_journals("US01", many(n))
        deadline = time.monotonic() + 2
        while erp.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)  # abandoned (timed-out) requests finish sleeping on the server
        stats, journals, methods = erp.stats(), erp.journals(), _puts_and_gets(erp)
        amounts = {j["externalId"]: stored(erp, j["externalId"]) for j in journals}

    assert Counter(o.status for o in outs) == {"posted": n}, [
        o for o in outs if o.status != "posted"
    ]
    assert sorted(amounts) == [f"US01-INV-in_{i:04d}-v1" for i in range(n)]
    for i in range(n):  # each journal exactly its two lines, never appended twice
        a = Decimal(100 + i).scaleb(-2)
        assert amounts[f"US01-INV-in_{i:04d}-v1"] == [("1100", "debit", a), ("4000", "credit", a)]
    for key in ("429", "500", "503", "timeouts", "commit_then_fail"):
        assert stats.get(key, 0) > 0, (key, stats)
    # a journal written before its answer was lost is found by the read-back, not rewritten
    assert stats["writes"] == n and all(j["version"] == 1 for j in journals)
    assert sum(o.checks for o in outs) >= stats["commit_then_fail"] + stats["timeouts"]
    assert (methods["PUT"], methods["GET"]) == (sum(o.attempts for o in outs),
                                                sum(o.checks for o in outs))  # fmt: skip


def test_timeout_after_commit_is_posted_without_resending(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER, timeout_rate=1.0,
                    timeout_sleep_s=0.3, timeout_writes=True) as erp:  # fmt: skip
        with client_of(erp, timeout_s=0.1, max_retries=2) as c:
            (out,) = c.post_journals("US01", lines("E-late"))
        assert (out.status, out.attempts, out.checks, out.error_code) == ("posted", 1, 1, None)
        assert out.erp_internal_id == erp.journal("E-late")["id"]
        time.sleep(0.35)
        assert erp.journal("E-late")["version"] == 1 and erp.stats()["writes"] == 1
        assert stored(erp, "E-late") == [("1100", "debit", Decimal("100.25")),
                                         ("4000", "credit", Decimal("100.25"))]  # fmt: skip


def test_commit_then_fail_is_posted_without_resending(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER,
                    commit_then_fail_rate=1.0) as erp, client_of(erp) as c:  # fmt: skip
        (out,) = c.post_journals("US01", lines("E-ctf"))
        assert (out.status, out.attempts, out.checks) == ("posted", 1, 1)
        assert erp.stats()["writes"] == 1 and len(stored(erp, "E-ctf")) == 2


def test_a_record_with_other_lines_is_upserted_again(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER) as erp, client_of(
        erp, max_retries=2, backoff_base_s=0.001
    ) as c:  # fmt: skip
        assert c.post_journals("US01", lines("E-1", 100))[0].status == "posted"
        erp.configure(error_rate_5xx=1.0)  # every PUT fails before it writes
        (out,) = c.post_journals("US01", lines("E-1", 250))
        assert (out.status, out.attempts, out.checks, out.reason) == (
            "failed", 3, 3, "erp_unavailable")  # the old lines are there: not counted posted  # fmt: skip
        assert stored(erp, "E-1")[0] == ("1100", "debit", Decimal("1.00"))
        erp.configure(error_rate_5xx=0.0, commit_then_fail_rate=1.0)
        (out,) = c.post_journals("US01", lines("E-1", 250))
        assert (out.status, out.attempts, out.checks) == ("posted", 1, 1)
        assert erp.journal("E-1")["version"] == 2
        assert stored(erp, "E-1") == [("1100", "debit", Decimal("2.50")),
                                      ("4000", "credit", Decimal("2.50"))]  # fmt: skip


def test_retries_exhausted_is_failed_not_rejected(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER, error_rate_5xx=1.0) as erp:
        with client_of(erp, max_retries=3, backoff_base_s=0.001) as c:
            (out,) = c.post_journals("US01", lines("E-down"))
        assert (out.status, out.attempts, out.reason, out.owner) == (
            "failed", 4, "erp_unavailable", "integration")  # fmt: skip
        assert out.http_status in (500, 503) and out.error_code == "UNEXPECTED_ERROR"
        assert erp.journals() == []


def test_concurrency_limit_respected_no_journal_lost(tmp_path):
    n = 60
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER, max_concurrency=2,
                    latency_ms=10, retry_after_s=0.01) as erp:  # fmt: skip
        with client_of(erp, max_workers=8) as c:
            outs = c.post_journals("US01", many(n))
        stats = erp.stats()
        assert Counter(o.status for o in outs) == {"posted": n}
        assert stats["journals"] == n and stats["writes"] == n
        assert stats["max_in_flight"] <= 2
        assert stats["429_concurrency"] > 0  # the limit was hit, and the 429s retried
        assert stats["429"] < n  # ... but the client-side cap soon stopped the excess


def test_workers_at_the_limit_never_see_429(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER, max_concurrency=3,
                    latency_ms=5) as erp:  # fmt: skip
        with client_of(erp, max_workers=3) as c:
            outs = c.post_journals("US01", many(60))
        assert all(o.status == "posted" and o.attempts == 1 for o in outs)
        assert erp.stats().get("429", 0) == 0 and erp.stats()["max_in_flight"] == 3


# --------------------------------------------------------------------------------------------
# authentication against the sandbox


def test_oauth2_token_kept_across_requests_and_renewed_after_a_401(tmp_path):
    from sandboxes.erp_server.credentials import test_credentials

    auth_config, creds = test_credentials(token_ttl_s=1)
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=MASTER, auth=auth_config) as erp:
        # a client clock that stands still: the client keeps its token until the ERP refuses it
        frozen = time.time()
        auth = OAuth2ClientCredentials(erp.token_url, creds.client_id, creds.certificate_id,
                                       creds.private_key_pem, refresh_margin_s=0.0,
                                       clock=lambda: frozen)  # fmt: skip
        with client_of(erp, auth=auth) as c:
            first = c.post_journals("US01", many(3))
            assert [o.status for o in first] == ["posted"] * 3 and auth.fetches == 1
            time.sleep(1.1)  # the access token expires on the ERP's side
            (late,) = c.post_journals("US01", lines("E-after-expiry"))
        assert (late.status, late.attempts) == ("posted", 1) and auth.fetches == 2
        assert erp.stats()["401"] == 1 and erp.stats()["token_requests"] == 2


def test_tba_signs_every_request_with_a_fresh_nonce(erp):
    with client_of(erp, auth=tba(erp), max_workers=6) as c:
        outs = c.post_journals("US01", many(30))
        heads, _ = c.read_journals("US01", "1", load_erp_config().accounts("US01"), "USD")
    assert Counter(o.status for o in outs) == {"posted": 30} and len(heads) == 30
    assert {r["auth"] for r in erp.requests()} == {"oauth"}


def test_wrong_credentials_are_invalid_login_for_integration(erp):
    with client_of(erp, auth=tba(erp, secret="0" * 64)) as c:
        (put,) = c.post_many([{"externalId": "E-1", "line": {"items": []}}])
        looked_up = c.post_journals("US01", many(2))  # the SuiteQL lookups are refused first
    assert (put.status, put.reason, put.owner, put.http_status, put.attempts) == (
        "rejected", "invalid_login", "integration", 401, 1)  # fmt: skip
    assert [(o.status, o.reason, o.owner, o.error_code, o.attempts) for o in looked_up] == [
        ("rejected", "invalid_login", "integration", "INVALID_LOGIN", 0)] * 2  # fmt: skip
    assert "the NetSuite lookups failed: INVALID_LOGIN" in looked_up[0].message
    other = ErpSandbox(master_data=MASTER)  # another account's client: no token
    try:
        with client_of(erp, auth=oauth2(other)) as c:
            (out,) = c.post_many([{"externalId": "E-2", "line": {"items": []}}])
    finally:
        other.close()
    assert (out.status, out.reason, out.owner, out.attempts) == (
        "rejected", "invalid_login", "integration", 1)  # fmt: skip
    assert erp.journals() == []


def test_an_unreachable_erp_fails_the_journals_for_a_replay_without_a_crash():
    with RestErpClient("http://127.0.0.1:9", config=load_erp_config(), max_retries=1,
                       backoff_base_s=0.001) as c:  # fmt: skip
        outs = c.post_journals("US01", many(2))
    assert [(o.status, o.reason, o.owner, o.error_code, o.attempts) for o in outs] == [
        ("failed", "erp_unavailable", "integration", "CONNECTION_ERROR", 0)] * 2  # fmt: skip


# --------------------------------------------------------------------------------------------
# client details


def test_backoff_honours_retry_after_with_full_jitter():
    c = RestErpClient("http://127.0.0.1:9", backoff_base_s=0.1, backoff_max_s=1.0)
    for retry in range(1, 10):
        cap = min(1.0, 0.1 * 2 ** (retry - 1))
        delays = [c.backoff_delay(retry) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        hinted = [c.backoff_delay(retry, 0.5) for _ in range(200)]
        assert all(0.5 <= d <= 0.5 + cap for d in hinted)


def test_connection_refused_is_retried_then_failed_without_read_backs():
    with RestErpClient("http://127.0.0.1:9", max_retries=2, backoff_base_s=0.001) as c:
        out = c.put_journal({"externalId": "E-1", "line": {"items": []}})
    assert isinstance(out, PostOutcome)
    assert (out.status, out.error_code, out.attempts, out.checks) == (
        "failed", "CONNECTION_ERROR", 3, 0)  # fmt: skip


def test_an_answer_cut_mid_body_after_the_write_is_read_back_not_a_crash(erp, monkeypatch):
    # the PUT reaches the ERP, then the connection drops while the answer is read
    real = requests.Session.request

    def cut(self, method, url, **kw):
        resp = real(self, method, url, **kw)
        if method == "PUT":
            raise requests.exceptions.ChunkedEncodingError("connection broken mid-answer")
        return resp

    monkeypatch.setattr(requests.Session, "request", cut)
    with client_of(erp) as c:
        (out,) = c.post_journals("US01", lines("E-cut"))
    assert (out.status, out.checks) == ("posted", 1)
    assert erp.stats()["writes"] == 1
    assert stored(erp, "E-cut") == [("1100", "debit", Decimal("100.25")),
                                    ("4000", "credit", Decimal("100.25"))]  # fmt: skip
