"""SQL ledger posting on PostgreSQL: ``SqlLedger.post`` vs hand-written COPY peers.

Generates deterministic balanced journals of 4 lines each (1,000,000 lines = 250,000
journals): an invoice debits receivables and credits revenue, deferred revenue and tax; a
fifth of them in EUR, with functional (USD) amounts converted and balanced, and one in fifty
a correction. Headers carry the ledger's ``JOURNAL_COLS`` as the posting plan emits them
(periods as UTC timestamps, no ``posted_at``: the poster stamps it), lines its ``LINE_COLS``
(the customer only on the receivable line). Every way posts the same pre-sliced batches
(``batch`` journals each, one transaction per batch) into the same two tables of a dedicated
schema (``bench_posting_<pid>``, reached through ``search_path``, created and dropped here);
the tables are truncated (and a checkpoint taken) before each way.

- ours: :meth:`sync_core.erp.ledger.SqlLedger.post` per batch: COPY into temporary staging
  tables, ``INSERT ... SELECT ... ON CONFLICT (external_id) DO NOTHING RETURNING``, then the
  lines of the newly inserted journals only.
- peer COPY staging (the best practical idempotent method): what a careful engineer writes by
  hand with psycopg2: each frame written once with ``DataFrame.to_csv`` (periods as dates,
  one ``posted_at`` stamp per batch), ``copy_expert`` into temporary staging tables, then
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into both targets.
- peer raw COPY (the ceiling): the same CSV ``copy_expert``-ed straight into the targets, no
  conflict handling (not idempotent).
- reposting: ours again over the same batches (every journal already posted: nothing
  inserted) vs the staging peer re-posting them.

Each way's time covers everything from the DataFrames to the commits (serialization
included). Best of ``repeat`` rounds, the order of the ways rotating between rounds. After
each first posting the tables must hold exactly the expected journals and lines (counts and
sums of every amount column, corrections, periods, customers); after each re-posting they
must be unchanged, and ours must report every journal as already posted.

``--prototype`` also times the changes proposed for ``sync_core/erp/ledger.py`` (vectorized
date formatting, ``csv.writer`` instead of ``DataFrame.to_csv``, no copy of the lines when
every journal is new, optionally the new journals' lines COPY-ed straight into the table),
implemented here as a subclass so that the ledger module itself is untouched.

Run: ``python -m benchmarks.bench_posting --lines 1000000 [--prototype]``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.erp.ledger import JOURNAL_COLS, LINE_COLS, LedgerPostResult, SqlLedger

LINES_PER_JOURNAL = 4
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ACCOUNTS = [  # (account, erp_account) by line_no
    ("accounts_receivable", "1100"),
    ("revenue", "4000"),
    ("deferred_revenue", "2400"),
    ("tax_payable", "2300"),
]
COPY_OPTS = "WITH (FORMAT csv, NULL '\\N')"


def default_url() -> str:
    return (
        os.environ.get("SYNC_BENCH_POSTGRES_URL")
        or os.environ.get("SYNC_TEST_POSTGRES_URL")
        or DEFAULT_URL
    )


# ---------------------------------------------------------------------------------------------
# data


def make_journals(n: int, seed: int = 20260701) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` deterministic balanced journals of 4 lines: (headers, lines), in journal order."""
    rng = np.random.default_rng(seed)
    eur = rng.random(n) < 0.2
    net = rng.integers(500, 2_000_000, size=n)
    deferred = net * rng.integers(0, 12, size=n) // 12
    revenue = net - deferred
    tax = net * rng.choice([0, 5, 10, 20], size=n) // 100
    total = net + tax
    rate = np.where(eur, 1.08, 1.0)
    f_rev, f_def, f_tax = (np.rint(a * rate).astype(np.int64) for a in (revenue, deferred, tax))
    f_total = f_rev + f_def + f_tax  # the functional debit balances the rounded credits
    month = np.datetime64("2025-01", "M") + rng.integers(0, 24, size=n)
    period = pd.to_datetime(month.astype("datetime64[ns]")).tz_localize("UTC")
    doc = np.array([f"in_{i:08d}" for i in range(n)], dtype=object)
    eid = np.array([f"US01-INV-{d}-v1" for d in doc], dtype=object)
    customer = np.array([f"C-US01-{i % 20_000:06d}" for i in range(n)], dtype=object)
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
            "content_hash": [hashlib.sha256(e.encode()).hexdigest()[:32] for e in eid],
            "reverses": None,
            "correction": np.arange(n) % 50 == 0,
            "run_id": "bench-run-0001",
        }
    )
    k, zero, none = LINES_PER_JOURNAL, np.zeros(n, dtype=np.int64), np.full(n, None, object)
    lines = pd.DataFrame(
        {
            "external_id": np.repeat(eid, k),
            "line_no": np.tile(np.arange(1, k + 1), n),
            "account": np.tile(np.array([a for a, _ in ACCOUNTS], dtype=object), n),
            "erp_account": np.tile(np.array([e for _, e in ACCOUNTS], dtype=object), n),
            "erp_customer_id": np.column_stack([customer, none, none, none]).ravel(),
            "debit": np.column_stack([total, zero, zero, zero]).ravel(),
            "credit": np.column_stack([zero, revenue, deferred, tax]).ravel(),
            "currency": np.repeat(currency, k),
            "debit_functional": np.column_stack([f_total, zero, zero, zero]).ravel(),
            "credit_functional": np.column_stack([zero, f_rev, f_def, f_tax]).ravel(),
            "functional_currency": "USD",
            "correlation_id": np.repeat(doc, k),
        }
    )
    headers["memo"] = "Invoice finalized " + headers["document_id"]
    headers["transaction_date"] = headers["period"]
    return headers[[c for c in JOURNAL_COLS if c != "posted_at"]], lines[LINE_COLS]


