"""SQL ledger posting on PostgreSQL: ``SqlLedger.post`` vs COPY-based peers.

Generates deterministic balanced journals of 4 lines each (1,000,000 lines = 250,000
journals): an invoice debits receivables and credits revenue, deferred revenue and tax; a
fifth of them in EUR with functional (USD) amounts converted and balanced. Headers carry the
ledger's ``JOURNAL_COLS`` (``posted_at`` set by the poster), lines its ``LINE_COLS``. All
three ways post the same pre-sliced batches (``batch`` journals each, one transaction per
batch) into the same tables of a dedicated schema (``bench_posting_<pid>``, created and
dropped here, reached through ``search_path``); the tables are truncated between ways.

- ours: :meth:`sync_core.erp.ledger.SqlLedger.post` per batch (COPY into temporary staging
  tables, ``INSERT ... SELECT ... ON CONFLICT (external_id) DO NOTHING RETURNING``, then the
  lines of the newly inserted journals only).
- peer COPY staging: what a careful engineer writes by hand with psycopg2: each frame written
  once with ``DataFrame.to_csv`` (dates by ``date_format``, ``posted_at`` filled by the
  database), ``copy_expert`` into temporary staging tables, then ``INSERT ... SELECT ... ON
  CONFLICT DO NOTHING`` into both targets. The best practical idempotent method.
- peer raw COPY: the same CSV ``copy_expert``-ed straight into the targets, no conflict
  handling (not idempotent: the ceiling).
- reposting: ours again over the same batches (every journal already posted: nothing is
  inserted) vs the staging peer re-posting them.

After each first posting the tables hold exactly the expected journals and lines (counts,
debit and credit totals); after each re-posting they are unchanged.

Run: ``python -m benchmarks.bench_posting --lines 1000000``.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.erp.ledger import JOURNAL_COLS, LINE_COLS, SqlLedger

LINES_PER_JOURNAL = 4
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ACCOUNTS = [  # (account, erp_account) per line_no
    ("accounts_receivable", "1100"),
    ("revenue", "4000"),
    ("deferred_revenue", "2400"),
    ("tax_payable", "2300"),
]


def default_url() -> str:
    return (
        os.environ.get("SYNC_BENCH_POSTGRES_URL")
        or os.environ.get("SYNC_TEST_POSTGRES_URL")
        or DEFAULT_URL
    )


# ---------------------------------------------------------------------------------------------
# data


def make_journals(n: int, seed: int = 20260701) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` deterministic balanced journals of 4 lines: (headers, lines), sorted by journal."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    eur = rng.random(n) < 0.2
    net = rng.integers(500, 2_000_000, size=n)
    deferred = net * rng.integers(0, 12, size=n) // 12  # part of the net deferred
    revenue = net - deferred
    tax = net * rng.choice([0, 5, 10, 20], size=n) // 100
    total = net + tax
    rate = np.where(eur, 1.08, 1.0)
    f_rev, f_def, f_tax = (np.rint(a * rate).astype(np.int64) for a in (revenue, deferred, tax))
    f_total = f_rev + f_def + f_tax  # functional debit balances the rounded credits
    month = rng.integers(0, 24, size=n)
    period = pd.to_datetime(np.datetime64("2025-01", "M") + month, utc=True)
    doc = np.array([f"in_{i:08d}" for i in idx], dtype=object)
    eid = np.array([f"US01-INV-{d}-v1" for d in doc], dtype=object)
    customer = np.array([f"C-US01-{i % 20_000:06d}" for i in idx], dtype=object)
    currency = np.where(eur, "EUR", "USD").astype(object)
    headers = pd.DataFrame(
        {
            "external_id": eid,
            "entity_id": "US01",
            "erp_subsidiary_id": "1",
            "period": period,
            "source_period": period,
            "event": "invoice_finalized",
            "document_id": doc,
            "version": 1,
            "currency": currency,
            "total_debit": total.astype(np.int64),
            "line_count": LINES_PER_JOURNAL,
            "content_hash": [f"{(i * 2654435761) % 2**64:016x}{i:016x}" for i in range(n)],
            "reverses": None,
            "correction": (idx % 50) == 0,
            "run_id": "bench-run-0001",
        }
    )
    k = LINES_PER_JOURNAL
    zero = np.zeros(n, dtype=np.int64)
    debit = np.column_stack([total, zero, zero, zero]).ravel()
    credit = np.column_stack([zero, revenue, deferred, tax]).ravel()
    debit_f = np.column_stack([f_total, zero, zero, zero]).ravel()
    credit_f = np.column_stack([zero, f_rev, f_def, f_tax]).ravel()
    cust = np.column_stack([customer, *([np.full(n, None, dtype=object)] * 3)]).ravel()
    lines = pd.DataFrame(
        {
            "external_id": np.repeat(eid, k),
            "line_no": np.tile(np.arange(1, k + 1), n),
            "account": np.tile(np.array([a for a, _ in ACCOUNTS], dtype=object), n),
            "erp_account": np.tile(np.array([e for _, e in ACCOUNTS], dtype=object), n),
            "erp_customer_id": cust,
            "debit": debit.astype(np.int64),
            "credit": credit.astype(np.int64),
            "currency": np.repeat(currency, k),
            "debit_functional": debit_f,
            "credit_functional": credit_f,
            "functional_currency": "USD",
            "correlation_id": np.repeat(doc, k),
        }
    )
    return headers[[c for c in JOURNAL_COLS if c != "posted_at"]], lines[LINE_COLS]


def batches(headers, lines, size: int) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    k = LINES_PER_JOURNAL
    return [
        (headers.iloc[i : i + size], lines.iloc[i * k : (i + size) * k])
        for i in range(0, len(headers), size)
    ]


# ---------------------------------------------------------------------------------------------
# database


def schema_engine(url: str, schema: str) -> sa.Engine:
    u = sa.engine.make_url(url)
    if u.drivername in ("postgres", "postgresql"):
        u = u.set(drivername="postgresql+psycopg2")
    u = u.update_query_dict({"options": f"-csearch_path={schema}"})
    return sa.create_engine(u)


def counts(engine: sa.Engine) -> tuple[int, int, int, int]:
    """(journals, lines, sum of debits, sum of credits) in the ledger tables."""
    with engine.connect() as conn:
        j = conn.execute(sa.text("SELECT count(*) FROM ledger_journals")).scalar_one()
        n, d, c = conn.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(debit), 0), coalesce(sum(credit), 0) "
                "FROM ledger_journal_lines"
            )
        ).one()
    return int(j), int(n), int(d), int(c)


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE ledger_journal_lines, ledger_journals"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("CHECKPOINT"))  # every way starts without dirty pages to flush


# ---------------------------------------------------------------------------------------------
# ours


def run_ours(ledger: SqlLedger, work) -> tuple[float, int, int]:
    """Post every batch; (seconds, journals inserted, journals already posted)."""
    inserted = already = 0
    t = time.perf_counter()
    for h, ln in work:
        res = ledger.post(h, ln)
        inserted += len(res.inserted)
        already += len(res.already_posted)
    return time.perf_counter() - t, inserted, already


# ---------------------------------------------------------------------------------------------
# peers: hand-written psycopg2 COPY


def _csv(df: pd.DataFrame) -> io.StringIO:
    buf = io.StringIO()
    df.to_csv(buf, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d")
    buf.seek(0)
    return buf


def _copy(cur, table: str, cols: list[str], buf) -> None:
    sql = f"COPY {table} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    cur.copy_expert(sql, buf)


def run_peer(engine: sa.Engine, work, staging: bool) -> float:
    """Post every batch by hand (one transaction each); seconds."""
    hcols, lcols = ", ".join(JOURNAL_COLS), ", ".join(LINE_COLS)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS peer_stage_journals "
                "(LIKE ledger_journals) ON COMMIT DELETE ROWS;"
                "CREATE TEMP TABLE IF NOT EXISTS peer_stage_lines "
                "(LIKE ledger_journal_lines) ON COMMIT DELETE ROWS"
            )
        raw.commit()
        t = time.perf_counter()
        for h, ln in work:
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
            hbuf, lbuf = _csv(h.assign(posted_at=stamp)), _csv(ln)
            with raw.cursor() as cur:
                if staging:
                    _copy(cur, "peer_stage_journals", JOURNAL_COLS, hbuf)
                    cur.execute(
                        f"INSERT INTO ledger_journals ({hcols}) "
                        f"SELECT {hcols} FROM peer_stage_journals "
                        "ON CONFLICT (external_id) DO NOTHING"
                    )
                    _copy(cur, "peer_stage_lines", LINE_COLS, lbuf)
                    cur.execute(
                        f"INSERT INTO ledger_journal_lines ({lcols}) "
                        f"SELECT {lcols} FROM peer_stage_lines "
                        "ON CONFLICT (external_id, line_no) DO NOTHING"
                    )
                else:
                    _copy(cur, "ledger_journals", JOURNAL_COLS, hbuf)
                    _copy(cur, "ledger_journal_lines", LINE_COLS, lbuf)
            raw.commit()
        return time.perf_counter() - t
    finally:
        raw.close()
