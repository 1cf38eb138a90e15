"""REST posting: ``RestErpClient.post_many`` vs a serial loop of ``requests.put``.

Both post the same NetSuite journalEntry bodies (built by
:meth:`sync_core.erp.RestErpClient.journal_bodies` from deterministic journal lines:
invoices, payments, credit notes; accounts, currency, period and customers resolved to
internal ids by SuiteQL lookups) to the sandbox ERP (:class:`sandboxes.erp_server.ErpSandbox`,
SQLite WAL on a temporary file, OAuth 2.0 client credentials) answering each record request
in 50 ms and refusing more than 5 requests in flight with a 429.

- ours: ``post_many`` with ``max_workers=5`` (the ERP's limit), one kept-alive connection per
  worker, ``PUT .../eid:{id}?replace=line``, retries on 429 / 5xx / timeouts. Every journal is
  checked on the server afterwards: distinct external ids == journals posted, each written
  once (none lost to a 429), with the lines sent.
- serial: a plain loop of ``requests.put`` (a new connection each, as a script would do, the
  same bearer token), timed on a sample (``serial_sample`` journals) and scaled linearly.

Ours cannot beat ``max_concurrency / latency`` = 100 journals/s, so 10,000 journals take at
least 100 s; the serial sample adds ``serial_sample * ~53 ms``.

Run: ``python -m benchmarks.bench_rest --journals 10000``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from sandboxes.erp_server import ErpSandbox
from sync_core.erp import RestErpClient
from sync_core.erp.auth import OAuth2ClientCredentials
from sync_core.erp.config import load_erp_config
from sync_core.erp.netsuite_body import dumps, line_signature

LATENCY_MS = 50.0
MAX_CONCURRENCY = 5


def customer_id(i: int) -> str:
    return f"C-US01-{i % 5000:06d}"


def make_journal_lines(n: int, seed: int = 20250331) -> pd.DataFrame:
    """Journal lines of ``n`` balanced journals, columns as ``sync_core.posting`` emits them.

    60 % invoices (AR debit; revenue or deferred revenue, and tax, credit), 30 % payments
    (cash debit, AR credit), 10 % credit notes (credit notes debit, AR credit).
    """
    rng = np.random.default_rng(seed)
    kinds = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    net = rng.integers(500, 500_000, size=n)
    tax = net * rng.choice([0, 5, 10, 20], size=n) // 100
    months = rng.integers(1, 13, size=n)
    rows: dict[str, list] = {k: [] for k in (
        "external_id", "period", "erp_subsidiary_id", "currency", "erp_account", "debit",
        "credit", "erp_customer_id", "correlation_id", "event", "document_id", "line_no",
        "memo", "transaction_date",
    )}  # fmt: skip
    for i in range(n):
        kind, amount, t = int(kinds[i]), int(net[i]), int(tax[i])
        period = pd.Timestamp(2025, int(months[i]), 1, tz="UTC")
        customer = customer_id(i)
        if kind == 0:
            event, doc, code = "invoice_finalized", f"in_{i:07d}", "INV"
            lines = [("1100", amount + t, 0), ("4000" if i % 3 else "2400", 0, amount)]
            if t:
                lines.append(("2300", 0, t))
        elif kind == 1:
            event, doc, code = "payment", f"pi_{i:07d}", "PAY"
            lines = [("1000", amount, 0), ("1100", 0, amount)]
        else:
            event, doc, code = "credit_note", f"cn_{i:07d}", "CN"
            lines = [("4900", amount, 0), ("1100", 0, amount)]
        for no, (account, debit, credit) in enumerate(lines, 1):
            rows["external_id"].append(f"US01-{code}-{doc}-v1")
            rows["period"].append(period)
            rows["erp_subsidiary_id"].append("1")
            rows["currency"].append("USD")
            rows["erp_account"].append(account)
            rows["debit"].append(debit)
            rows["credit"].append(credit)
            rows["erp_customer_id"].append(customer)
            rows["correlation_id"].append(doc)
            rows["event"].append(event)
            rows["document_id"].append(doc)
            rows["line_no"].append(no)
            rows["memo"].append(f"{event} {doc}")
            rows["transaction_date"].append(None)
    return pd.DataFrame(rows)


def check_server(erp: ErpSandbox, payloads: list[dict]) -> dict:
    """Every payload on the server exactly once, with its lines; returns the server stats."""
    stats = erp.stats()
    stored = {j["externalId"]: j for j in erp.journals()}
    expected = {p["externalId"] for p in payloads}
    if len(stored) != len(payloads) or set(stored) != expected:
        raise AssertionError(
            f"server holds {len(stored)} journals for {len(payloads)} posted "
            f"({len(expected - set(stored))} missing)"
        )
    if stats["writes"] != len(payloads):
        raise AssertionError(f"{stats['writes']} writes for {len(payloads)} journals")
    for p in payloads[:: max(1, len(payloads) // 500)]:
        got = stored[p["externalId"]]["line"]["items"]
        if line_signature(got) != line_signature(p["line"]["items"]):
            raise AssertionError(f"journal {p['externalId']} differs on the server")
    return stats


def main(journals: int = 10_000, serial_sample: int = 200) -> list[dict]:
    n = int(journals)
    k = max(1, min(n, int(serial_sample)))
    lines = make_journal_lines(n)
    customers = [{"entityid": c, "subsidiary": "1"} for c in sorted(set(lines["erp_customer_id"]))]

    with tempfile.TemporaryDirectory() as tmp, ErpSandbox(
        Path(tmp) / "erp.sqlite", latency_ms=LATENCY_MS, max_concurrency=MAX_CONCURRENCY,
        master_data={"customers": customers},
    ) as erp:  # fmt: skip
        c = erp.credentials
        auth = OAuth2ClientCredentials(erp.token_url, c.client_id, c.certificate_id,
                                       c.private_key_pem)  # fmt: skip
        # ours
        with RestErpClient(erp.url, auth=auth, config=load_erp_config(),
                           max_workers=MAX_CONCURRENCY) as client:  # fmt: skip
            t = time.perf_counter()
            payloads = client.journal_bodies("US01", lines)
            t_build = time.perf_counter() - t
            if len(payloads) != n or not all(isinstance(b, dict) for b in payloads):
                raise AssertionError("every journal's references resolve in the sandbox")
            t = time.perf_counter()
            outcomes = client.post_many(payloads)
            t_ours = time.perf_counter() - t
        bad = [o for o in outcomes if o.status != "posted"]
        if bad:
            raise AssertionError(f"{len(bad)} journals not posted, e.g. {bad[0]}")
        stats = check_server(erp, payloads)
        n429, retries = stats.get("429", 0), sum(o.attempts for o in outcomes) - n

        # serial loop of requests.put on a sample, against a fresh ERP
        erp.reset()
        sample = payloads[:k]
        headers = {"Content-Type": "application/json",
                   "X-NetSuite-PropertyNameValidation": "Error"}  # fmt: skip
        t = time.perf_counter()
        for p in sample:
            r = requests.put(
                f"{erp.url}/record/v1/journalEntry/eid:{p['externalId']}?replace=line",
                data=dumps(p), headers=headers, auth=auth, timeout=30,
            )  # fmt: skip
            if r.status_code != 204:
                raise AssertionError(f"serial put {p['externalId']}: HTTP {r.status_code}")
        t_sample = time.perf_counter() - t
        check_server(erp, sample)

    ours_per_s = n / t_ours
    serial_per_s = k / t_sample
    t_serial = n / serial_per_s
    ceiling = MAX_CONCURRENCY / (LATENCY_MS / 1000)
    print(
        f"journals: {n:,} ({sum(len(p['line']['items']) for p in payloads):,} lines), "
        f"payloads built in {t_build:.2f} s"
    )
    print(f"sandbox ERP: {LATENCY_MS:g} ms per request, max {MAX_CONCURRENCY} in flight "
          f"(ceiling {ceiling:.0f} journals/s)")  # fmt: skip
    print(
        f"ours (post_many, {MAX_CONCURRENCY} workers): {t_ours:8.2f} s = {ours_per_s:6.1f} journals/s, "
        f"{n429} x 429, {retries} retries; server holds {stats['journals']:,} distinct journals, "
        f"each written once: none lost"
    )
    print(
        f"serial requests.put loop:     {t_serial:8.2f} s = {serial_per_s:6.1f} journals/s "
        f"(scaled linearly from {k:,} journals, {t_sample:.2f} s measured)"
    )
    rows = [
        {
            "name": "rest_posting_vs_serial",
            "ours": round(ours_per_s, 2),
            "peer": round(serial_per_s, 2),
            "unit": "journals/s",
            "ratio": round(ours_per_s / serial_per_s, 2),
            "target": 4.0,
        }
    ]
    print(f"\n{'benchmark':<24} {'ours/s':>9} {'peer/s':>9} {'ratio':>8} {'target':>7}")
    for r in rows:
        print(
            f"{r['name']:<24} {r['ours']:>9.1f} {r['peer']:>9.1f} {r['ratio']:>8.2f} {r['target']:>7}"
        )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--journals", type=int, default=10_000)
    ap.add_argument("--serial-sample", type=int, default=200)
    a = ap.parse_args()
    main(a.journals, a.serial_sample)
