"""A tiny run of every benchmark: they keep working, and their rows keep the shared format."""

import pytest

from benchmarks import bench_revenue
from benchmarks.run import BENCHMARKS, run, table

# the Dagster benchmarks have their own tests below (no PostgreSQL needed)
DAGSTER_BENCHMARKS = ("benchmarks.bench_close", "benchmarks.bench_growth")


def test_benchmarks_smoke(postgres_base_url, monkeypatch):
    monkeypatch.setenv("SYNC_BENCH_POSTGRES_URL", postgres_base_url)
    rows = run(smoke=True, only=[m for m in BENCHMARKS if m not in DAGSTER_BENCHMARKS])
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


def test_close_vs_engine_smoke():
    """The Dagster close and the engine close on a tiny book: same proposals, both timed."""
    from benchmarks import bench_close

    rows = bench_close.main(subscriptions=40, months=2, entities=2)
    assert [r["name"] for r in rows] == ["close_vs_engine", "close_vs_engine_wall"]
    for r in rows:
        _check_row(r)


def test_month_close_growth_smoke():
    from benchmarks import bench_growth
    from benchmarks.run import LOWER_IS_BETTER, meets

    rows = bench_growth.main(subscriptions=40, months=7, entities=1)
    assert [r["name"] for r in rows] == [
        "month_close_growth", "month_close_growth_fit", "month_close_growth_wall"]  # fmt: skip
    for r in rows:
        assert r["name"] in LOWER_IS_BETTER
        assert set(r) == {"name", "ours", "peer", "unit", "ratio", "target"}
        assert abs(r["ratio"] - r["ours"] / r["peer"]) <= 0.01 * r["ratio"] + 0.01
    assert meets(rows[0]) == (rows[0]["ratio"] <= 1.2)


def test_growth_fit_reads_the_line_through_months_two_onwards():
    from benchmarks.bench_growth import fitted

    # month 1 (storing every document) is left out; 10 s + 0.5 s a month after it, noise
    # that cancels on the line
    assert fitted([30.0, 10.5, 11.5, 11.5, 12.5, 12.5], 3, 6) == pytest.approx((11.2, 12.7))


def test_demo_measure_reports_child_peak_memory(tmp_path):
    """The demo benchmark's measurement: wall time and the child's own peak RSS."""
    import sys

    from benchmarks.bench_demo_100k import measure

    child = "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('ok')"
    m = measure([sys.executable, "-c", child], {}, tmp_path / "log", timeout_s=60)
    assert m["returncode"] == 0 and not m["timed_out"]
    assert 300 * 2**20 <= m["peak_rss_bytes"] < 2 * 2**30
    assert (tmp_path / "log").read_text().strip() == "ok"
    slow = measure([sys.executable, "-c", "import time; time.sleep(30)"], {}, tmp_path / "l2", 1)
    assert slow["timed_out"] and slow["wall_s"] < 20


def test_run_selection_and_targets():
    """Opt-in benchmarks run only when asked for; lower-is-better rows and ceilings."""
    from benchmarks.run import OPT_IN, meets, selected

    assert "benchmarks.bench_demo_100k" in OPT_IN
    assert not selected("benchmarks.bench_demo_100k", None, None)
    assert selected("benchmarks.bench_demo_100k", None, ["benchmarks.bench_demo_100k"])
    assert selected("benchmarks.bench_demo_100k", ["demo_100k"], None)
    assert selected("benchmarks.bench_revenue", None, None)
    assert not selected("benchmarks.bench_revenue", ["demo_100k"], None)
    row = {"name": "month_close_growth", "ours": 1.1, "peer": 1.0, "ratio": 1.1, "target": 1.2}
    assert meets(row) and not meets({**row, "ratio": 1.3})
    assert meets({"name": "x", "ours": 2, "peer": None, "ratio": None, "target": 2})
    assert not meets({"name": "x", "ours": 3, "peer": None, "ratio": None, "target": 2})
    assert meets({"name": "x", "ours": 1, "peer": 2, "ratio": 2.0, "target": 1.0})