def batches(headers: pd.DataFrame, lines: pd.DataFrame, size: int) -> list[tuple]:
    k = LINES_PER_JOURNAL
    return [
        (headers.iloc[i : i + size], lines.iloc[i * k : (i + size) * k])
        for i in range(0, len(headers), size)
    ]


# ---------------------------------------------------------------------------------------------
# database

SNAPSHOT_SQL = """
SELECT (SELECT count(*) FROM ledger_journals),
       (SELECT coalesce(sum(total_debit), 0) FROM ledger_journals),
       (SELECT count(*) FROM ledger_journals WHERE correction),
       (SELECT count(DISTINCT period) FROM ledger_journals),
       (SELECT count(*) FROM ledger_journals WHERE period = source_period
                                               AND reverses IS NULL AND posted_at IS NOT NULL),
       (SELECT count(*) FROM ledger_journal_lines),
       (SELECT coalesce(sum(debit), 0) FROM ledger_journal_lines),
       (SELECT coalesce(sum(credit), 0) FROM ledger_journal_lines),
       (SELECT coalesce(sum(debit_functional), 0) FROM ledger_journal_lines),
       (SELECT coalesce(sum(credit_functional), 0) FROM ledger_journal_lines),
       (SELECT count(erp_customer_id) FROM ledger_journal_lines)
"""


def expected_snapshot(headers: pd.DataFrame, lines: pd.DataFrame) -> tuple[int, ...]:
    return (
        len(headers),
        int(headers["total_debit"].sum()),
        int(headers["correction"].sum()),
        int(headers["period"].nunique()),
        len(headers),
        len(lines),
        int(lines["debit"].sum()),
        int(lines["credit"].sum()),
        int(lines["debit_functional"].sum()),
        int(lines["credit_functional"].sum()),
        int(lines["erp_customer_id"].notna().sum()),
    )


CHECKSUM_SQL = """
SELECT (SELECT coalesce(sum(hashtext(j::text)), 0) FROM (SELECT {journal_cols} FROM ledger_journals) j),
       (SELECT coalesce(sum(hashtext(l::text)), 0) FROM ledger_journal_lines l)
"""


