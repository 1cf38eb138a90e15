"""Revenue expansion by day: ``expand_lines`` vs DuckDB SQL vs a per-line Python loop.

Generates deterministic invoice lines in cents, one currency: 60 % monthly subscriptions,
25 % annual, 15 % prorations over odd intervals (hours and seconds, some negative). Each way
spreads every line over its UTC days (start day counted, end day excluded), sums the days per
calendar month and splits the amount across the months by largest remainder (floor shares,
one more cent to the largest remainders, ties to the earliest month, negative amounts as the
mirror of their absolute value).

Each way produces the same thing, one recognized amount per (line, month), kept in its own
memory. Before either SQL statement is timed, its result must equal ours row for row (line,
month, cents) and per month; the loop must agree with ours on the totals per month of its
sample.

- ours: :func:`sync_core.revenue.expand_lines` -> a DataFrame; best of 3.
- duckdb (``revenue_vs_duckdb``, the peer): one SQL statement at month level, the way a SQL
  practitioner writes it: one row per (line, month) from ``unnest(range(first month, last
  month + 1))``, the month's days of the service period computed arithmetically
  (``least(end, next month start) - greatest(start, month start)``), then the same largest
  remainder with one named window (floor shares, ``row_number() OVER (PARTITION BY line
  ORDER BY remainder DESC, month)`` against the line's shortfall), materialized in a
  temporary table; all cores; best of 3.
- duckdb per day (``revenue_vs_duckdb_per_day``, informational): the older formulation that
  unnests one row per (line, day) and groups by (line, month); no target.
- loop: a straightforward pure-Python loop per line (days per month by walking the month
  starts, then largest remainder) appending (line, month, amount) tuples to a list, timed on
  a sample (``--loop-sample``, 20,000 lines by default, garbage collector paused) and scaled
  linearly to the full count; its per-month totals are checked against ours on the sample.

Run: ``python -m benchmarks.bench_revenue --lines 1000000``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import time
import tracemalloc
from collections import defaultdict

import numpy as np
import pandas as pd

from sync_core.revenue import expand_lines

DAY_NS = 86_400 * 10**9
EPOCH = dt.date(1970, 1, 1)


def make_lines(n: int, seed: int = 20260615) -> pd.DataFrame:
    """``n`` deterministic lines: line_key, amount (cents), period_start, period_end (UTC)."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=n, p=[0.60, 0.25, 0.15])  # 0 monthly, 1 annual, 2 proration
    month0 = rng.integers(0, 36, size=n)  # start month within 2024-2026
    dom = rng.integers(0, 28, size=n)  # day of month - 1 (1..28: no end-of-month clipping)
    start_m = np.datetime64("2024-01", "M") + month0
    start_d = start_m.astype("datetime64[D]") + dom
    end_m = start_m + np.where(kind == 1, 12, 1)
    end_d = end_m.astype("datetime64[D]") + dom
    start = start_d.astype("datetime64[ns]").astype(np.int64)
    end = end_d.astype("datetime64[ns]").astype(np.int64)
    # prorations: an odd interval of 1..75 days plus a few hours, starting mid-day
    pro = kind == 2
    offset = rng.integers(0, DAY_NS // 10**9, size=n) * 10**9
    length = rng.integers(1, 76, size=n) * DAY_NS + rng.integers(0, 86_400, size=n) * 10**9
    start = np.where(pro, start + offset, start)
    end = np.where(pro, start + length, end)
    price = np.where(
        kind == 0,
        rng.integers(5, 50_000, size=n) * 100 - 1,  # 4.99 .. 49,999.99
        np.where(
            kind == 1,
            rng.integers(100, 500_000, size=n) * 100,
            rng.integers(-99_999, 99_999, size=n),
        ),
    )
    return pd.DataFrame(
        {
            "line_key": np.array([f"in_{i:07d}/il_{i:07d}" for i in range(n)], dtype=object),
            "amount": price.astype(np.int64),
            "period_start": pd.to_datetime(start, utc=True),
            "period_end": pd.to_datetime(end, utc=True),
        }
    )


# ---------------------------------------------------------------------------------------------
# ours


def run_ours(lines: pd.DataFrame) -> pd.DataFrame:
    return expand_lines(lines, "day")


def totals(expanded: pd.DataFrame) -> pd.Series:
    return expanded.groupby("period")["recognized"].sum()


# ---------------------------------------------------------------------------------------------
# DuckDB

MONTH_SQL = """
CREATE OR REPLACE TEMP TABLE expanded AS
WITH spans AS (
    SELECT line_id, amount, sd, ed,
           datediff('month', DATE '1970-01-01', DATE '1970-01-01' + sd::INTEGER) AS m0,
           datediff('month', DATE '1970-01-01', DATE '1970-01-01' + (ed - 1)::INTEGER) AS m1
    FROM lines
), months AS (
    SELECT line_id, amount, sd, ed, unnest(range(m0, m1 + 1)) AS mi FROM spans
), weighted AS (
    -- days of [sd, ed) inside month mi: the month's bounds in days since the epoch
    SELECT line_id, amount, ed - sd AS total, mi,
           least(ed, datediff('day', DATE '1970-01-01', DATE '1970-01-01' + to_months(mi + 1)))
           - greatest(sd, datediff('day', DATE '1970-01-01', DATE '1970-01-01' + to_months(mi)))
           AS w
    FROM months
), shares AS (
    SELECT line_id, mi, amount,
           abs(amount) * w // total AS base,
           abs(amount) * w % total AS rem
    FROM weighted
), ranked AS (
    SELECT line_id, mi, amount, base,
           abs(amount) - sum(base) OVER (
               w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS short,
           row_number() OVER w AS rk
    FROM shares
    WINDOW w AS (PARTITION BY line_id ORDER BY rem DESC, mi)
)
SELECT line_id, (DATE '1970-01-01' + to_months(mi))::DATE AS period,
       (sign(amount) * (base + (rk <= short)::BIGINT))::BIGINT AS recognized
FROM ranked
"""
PER_DAY_SQL = """
CREATE OR REPLACE TEMP TABLE expanded AS
WITH days AS (
    SELECT line_id, unnest(range(sd, ed)) AS d FROM lines
), per_month AS (
    SELECT line_id, date_trunc('month', DATE '1970-01-01' + d::INTEGER) AS m,
           count(*)::BIGINT AS w
    FROM days GROUP BY ALL
), shares AS (
    SELECT p.line_id, p.m, l.amount,
           abs(l.amount) * p.w // (l.ed - l.sd) AS base,
           abs(l.amount) * p.w % (l.ed - l.sd) AS rem
    FROM per_month p JOIN lines l USING (line_id)
), ranked AS (
    SELECT line_id, m, amount, base,
           abs(amount) - sum(base) OVER (PARTITION BY line_id) AS short,
           row_number() OVER (PARTITION BY line_id ORDER BY rem DESC, m) AS rk
    FROM shares
)
SELECT line_id, m AS period, (sign(amount) * (base + (rk <= short)::BIGINT))::BIGINT AS recognized
FROM ranked
"""
TOTALS_SQL = "SELECT period, sum(recognized)::BIGINT AS recognized FROM expanded GROUP BY 1"


def duckdb_connection(lines: pd.DataFrame):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads TO {os.cpu_count() or 1}")
    sd = lines["period_start"].array.asi8 // DAY_NS
    ed = np.maximum(lines["period_end"].array.asi8 // DAY_NS, sd + 1)
    frame = pd.DataFrame(
        {"line_id": np.arange(len(lines)), "amount": lines["amount"].to_numpy(), "sd": sd, "ed": ed}
    )
    con.register("lines_df", frame)
    con.execute("CREATE TABLE lines AS SELECT * FROM lines_df")
    con.unregister("lines_df")
    return con


def run_duckdb(con, sql: str = MONTH_SQL) -> None:
    con.execute(sql)


ROWS_SQL = """
SELECT line_id, datediff('month', DATE '1970-01-01', period) AS mi, recognized
FROM expanded ORDER BY line_id, period
"""


def assert_same_rows(con, expanded: pd.DataFrame, label: str) -> None:
    """The last DuckDB result equals ours row for row: line, month and cents."""
    got = con.execute(ROWS_SQL).df()
    period = expanded["period"].dt
    ours_mi = ((period.year - 1970) * 12 + period.month - 1).to_numpy(np.int64)
    ours_line = pd.factorize(expanded["line_key"])[0]
    if len(got) != len(expanded):
        raise AssertionError(f"{label}: {len(got):,} (line, month) rows, ours {len(expanded):,}")
    for col, mine in (("line_id", ours_line), ("mi", ours_mi), ("recognized", None)):
        theirs = got[col].to_numpy(np.int64)
        mine = expanded["recognized"].to_numpy(np.int64) if mine is None else mine
        if not np.array_equal(theirs, mine):
            i = int(np.flatnonzero(theirs != mine)[0])
            raise AssertionError(
                f"{label} differs from ours at row {i}: {got.iloc[i].to_dict()} vs "
                f"{expanded.iloc[i].to_dict()}"
            )


def duckdb_totals(con) -> pd.Series:
    df = con.execute(TOTALS_SQL).df()
    return pd.Series(
        df["recognized"].to_numpy(np.int64),
        index=pd.DatetimeIndex(pd.to_datetime(df["period"])).tz_localize("UTC"),
    )


# ---------------------------------------------------------------------------------------------
# the per-line Python loop


def run_loop(lines: pd.DataFrame) -> list[tuple[str, dt.date, int]]:
    """Straightforward per-line loop: days per month by walking month starts, then LR."""
    rows: list[tuple[str, dt.date, int]] = []
    starts = lines["period_start"].array.asi8 // DAY_NS
    ends = lines["period_end"].array.asi8 // DAY_NS
    keys = lines["line_key"].tolist()
    for key, amount, s, e in zip(keys, lines["amount"].tolist(), starts.tolist(), ends.tolist()):
        d0 = EPOCH + dt.timedelta(days=s)
        d1 = EPOCH + dt.timedelta(days=max(e, s + 1))
        months, days = [], []
        cur = d0
        while cur < d1:
            nxt = dt.date(cur.year + cur.month // 12, cur.month % 12 + 1, 1)
            seg = min(nxt, d1)
            months.append(cur.replace(day=1))
            days.append((seg - cur).days)
            cur = seg
        total, a = sum(days), abs(amount)
        parts = [a * d // total for d in days]
        rems = [a * d % total for d in days]
        short = a - sum(parts)
        for j in sorted(range(len(days)), key=lambda j: (-rems[j], j))[:short]:
            parts[j] += 1
        sign = -1 if amount < 0 else 1
        for m, p in zip(months, parts):
            rows.append((key, m, sign * p))
    return rows


# ---------------------------------------------------------------------------------------------


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main(lines: int = 1_000_000, loop_sample: int = 20_000, repeat: int = 3) -> list[dict]:
    n = int(lines)
    data = make_lines(n)

    t_ours, expanded = best_of(lambda: run_ours(data), repeat)
    ours_month = totals(expanded)
    tracemalloc.start()
    run_ours(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    con = duckdb_connection(data)
    duck = {}
    for label, sql in (("month", MONTH_SQL), ("per_day", PER_DAY_SQL)):
        # the result must equal ours row for row before it is timed
        run_duckdb(con, sql)
        assert_same_rows(con, expanded, f"DuckDB {label} SQL")
        duck_month = duckdb_totals(con)
        joined = pd.concat({"ours": ours_month, "duckdb": duck_month}, axis=1).fillna(0)
        if not (joined["ours"] == joined["duckdb"]).all():
            raise AssertionError(
                f"ours and DuckDB {label} disagree per month:\n"
                f"{joined[joined.ours != joined.duckdb]}"
            )
        duck[label], _ = best_of(lambda sql=sql: run_duckdb(con, sql), repeat)
    con.close()
    t_duck, t_duck_day = duck["month"], duck["per_day"]
    if int(ours_month.sum()) != int(data["amount"].sum()):
        raise AssertionError("recognized total differs from the billed total")

    k = min(n, int(loop_sample))
    sample = data.iloc[:k]
    gc.disable()  # the loop allocates a tuple per row: keep collector passes out of its time
    try:
        t = time.perf_counter()
        loop_rows = run_loop(sample)
        t_loop_sample = time.perf_counter() - t
    finally:
        gc.enable()
    t_loop = t_loop_sample * n / k
    ours_sample = totals(run_ours(sample))
    loop_totals: dict[dt.date, int] = defaultdict(int)
    for _, m, v in loop_rows:
        loop_totals[m] += v
    loop_month = pd.Series(
        {pd.Timestamp(m, tz="UTC"): v for m, v in loop_totals.items()}, dtype=np.int64
    )
    both = pd.concat({"ours": ours_sample, "loop": loop_month}, axis=1).fillna(0)
    if not (both["ours"] == both["loop"]).all():
        raise AssertionError("ours and the Python loop disagree per month on the sample")

    print(f"lines: {n:,} -> {len(expanded):,} (line, month) rows, {len(ours_month)} months")
    print(f"ours (expand_lines):  {t_ours:8.3f} s best of {repeat}, peak {peak / 2**20:,.0f} MiB")
    print(f"duckdb SQL by month:  {t_duck:8.3f} s best of {repeat}, {os.cpu_count()} threads")
    print(f"duckdb SQL by day:    {t_duck_day:8.3f} s best of {repeat}, {os.cpu_count()} threads")
    print(
        f"python loop:          {t_loop:8.3f} s scaled linearly from {k:,} lines "
        f"({t_loop_sample:.3f} s measured)"
    )
    print(
        "agree to the cent: ours = duckdb by month = duckdb by day per (line, month) row, "
        "ours = loop per month (sample)"
    )
    rows = [
        {
            "name": "revenue_vs_duckdb",
            "ours": float(f"{t_ours:.4g}"),
            "peer": float(f"{t_duck:.4g}"),
            "unit": "s",
            "ratio": round(t_duck / t_ours, 2),
            "target": 1.0,
        },
        {
            "name": "revenue_vs_duckdb_per_day",
            "ours": float(f"{t_ours:.4g}"),
            "peer": float(f"{t_duck_day:.4g}"),
            "unit": "s",
            "ratio": round(t_duck_day / t_ours, 2),
            "target": None,
        },
        {
            "name": "revenue_vs_loop",
            "ours": float(f"{t_ours:.4g}"),
            "peer": float(f"{t_loop:.4g}"),
            "unit": "s",
            "ratio": round(t_loop / t_ours, 2),
            "target": 50.0,
        },
    ]
    print(f"\n{'benchmark':<26} {'ours s':>9} {'peer s':>9} {'ratio':>8} {'target':>7}")
    for r in rows:
        target = "-" if r["target"] is None else r["target"]
        print(f"{r['name']:<26} {r['ours']:>9.3f} {r['peer']:>9.3f} {r['ratio']:>8.2f} {target:>7}")
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--loop-sample", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    main(a.lines, a.loop_sample, a.repeat)
