"""A tiny run of every benchmark: they keep working, and their rows keep the shared format."""

import pytest

from benchmarks import bench_revenue
from benchmarks.run import BENCHMARKS, run, table


def test_benchmarks_smoke(postgres_base_url, monkeypatch):
    monkeypatch.setenv("SYNC_BENCH_POSTGRES_URL", postgres_base_url)
    rows = run(smoke=True)
    assert {r["name"] for r in rows} >= {
        "revenue_vs_duckdb",
        "revenue_vs_duckdb_per_day",
        "revenue_vs_loop",
        "rest_posting_vs_serial",
        "ingest_vs_requests_loop",
        "posting_vs_copy_staging",
        "posting_vs_raw_copy",
        "reposting_vs_copy_staging",
    }
    for r in rows:
        _check_row(r)
    assert "revenue_vs_duckdb" in table(rows)
    assert len(BENCHMARKS) >= 3


def _check_row(r: dict) -> None:
    assert set(r) == {"name", "ours", "peer", "unit", "ratio", "target"}
    assert r["ours"] > 0
    if r["peer"] is not None:
        # figures are rounded for display; the ratio is computed before rounding
        assert abs(r["ratio"] - _advantage(r)) <= 0.01 * _advantage(r) + 0.01


def _advantage(r) -> float:
    # time units: peer / ours; throughput units: ours / peer
    return r["peer"] / r["ours"] if r["unit"] == "s" else r["ours"] / r["peer"]


def test_revenue_month_sql_equals_ours_row_for_row():
    """The month-level DuckDB peer gives our exact cents per (line, month), and the check
    catches a different tie-break."""
    lines = bench_revenue.make_lines(3_000)
    ours = bench_revenue.run_ours(lines)
    con = bench_revenue.duckdb_connection(lines)
    try:
        for sql in (bench_revenue.MONTH_SQL, bench_revenue.PER_DAY_SQL):
            bench_revenue.run_duckdb(con, sql)
            bench_revenue.assert_same_rows(con, ours, "duckdb")
        later_month_wins = bench_revenue.MONTH_SQL.replace("rem DESC, mi)", "rem DESC, mi DESC)")
        assert later_month_wins != bench_revenue.MONTH_SQL
        bench_revenue.run_duckdb(con, later_month_wins)
        with pytest.raises(AssertionError, match="differs from ours"):
            bench_revenue.assert_same_rows(con, ours, "duckdb")
    finally:
        con.close()