def snapshot(engine: sa.Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(int(v) for v in conn.execute(sa.text(SNAPSHOT_SQL)).one())


def checksum(engine: sa.Engine) -> tuple[int, int]:
    """Order-independent checksums of every stored value but ``posted_at``."""
    cols = ", ".join(c for c in JOURNAL_COLS if c != "posted_at")
    with engine.connect() as conn:
        j, ln = conn.execute(sa.text(CHECKSUM_SQL.format(journal_cols=cols))).one()
    return int(j), int(ln)


def check(engine: sa.Engine, expected: tuple[int, ...], what: str, reference: dict) -> None:
    """The ledger holds the expected aggregates and the same values as after the first way."""
    got = snapshot(engine)
    if got != expected:
        raise AssertionError(f"{what}: ledger holds {got}, expected {expected}")
    if got[0]:
        sums = checksum(engine)
        first = reference.setdefault("checksum", (what, sums))
        if sums != first[1]:
            raise AssertionError(f"{what}: stored values differ from those {first[0]}")


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE ledger_journal_lines, ledger_journals"))
    try:  # every way starts without the previous one's dirty pages to flush
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("CHECKPOINT"))
    except sa.exc.DBAPIError:  # not allowed for this role: carry on without
        pass


def schema_engine(url: str, schema: str) -> sa.Engine:
    u = sa.engine.make_url(url)
    if u.drivername in ("postgres", "postgresql"):
        u = u.set(drivername="postgresql+psycopg2")
    return sa.create_engine(u.update_query_dict({"options": f"-csearch_path={schema}"}))


# ---------------------------------------------------------------------------------------------
# ours


def run_ours(ledger: SqlLedger, work: list[tuple]) -> tuple[float, int, int]:
    """Post every batch; (seconds, journals inserted, journals reported already posted)."""
    inserted = already = 0
    t = time.perf_counter()
    for h, ln in work:
        res = ledger.post(h, ln)
        inserted += len(res.inserted)
        already += len(res.already_posted)
    return time.perf_counter() - t, inserted, already


# ---------------------------------------------------------------------------------------------
# peers: hand-written psycopg2 COPY


def _to_csv(df: pd.DataFrame) -> io.StringIO:
    buf = io.StringIO()
    df.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    return buf


def _peer_headers(h: pd.DataFrame) -> pd.DataFrame:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    # h holds JOURNAL_COLS but posted_at, in order: posted_at (the last) goes at the end
    return h.assign(
        period=h["period"].dt.date,
        source_period=h["source_period"].dt.date,
        transaction_date=h["transaction_date"].dt.date,
        posted_at=stamp,
    )


def run_peer(engine: sa.Engine, work: list[tuple], staging: bool) -> float:
    """Post every batch by hand with psycopg2 (one transaction each); seconds."""
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
            with raw.cursor() as cur:
                hbuf, lbuf = _to_csv(_peer_headers(h)), _to_csv(ln)
                if staging:
                    cur.copy_expert(
                        f"COPY peer_stage_journals ({hcols}) FROM STDIN {COPY_OPTS}", hbuf
                    )
                    cur.execute(
                        f"INSERT INTO ledger_journals ({hcols}) "
                        f"SELECT {hcols} FROM peer_stage_journals "
                        "ON CONFLICT (external_id) DO NOTHING"
                    )
                    cur.copy_expert(f"COPY peer_stage_lines ({lcols}) FROM STDIN {COPY_OPTS}", lbuf)
                    cur.execute(
                        f"INSERT INTO ledger_journal_lines ({lcols}) "
                        f"SELECT {lcols} FROM peer_stage_lines "
                        "ON CONFLICT (external_id, line_no) DO NOTHING"
                    )
                else:
                    cur.copy_expert(f"COPY ledger_journals ({hcols}) FROM STDIN {COPY_OPTS}", hbuf)
                    cur.copy_expert(
                        f"COPY ledger_journal_lines ({lcols}) FROM STDIN {COPY_OPTS}", lbuf
                    )
            raw.commit()
        return time.perf_counter() - t
    finally:
        raw.close()


# ---------------------------------------------------------------------------------------------
# prototype of the changes proposed for sync_core/erp/ledger.py (measured with --prototype)


def fast_csv(df: pd.DataFrame, cols: list[str]) -> io.StringIO:
    """CSV for COPY through ``csv.writer`` over column lists (nulls as ``\\N``)."""
    columns = []
    for c in cols:
        s = df[c]
        null = s.isna()
        columns.append(
            np.where(null, "\\N", s.to_numpy(object)).tolist() if null.any() else s.tolist()
        )
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(zip(*columns))
    buf.seek(0)
    return buf


