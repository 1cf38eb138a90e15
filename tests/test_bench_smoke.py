"""A tiny run of every benchmark: they keep working, and their rows keep the shared format."""

from benchmarks.run import BENCHMARKS, run, table


def test_benchmarks_smoke(postgres_base_url, monkeypatch):
    monkeypatch.setenv("SYNC_BENCH_POSTGRES_URL", postgres_base_url)
    rows = run(smoke=True)
    assert {r["name"] for r in rows} >= {
        "revenue_vs_duckdb",
        "revenue_vs_loop",
        "rest_posting_vs_serial",
        "ingest_vs_requests_loop",
        "posting_vs_copy_staging",
        "posting_vs_raw_copy",
        "reposting_vs_copy_staging",
    }
    for r in rows:
        assert set(r) == {"name", "ours", "peer", "unit", "ratio", "target"}
        assert r["ours"] > 0
        if r["peer"] is not None:
            # figures are rounded for display; the ratio is computed before rounding
            assert abs(r["ratio"] - _advantage(r)) <= 0.01 * _advantage(r) + 0.01
    assert "revenue_vs_duckdb" in table(rows)
    assert len(BENCHMARKS) >= 3


def _advantage(r) -> float:
    # time units: peer / ours; throughput units: ours / peer
    return r["peer"] / r["ours"] if r["unit"] == "s" else r["ours"] / r["peer"]
