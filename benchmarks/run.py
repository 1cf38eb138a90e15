"""`make bench`: run every benchmark, print the comparison table and write results.json.

Each benchmark module exposes ``main(**sizes) -> list[dict]`` returning rows
``{name, ours, peer, unit, ratio, target}`` where ``ratio`` is our advantage over the peer
(above 1 means ours is ahead). ``--smoke`` runs tiny sizes (used by the test suite) and does
not overwrite results.json unless ``--out`` is given.
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
}


def machine() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def run(smoke: bool = False, only: list[str] | None = None) -> list[dict]:
    rows: list[dict] = []
    for module, (full, small) in BENCHMARKS.items():
        if only and not any(o in module for o in only):
            continue
        t = time.perf_counter()
        mod = importlib.import_module(module)
        rows.extend(mod.main(**(small if smoke else full)))
        print(f"# {module} took {time.perf_counter() - t:.1f}s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'name':<28} {'ours':>12} {'peer':>12} {'unit':>6} {'ratio':>8} {'target':>7}  ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        peer = "-" if r["peer"] is None else f"{r['peer']:.4g}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        ok = (
            ""
            if r["ratio"] is None or r["target"] is None
            else ("yes" if r["ratio"] >= r["target"] else "NO")
        )
        lines.append(
            f"{r['name']:<28} {r['ours']:>12.4g} {peer:>12} {r['unit']:>6} "
            f"{ratio:>8} {r['target'] if r['target'] is not None else '-':>7}  {ok}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    parser.add_argument("--only", nargs="*", help="substring of benchmark modules to run")
    parser.add_argument("--out", default=None, help="results file (default results.json)")
    args = parser.parse_args(argv)
    rows = run(smoke=args.smoke, only=args.only)
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