def fast_header_frame(headers: pd.DataFrame) -> pd.DataFrame:
    """Dates without per-element ``strftime``: ``dt.date``; ``posted_at`` by numpy."""
    h = headers.copy()
    for k in ("period", "source_period", "transaction_date"):
        h[k] = pd.to_datetime(h[k]).dt.date
    stamp = pd.to_datetime(h["posted_at"], utc=True).dt.tz_convert(None)
    h["posted_at"] = np.char.add(np.datetime_as_string(stamp.to_numpy("datetime64[us]")), "+00")
    return h


class PrototypeLedger(SqlLedger):
    """``SqlLedger`` with the proposed ``_post_postgres``; ``direct_lines`` COPYs the lines of
    the newly inserted journals straight into ``ledger_journal_lines`` (no staging)."""

    def __init__(self, engine: sa.Engine, direct_lines: bool = False):
        super().__init__(engine)
        self.direct_lines = direct_lines

    def _post(self, conn, headers, lines):
        inserted = self._post_postgres(conn, headers, lines)
        ids, new = list(headers["external_id"]), set(inserted)
        return LedgerPostResult(
            inserted=[i for i in ids if i in new], already_posted=[i for i in ids if i not in new]
        )

    def _post_postgres(self, conn, headers, lines) -> list[str]:
        hcols, lcols = ", ".join(JOURNAL_COLS), ", ".join(LINE_COLS)
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE IF NOT EXISTS proto_stage_journals "
                "(LIKE ledger_journals INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
        )
        if not self.direct_lines:
            conn.execute(
                sa.text(
                    "CREATE TEMP TABLE IF NOT EXISTS proto_stage_lines "
                    "(LIKE ledger_journal_lines INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
            )
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.copy_expert(
                f"COPY proto_stage_journals ({hcols}) FROM STDIN {COPY_OPTS}",
                fast_csv(fast_header_frame(headers), JOURNAL_COLS),
            )
        inserted = list(
            conn.execute(
                sa.text(
                    f"INSERT INTO ledger_journals ({hcols}) SELECT {hcols} FROM "
                    "proto_stage_journals ON CONFLICT (external_id) DO NOTHING RETURNING external_id"
                )
            ).scalars()
        )
        if not inserted:
            return inserted
        keep = lines["external_id"].isin(inserted)
        mine = lines if keep.all() else lines[keep]  # no copy when every journal is new
        if len(mine):
            target = "ledger_journal_lines" if self.direct_lines else "proto_stage_lines"
            with raw.cursor() as cur:
                cur.copy_expert(
                    f"COPY {target} ({lcols}) FROM STDIN {COPY_OPTS}", fast_csv(mine, LINE_COLS)
                )
            if not self.direct_lines:
                conn.execute(
                    sa.text(
                        f"INSERT INTO ledger_journal_lines ({lcols}) SELECT {lcols} FROM "
                        "proto_stage_lines ON CONFLICT (external_id, line_no) DO NOTHING"
                    )
                )
        return inserted


# ---------------------------------------------------------------------------------------------


def _rate(n_lines: int, seconds: float) -> float:
    return n_lines / seconds


def _fig(x: float) -> float:
    return float(f"{x:.4g}")


def main(
    lines: int = 1_000_000,
    url: str | None = None,
    batch: int = 50_000,
    repeat: int = 3,
    prototype: bool = False,
) -> list[dict]:
    n_journals = max(1, int(lines) // LINES_PER_JOURNAL)
    headers, jlines = make_journals(n_journals)
    n_lines = len(jlines)
    work = batches(headers, jlines, int(batch))
    expected = expected_snapshot(headers, jlines)
    empty = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    url = url or default_url()
    schema = f"bench_posting_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = schema_engine(url, schema)
    times: dict[str, list[float]] = {}
    reference: dict = {}  # the checksums of the first way's ledger, for the others

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    try:
        ledger = SqlLedger(engine)  # creates the two tables in the schema

        def ours() -> None:
            truncate(engine)
            check(engine, empty, "before ours", reference)
            t, ins, already = run_ours(ledger, work)
            if (ins, already) != (n_journals, 0):
                raise AssertionError(f"ours: {ins} inserted, {already} already posted")
            check(engine, expected, "after ours", reference)
            record("ours", t)
            t, ins, already = run_ours(ledger, work)
            if (ins, already) != (0, n_journals):
                raise AssertionError(f"ours re-posting: {ins} inserted, {already} already")
            check(engine, expected, "after ours re-posting", reference)
            record("ours_repost", t)

        def staging() -> None:
            truncate(engine)
            record("staging", run_peer(engine, work, staging=True))
            check(engine, expected, "after the staging peer", reference)
            record("staging_repost", run_peer(engine, work, staging=True))
            check(engine, expected, "after the staging peer re-posting", reference)

        def raw_copy() -> None:
            truncate(engine)
            record("raw", run_peer(engine, work, staging=False))
            check(engine, expected, "after raw COPY", reference)

        def proto(direct: bool) -> None:
            name = "proto_direct" if direct else "proto"
            led = PrototypeLedger(engine, direct_lines=direct)
            truncate(engine)
            t, ins, already = run_ours(led, work)
            if (ins, already) != (n_journals, 0):
                raise AssertionError(f"{name}: {ins} inserted, {already} already posted")
            check(engine, expected, f"after {name}", reference)
            record(name, t)
            t, ins, already = run_ours(led, work)
            if (ins, already) != (0, n_journals):
                raise AssertionError(f"{name} re-posting: {ins} inserted, {already} already")
            check(engine, expected, f"after {name} re-posting", reference)
            record(f"{name}_repost", t)

        ways = [ours, staging, raw_copy]
        if prototype:
            ways += [lambda: proto(False), lambda: proto(True)]
        for r in range(max(1, int(repeat))):
            for way in ways[r % len(ways) :] + ways[: r % len(ways)]:
                way()
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    best = {k: min(v) for k, v in times.items()}
    rate = {k: _rate(n_lines, v) for k, v in best.items()}
    print(
        f"lines: {n_lines:,} in {n_journals:,} journals, batches of {batch:,} journals "
        f"({len(work)} transactions), best of {repeat}"
    )
    for k, v in best.items():
        print(f"  {k:<20} {v:8.3f} s  {rate[k]:>12,.0f} lines/s")
    print("ledger contents checked after every posting and re-posting")
    rows = [
        {
            "name": "posting_vs_copy_staging",
            "ours": _fig(rate["ours"]),
            "peer": _fig(rate["staging"]),
            "unit": "lines/s",
            "ratio": round(rate["ours"] / rate["staging"], 2),
            "target": 0.7,
        },
        {
            "name": "posting_vs_raw_copy",
            "ours": _fig(rate["ours"]),
            "peer": _fig(rate["raw"]),
            "unit": "lines/s",
            "ratio": round(rate["ours"] / rate["raw"], 2),
            "target": None,
        },
        {
            "name": "reposting_vs_copy_staging",
            "ours": _fig(rate["ours_repost"]),
            "peer": _fig(rate["staging_repost"]),
            "unit": "lines/s",
            "ratio": round(rate["ours_repost"] / rate["staging_repost"], 2),
            "target": 1.0,
        },
    ]
    if prototype:
        for k in ("proto", "proto_direct"):
            print(
                f"  prototype {k}: x{rate[k] / rate['staging']:.2f} of the staging peer, "
                f"re-posting x{rate[k + '_repost'] / rate['staging_repost']:.2f}"
            )
    print(f"\n{'benchmark':<26} {'ours':>11} {'peer':>11} {'unit':>8} {'ratio':>6} {'target':>6}")
    for r in rows:
        target = "-" if r["target"] is None else f"{r['target']}"
        print(
            f"{r['name']:<26} {r['ours']:>11,.0f} {r['peer']:>11,.0f} {r['unit']:>8} "
            f"{r['ratio']:>6.2f} {target:>6}"
        )
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--url", default=None)
    p.add_argument("--batch", type=int, default=50_000, help="journals per transaction")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--prototype", action="store_true", help="also time the proposed changes")
    a = p.parse_args()
    main(a.lines, a.url, a.batch, a.repeat, a.prototype)
