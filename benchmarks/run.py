"""`make bench`: run every benchmark, print the comparison table and write results.json.

Each benchmark module exposes ``main(**sizes) -> list[dict]`` returning rows
``{name, ours, peer, unit, ratio, target}`` where ``ratio`` is our advantage over the peer
(above 1 means ours is ahead), except for the rows in ``LOWER_IS_BETTER``, whose ratio is
ours / peer and must stay at or below the target. A row without a peer (ratio null) and with
a target is a ceiling: ``ours <= target``. ``--smoke`` runs tiny sizes (used by the test
suite) and does not overwrite results.json unless ``--out`` is given.

The modules in ``OPT_IN`` take many minutes; they run only when asked for, by their flag
(``--demo-100k``, ``--backfill``) or by name with ``--only``.
"""

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = {
    # module: (full sizes, smoke sizes)
    "benchmarks.bench_revenue": ({"lines": 1_000_000}, {"lines": 2_000}),
    "benchmarks.bench_posting": ({"lines": 1_000_000}, {"lines": 2_000}),
    "benchmarks.bench_rest": ({"journals": 10_000}, {"journals": 50}),
    "benchmarks.bench_ingest": ({"pages": 1000}, {"pages": 5}),
    # needs a Dagster daemon and code server (~5 minutes); the smoke size skips it
    "benchmarks.bench_microbatch": ({"events": 20}, {"events": 0}),
    # the Dagster path on a temporary SQLite warehouse and instance
    "benchmarks.bench_close": (
        {"subscriptions": 10_000},
        {"subscriptions": 40, "months": 2, "entities": 2},
    ),
    "benchmarks.bench_growth": (
        {"subscriptions": 10_000, "months": 24},
        {"subscriptions": 40, "months": 7, "entities": 1},
    ),
    # opt-in (OPT_IN): the smoke run never starts them
    "benchmarks.bench_demo_100k": ({"subscriptions": 100_000}, None),
    "benchmarks.bench_backfill": ({"subscriptions": 1_000}, None),
}
# module -> flag; these run only with their flag or when selected by --only
OPT_IN = {
    "benchmarks.bench_demo_100k": "--demo-100k",
    "benchmarks.bench_backfill": "--backfill",
}
# rows whose ratio is ours / peer (a growth factor): lower is better, ok when ratio <= target
LOWER_IS_BETTER = {"month_close_growth", "month_close_growth_fit", "month_close_growth_wall"}


def machine() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def selected(module: str, only: list[str] | None, opt_in: list[str] | None) -> bool:
    """``--only`` names modules by substring (opt-in ones included); without it every module
    runs except the opt-in ones not listed in ``opt_in``."""
    if only:
        return any(o in module for o in only)
    return module not in OPT_IN or module in (opt_in or ())


def run(
    smoke: bool = False, only: list[str] | None = None, opt_in: list[str] | None = None
) -> list[dict]:
    rows: list[dict] = []
    for module, (full, small) in BENCHMARKS.items():
        if not selected(module, only, opt_in):
            continue
        if smoke and small is None:
            continue
        t = time.perf_counter()
        mod = importlib.import_module(module)
        rows.extend(mod.main(**(small if smoke else full)))
        print(f"# {module} took {time.perf_counter() - t:.1f}s", flush=True)
    return rows


def meets(r: dict) -> bool | None:
    """Whether a row meets its target (None: no target). Ratios are advantages (>= target)
    except in ``LOWER_IS_BETTER`` (<= target); a row without a peer is a ceiling on ours."""
    if r["target"] is None:
        return None
    if r["ratio"] is None:
        return r["ours"] <= r["target"]
    if r["name"] in LOWER_IS_BETTER:
        return r["ratio"] <= r["target"]
    return r["ratio"] >= r["target"]


def table(rows: list[dict]) -> str:
    w = max([28] + [len(r["name"]) for r in rows])
    head = f"{'name':<{w}} {'ours':>12} {'peer':>12} {'unit':>10} {'ratio':>8} {'target':>7}  ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        peer = "-" if r["peer"] is None else f"{r['peer']:.4g}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        if r["target"] is None:
            target = "-"
        elif r["ratio"] is None or r["name"] in LOWER_IS_BETTER:
            target = f"<={r['target']:g}"
        else:
            target = f"{r['target']:g}"
        ok = {None: "", True: "yes", False: "NO"}[meets(r)]
        lines.append(
            f"{r['name']:<{w}} {r['ours']:>12.4g} {peer:>12} {r['unit']:>10} "
            f"{ratio:>8} {target:>7}  {ok}"
        )
    lines.append("(ratio: our advantage, higher is better; <=: lower is better, a ceiling)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    parser.add_argument("--only", nargs="*", help="substring of benchmark modules to run")
    parser.add_argument("--out", default=None, help="results file (default results.json)")
    for module, flag in OPT_IN.items():
        parser.add_argument(
            flag, dest="opt_in", action="append_const", const=module, help=f"also run {module}"
        )
    args = parser.parse_args(argv)
    rows = run(smoke=args.smoke, only=args.only, opt_in=args.opt_in)
    print(f"\nmachine: {machine()}\n")
    print(table(rows))
    out = Path(args.out) if args.out else (None if args.smoke else HERE / "results.json")
    if out is not None:
        # a partial run (--only) updates its own rows and keeps the others
        previous = json.loads(out.read_text()) if out.exists() else []
        names = {r["name"] for r in rows}
        merged = [r for r in previous if r["name"] not in names] + rows
        out.write_text(json.dumps(merged, indent=2) + "\n")
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
