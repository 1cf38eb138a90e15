"""REST ERP client against the sandbox ERP (NetSuite semantics) on a free local port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest
import requests

from sandboxes.erp_server import ErpSandbox
from sync_core.erp import PostOutcome, RestErpClient, journal_payload, journal_payloads

ROOT = Path(__file__).resolve().parents[1]


def journal(eid: str, amount: int = 3410, period: str = "2025-03", subsidiary: str = "1",
            accounts: tuple[str, str] = ("1100", "4000"), credit: int | None = None) -> dict:  # fmt: skip
    return {
        "subsidiary": subsidiary,
        "tranDate": f"{period}-28",
        "period": period,
        "currency": "USD",
        "memo": f"invoice_finalized {eid}",
        "externalId": eid,
        "line": {
            "items": [
                {"account": accounts[0], "debit": amount, "credit": 0, "memo": "AR",
                 "entity": "C-US01-000123", "custcol_correlation_id": f"corr-{eid}"},
                {"account": accounts[1], "debit": 0, "credit": amount if credit is None else credit,
                 "memo": "Revenue", "entity": None, "custcol_correlation_id": f"corr-{eid}"},
            ]
        },
    }  # fmt: skip


@pytest.fixture
def erp(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def client(erp):
    with RestErpClient(erp.url, timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.2) as c:
        yield c


# --------------------------------------------------------------------------------------------
# upsert


def test_upsert_same_external_id_twice_gives_one_journal_version_2(erp, client):
    first = client.put_journal(journal("US01-INV-in_1-v1", amount=100))
    second = client.put_journal(journal("US01-INV-in_1-v1", amount=250))
    assert first.status == second.status == "posted"
    assert first.erp_internal_id is not None
    assert first.erp_internal_id == second.erp_internal_id
    assert (first.attempts, second.attempts) == (1, 1)
    journals = erp.journals()
    assert len(journals) == 1
    j = journals[0]
    assert j["externalId"] == "US01-INV-in_1-v1"
    assert j["version"] == 2
    assert j["id"] == first.erp_internal_id
    assert [i["debit"] for i in j["line"]["items"]] == [250, 0]  # replaced, not appended
    # the record API answers by external id and by internal id alike
    got = requests.get(client.journal_url("US01-INV-in_1-v1"), timeout=2).json()
    assert got["id"] == first.erp_internal_id and got["version"] == 2
    by_id = requests.get(f"{erp.url}/record/v1/journalEntry/{first.erp_internal_id}", timeout=2)
    assert by_id.json()["externalId"] == "US01-INV-in_1-v1"
    assert requests.get(client.journal_url("nope"), timeout=2).status_code == 404
    assert erp.stats()["204"] == 2


def test_internal_ids_are_distinct_per_external_id(erp, client):
    outs = client.post_many([journal(f"E-{i}") for i in range(10)])
    assert [o.external_id for o in outs] == [f"E-{i}" for i in range(10)]  # input order
    assert len({o.erp_internal_id for o in outs}) == 10
    assert erp.stats()["journals"] == 10


# --------------------------------------------------------------------------------------------
# validation: rejected with the ERP's code, never retried


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (journal("E-unbal", amount=100, credit=99), "UNBALANCED"),
        (journal("E-acct", accounts=("1100", "9999")), "INVALID_KEY_OR_REF"),
        (journal("bad id/with:chars"), "INVALID_ID"),
        ({**journal("E-nolines"), "line": {"items": []}}, "MISSING_LINES"),
    ],
    ids=["unbalanced", "unknown_account", "bad_external_id", "missing_lines"],
)
def test_validation_errors_are_rejected_without_retry(erp, client, payload, code):
    out = client.put_journal(payload)
    assert out.status == "rejected"
    assert out.error_code == code
    assert out.http_status == 400
    assert out.attempts == 1
    assert out.message
    assert erp.journals() == []
    assert erp.stats()["400"] == 1 and erp.stats()["requests"] == 1


def test_error_body_has_netsuite_shape(erp):
    resp = requests.put(
        f"{erp.url}/record/v1/journalEntry/eid:E-1", json=journal("E-1", credit=1), timeout=2
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["title"] == "Bad Request" and body["status"] == 400 and body["type"]
    assert body["o:errorDetails"][0]["o:errorCode"] == "UNBALANCED"
    assert "detail" in body["o:errorDetails"][0]


def test_closed_and_locked_periods_are_rejected(tmp_path):
    with ErpSandbox(
        tmp_path / "erp.sqlite", closed_periods=["1:2025-01"], locked_periods=[("1", "2025-02")]
    ) as erp, RestErpClient(erp.url) as client:  # fmt: skip
        closed = client.put_journal(journal("E-jan", period="2025-01"))
        locked = client.put_journal(journal("E-feb", period="2025-02"))
        other_sub = client.put_journal(journal("E-jan-2", period="2025-01", subsidiary="2"))
        open_ = client.put_journal(journal("E-mar", period="2025-03"))
        assert (closed.status, closed.error_code) == ("rejected", "PERIOD_CLOSED")
        assert (locked.status, locked.error_code) == ("rejected", "PERIOD_LOCKED")
        assert closed.attempts == locked.attempts == 1
        assert other_sub.status == open_.status == "posted"
        # reopening the period at run time lets the same journal through
        erp.configure(closed_periods=[])
        assert client.put_journal(journal("E-jan", period="2025-01")).status == "posted"
        assert {j["externalId"] for j in erp.journals()} == {"E-jan", "E-jan-2", "E-mar"}


# --------------------------------------------------------------------------------------------
# faults: retries are safe because PUT by external id is an upsert


def test_faults_every_journal_posted_exactly_once(tmp_path):
    n = 200
    with ErpSandbox(
        tmp_path / "erp.sqlite",
        seed=20250331,
        error_rate_5xx=0.20,
        error_rate_429=0.10,
        timeout_rate=0.05,
        timeout_sleep_s=0.5,
        commit_then_fail_rate=0.05,
        retry_after_s=0.05,
    ) as erp:
        # 40 % of attempts fail: 15 retries make "failed" vanishingly rare (0.4**16 * 200)
        with RestErpClient(
            erp.url, timeout_s=0.3, max_retries=15, backoff_base_s=0.01, backoff_max_s=0.25,
            max_workers=8,
        ) as client:  # fmt: skip
            outs = client.post_many(
                [journal(f"US01-INV-in_{i:04d}-v1", amount=100 + i) for i in range(n)]
            )
        deadline = time.monotonic() + 2
        while erp.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)  # abandoned (timed-out) requests finish sleeping on the server
        stats = erp.stats()
        journals = erp.journals()
        log = erp.requests()

    failed = [o for o in outs if o.status != "posted"]
    assert not failed, failed
    assert [o.external_id for o in outs] == [f"US01-INV-in_{i:04d}-v1" for i in range(n)]
    # exactly n distinct external ids on the server, each once, with the amounts we sent
    eids = [j["externalId"] for j in journals]
    assert len(eids) == n and len(set(eids)) == n
    assert stats["journals"] == n
    assert {j["externalId"]: j["line"]["items"][0]["debit"] for j in journals} == {
        f"US01-INV-in_{i:04d}-v1": 100 + i for i in range(n)
    }
    # every fault kind fired, and each one cost a retry
    for key in ("429", "500", "503", "timeouts", "commit_then_fail"):
        assert stats.get(key, 0) > 0, (key, stats)
    assert sum(o.attempts for o in outs) == stats["requests"]
    assert stats["writes"] >= n + stats["commit_then_fail"]  # rewrites, never duplicates
    rewritten = {j["externalId"] for j in journals if j["version"] > 1}
    assert rewritten  # the commit-then-fail journals were written again by the retry
    assert stats["writes"] == sum(j["version"] for j in journals)

    # 429s honoured: the next attempt for that journal came at least Retry-After later
    by_ref = defaultdict(list)
    for r in log:
        by_ref[r["ref"]].append(r)
    gaps = []
    for reqs in by_ref.values():
        reqs.sort(key=lambda r: r["start"])
        for a, b in zip(reqs, reqs[1:]):
            if a["status"] == 429:
                gaps.append(b["start"] - a["end"])
    assert len(gaps) == stats["429"] and gaps
    assert min(gaps) >= 0.05 - 0.002, min(gaps)


def test_timeout_with_late_write_still_one_journal(tmp_path):
    with ErpSandbox(
        tmp_path / "erp.sqlite", timeout_rate=1.0, timeout_sleep_s=0.3, timeout_writes=True
    ) as erp, RestErpClient(erp.url, timeout_s=0.1, max_retries=2, backoff_base_s=0.01) as client:  # fmt: skip
        out = client.put_journal(journal("E-late"))
        assert (out.status, out.error_code, out.attempts) == ("failed", "TIMEOUT", 3)
        time.sleep(0.35)  # the late writes land
        erp.configure(timeout_rate=0.0)
        assert client.put_journal(journal("E-late")).status == "posted"
        journals = erp.journals()
        assert len(journals) == 1 and journals[0]["version"] == 4


def test_retries_exhausted_is_failed_not_rejected(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", error_rate_5xx=1.0) as erp, RestErpClient(
        erp.url, max_retries=3, backoff_base_s=0.001
    ) as client:  # fmt: skip
        out = client.put_journal(journal("E-down"))
        assert out.status == "failed" and out.attempts == 4
        assert out.http_status in (500, 503) and out.error_code == "UNEXPECTED_ERROR"
        assert erp.journals() == []


def test_concurrency_limit_respected_no_journal_lost(tmp_path):
    n = 60
    with ErpSandbox(
        tmp_path / "erp.sqlite", max_concurrency=2, latency_ms=10, retry_after_s=0.01
    ) as erp, RestErpClient(erp.url, max_workers=8, backoff_base_s=0.01) as client:  # fmt: skip
        outs = client.post_many([journal(f"E-{i}") for i in range(n)])
        stats = erp.stats()
        assert Counter(o.status for o in outs) == {"posted": n}
        assert stats["journals"] == n and stats["writes"] == n
        assert stats["max_in_flight"] <= 2
        assert stats["429_concurrency"] > 0  # the limit was hit, and the 429s retried
        assert stats["429"] < n  # ... but the client-side cap soon stopped the excess
        assert sum(o.attempts for o in outs) == stats["requests"]


def test_workers_at_the_limit_never_see_429(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", max_concurrency=3, latency_ms=5) as erp:
        with RestErpClient(erp.url, max_workers=3) as client:
            outs = client.post_many([journal(f"E-{i}") for i in range(60)])
        assert all(o.status == "posted" and o.attempts == 1 for o in outs)
        assert erp.stats().get("429", 0) == 0 and erp.stats()["max_in_flight"] == 3


# --------------------------------------------------------------------------------------------
# client details


def test_bearer_token_sent_and_never_shown(tmp_path):
    with ErpSandbox(tmp_path / "erp.sqlite", token="s3cret") as erp:
        with RestErpClient(erp.url, token="s3cret") as good:
            assert good.put_journal(journal("E-1")).status == "posted"
            assert "s3cret" not in repr(good)
        with RestErpClient(erp.url, token="wrong") as bad:
            out = bad.put_journal(journal("E-2"))
            assert (out.status, out.http_status, out.attempts) == ("rejected", 401, 1)
        assert "s3cret" not in repr(erp)


def test_backoff_honours_retry_after_with_full_jitter():
    c = RestErpClient("http://127.0.0.1:9", backoff_base_s=0.1, backoff_max_s=1.0)
    for retry in range(1, 10):
        cap = min(1.0, 0.1 * 2 ** (retry - 1))
        delays = [c.backoff_delay(retry) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        hinted = [c.backoff_delay(retry, 0.5) for _ in range(200)]
        assert all(0.5 <= d <= 0.5 + cap for d in hinted)


def test_connection_refused_is_retried_then_failed():
    with RestErpClient("http://127.0.0.1:9", max_retries=2, backoff_base_s=0.001) as c:
        out = c.put_journal(journal("E-1"))
    assert isinstance(out, PostOutcome)
    assert (out.status, out.error_code, out.attempts) == ("failed", "CONNECTION_ERROR", 3)


def test_journal_payload_from_journal_lines():
    period = pd.Timestamp("2024-02-01", tz="UTC")
    lines = pd.DataFrame(
        {
            "external_id": ["US01-INV-in_1-v1"] * 3 + ["US01-REV-REV-202402-USD-v1"] * 2,
            "period": [period] * 5,
            "erp_subsidiary_id": ["1"] * 5,
            "currency": ["USD"] * 5,
            "erp_account": ["1100", "2300", "2400", "2400", "4000"],
            "debit": [1100, 0, 0, 500, 0],
            "credit": [0, 100, 1000, 0, 500],
            "erp_customer_id": ["C-US01-000123"] * 3 + [None, None],
            "correlation_id": ["in_1"] * 3 + ["REV-202402-USD"] * 2,
            "event": ["invoice_finalized"] * 3 + ["revenue"] * 2,
            "document_id": ["in_1"] * 3 + ["REV-202402-USD"] * 2,
            "line_no": [1, 2, 3, 1, 2],
        }
    )
    p = journal_payload(lines[lines.external_id == "US01-INV-in_1-v1"])
    assert p["externalId"] == "US01-INV-in_1-v1"
    assert p["tranDate"] == "2024-02-29" and p["period"] == "2024-02"  # leap year month end
    assert p["subsidiary"] == "1" and p["currency"] == "USD"
    items = p["line"]["items"]
    assert [(i["account"], i["debit"], i["credit"]) for i in items] == [
        ("1100", 1100, 0), ("2300", 0, 100), ("2400", 0, 1000)
    ]  # fmt: skip
    assert all(type(i["debit"]) is int and type(i["credit"]) is int for i in items)
    assert items[0]["entity"] == "C-US01-000123" and items[0]["custcol_correlation_id"] == "in_1"
    both = journal_payloads(lines)
    assert [b["externalId"] for b in both] == sorted(set(lines.external_id))
    rev = both[1]
    assert [i["entity"] for i in rev["line"]["items"]] == [None, None]
    with pytest.raises(ValueError):
        journal_payload(lines)  # two external ids are two journals
    with ErpSandbox() as erp, RestErpClient(erp.url) as c:
        assert [o.status for o in c.post_many(both)] == ["posted", "posted"]


def test_command_line_server(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandboxes.erp_server", "--host", "127.0.0.1", "--port", "0",
         "--db", str(tmp_path / "erp.sqlite"), "--latency-ms", "1", "--max-concurrency", "5",
         "--closed-period", "1:2025-01"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("ERP sandbox listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        with RestErpClient(url) as c:
            assert c.put_journal(journal("E-1")).status == "posted"
            assert c.put_journal(journal("E-2", period="2025-01")).error_code == "PERIOD_CLOSED"
        assert requests.get(f"{url}/sandbox/stats", timeout=2).json()["journals"] == 1
        assert requests.get(f"{url}/sandbox/journals", timeout=2).json()["count"] == 1
        assert requests.post(f"{url}/sandbox/reset", timeout=2).status_code == 204
        assert requests.get(f"{url}/sandbox/journals", timeout=2).json()["items"] == []
        cfg = requests.post(f"{url}/sandbox/configure", json={"error_rate_5xx": 0.5}, timeout=2)
        assert cfg.json()["error_rate_5xx"] == 0.5 and "token" not in cfg.json()
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0, proc.stderr.read()
