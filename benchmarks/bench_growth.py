"""Month-close growth: does closing a month cost more as the book gets older?

A steady book of ``months`` months (``generate(folder, subscriptions=..., seed=7,
months=24, entities=3)``: arrivals and churn balance, so a month's activity stays about the
same) is ingested into a temporary SQLite warehouse and Dagster instance
(``benchmarks.deployment``), every entity x month, not timed. Then US01 closes its months in
order, one partition at a time, the way a month-end close runs:
``sync_assets.runner.run_stages(instance, resources, ingest=[], derived=[("US01", month)])``,
timed each in process CPU seconds (and wall seconds).

- ours: the CPU seconds of closing the last month (month 24);
- peer: the CPU seconds of closing month 6 on the same book, in the same run.

``month_close_growth``: ratio = ours / peer, **lower is better**, target <= 1.2 (a close may
get at most 20 % dearer from month 6 to month 24; a platform that recomputes the whole
history each month grows with the book's age). ``month_close_growth_fit``: the same two
months read off the least-squares line through months 2-24 (informational: a single close
varies by 10-20 % on a shared machine). ``month_close_growth_wall``: the raw ratio in wall
seconds, informational. The CPU seconds of every month are printed.

Run: ``python -m benchmarks.bench_growth --subscriptions 10000 --months 24``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.deployment import cpu_wall, demo_source, deployment, periods

ENTITY = "US01"
PEER_MONTH = 6


def close_in_order(dep, entity: str, months: list[str]) -> list[tuple[float, float]]:
    """(CPU s, wall s) of closing each month of ``entity``, one run_stages call each."""
    out = []
    for m in months:
        cpu, wall, _ = cpu_wall(lambda m=m: dep.run([], [(entity, m)]))
        out.append((cpu, wall))
        print(f"# close {entity} {m[:7]}: CPU {cpu:6.2f} s  wall {wall:6.2f} s", flush=True)
    return out


def fitted(cpu: list[float], first: int, last: int) -> tuple[float, float]:
    """The CPU seconds of closing month ``first`` and month ``last`` read off the
    least-squares line through months 2 to ``last`` (month 1, which stores every document, left
    out): one close's CPU seconds vary by 10-20 % on a shared machine, a line through 23 of
    them much less."""
    xs = list(range(2, len(cpu) + 1))
    ys = cpu[1:]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my + slope * (first - mx), my + slope * (last - mx)


def main(subscriptions: int = 10_000, months: int = 24, entities: int | None = 3) -> list[dict]:
    months = int(months)
    if months < PEER_MONTH:
        raise ValueError(f"month_close_growth needs at least {PEER_MONTH} months")
    calendar = periods(months)
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as d:
        tmp = Path(d)
        counts = demo_source(tmp / "source", subscriptions, months=months, entities=entities)
        with deployment(tmp / "platform", tmp / "source") as dep:
            keys = [(e, p) for e in dep.entities for p in calendar]
            took = dep.run(keys, [])
            print(
                f"# ingested {len(keys)} partitions ({len(dep.entities)} entities x {months} "
                f"months) in {took:.1f}s: {counts['invoices']:,} invoices, "
                f"{counts['invoice_lines']:,} lines",
                flush=True,
            )
            times = close_in_order(dep, ENTITY, calendar)
    (o_cpu, o_wall), (p_cpu, p_wall) = times[-1], times[PEER_MONTH - 1]
    print(
        f"closing {ENTITY} month {months} ({calendar[-1][:7]}): CPU {o_cpu:.2f} s, wall "
        f"{o_wall:.2f} s; month {PEER_MONTH} ({calendar[PEER_MONTH - 1][:7]}): CPU {p_cpu:.2f} s,"
        f" wall {p_wall:.2f} s"
    )
    print(
        f"growth month {months} / month {PEER_MONTH}: CPU {o_cpu / p_cpu:.2f}, wall "
        f"{o_wall / p_wall:.2f} (lower is better, target <= 1.2)"
    )
    f6, f_last = fitted([c for c, _ in times], PEER_MONTH, months)
    print(f"least-squares line over months 2-{months}: month {PEER_MONTH} {f6:.2f} CPU s, "
          f"month {months} {f_last:.2f} CPU s, ratio {f_last / f6:.2f}")  # fmt: skip
    return [
        {
            "name": "month_close_growth",
            "ours": round(o_cpu, 3),
            "peer": round(p_cpu, 3),
            "unit": "s",
            "ratio": round(o_cpu / p_cpu, 3),
            "target": 1.2,
        },
        {
            "name": "month_close_growth_fit",
            "ours": round(f_last, 3),
            "peer": round(f6, 3),
            "unit": "s",
            "ratio": round(f_last / f6, 3),
            "target": None,
        },
        {
            "name": "month_close_growth_wall",
            "ours": round(o_wall, 3),
            "peer": round(p_wall, 3),
            "unit": "s",
            "ratio": round(o_wall / p_wall, 3),
            "target": None,
        },
    ]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subscriptions", type=int, default=10_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--entities", type=int, default=3)
    a = p.parse_args()
    for row in main(a.subscriptions, a.months, a.entities):
        print(row)
