"""Closing a year: the Dagster path vs the pure engine doing the same work once.

The demo platform (``generate(folder, subscriptions=10000, seed=7)``) is ingested into a
temporary SQLite warehouse and Dagster instance (``benchmarks.deployment``): one ingest run
per legal entity x month for all of them, not timed. Before anything is timed the warehouse is
copied (SQLite backup) for the peer, so each side closes from scratch.

- ours: what a period close runs for US01 over 2025: ``sync_assets.runner.run_stages(instance,
  resources, ingest=[], derived=[("US01", "2025-01-01"), ..., ("US01", "2025-12-01")])``,
  in process, one ranged run of the 12 months (as a single-run backfill): revenue
  (schedules, rollforward, waterfall, accounting lines), proposed journals and their checks,
  ERP postings into the SQL ledger, reconciliation, the exception queue.
- peer: the engine in one process on the same data, the way a script would close the year:
  read US01's canonical documents and customers from the warehouse once, ``recognize`` once
  (``sync_core.revenue.recognize``, as ``sync_core.recognition.entity_history`` frames them),
  the rollforward and the waterfall, the accounting lines with their sources, then for each
  month the proposed journals (``sync_core.proposal.propose`` against the ledger as it is
  before the first close: empty) and their blocking checks. No writes: posting and
  reconciliation are what the platform adds on top.

Before timing, both are warmed up on another entity's January (DE01; the platform run posts
into DE01 only), so neither pays the first-call imports. After timing, the peer's proposals must equal the
journals the platform proposed, per month: the same journal keys, line count and debits.

Rows (process CPU seconds, ``time.process_time``; the in-process runs execute here):
``close_vs_engine`` (ratio = engine / platform, target 0.5: the platform may cost at most
twice the engine) and ``close_vs_engine_wall`` (wall seconds, informational).

Run: ``python -m benchmarks.bench_close --subscriptions 10000``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.deployment import cpu_wall, demo_source, deployment, periods

ENTITY = "US01"
_DOCUMENTS = ["invoice_lines", "invoices", "credit_notes", "credit_note_lines", "usage_events",
              "payments", "disputes"]  # fmt: skip


def engine_close(warehouse_url: str, erp, entity: str, months: list[str]) -> dict:
    """The peer: the engine over one entity's history once, then each month's proposal and
    checks. Returns {month: proposal}."""
    from resources import WarehouseResource
    from sync_core.proposal import propose
    from sync_core.proposal_checks import proposal_checks
    from sync_core.revenue import deferred_waterfall, recognize, rollforward
    from sync_core.subledger import with_sources

    wh = WarehouseResource(url=warehouse_url).get()
    frames = {name: wh.read(name, entity) for name in _DOCUMENTS}
    frames["legal_entities"] = wh.read("legal_entities").query("entity_id == @entity")
    customers = wh.read("customers", entity)
    le = frames["legal_entities"]
    cfg = erp.config()
    ledger, queue = erp.ledger(), erp.queue()
    posted, open_exceptions = ledger.journals(entity), queue.open(entity)
    closed = erp.closed_periods(entity)

    result = recognize(**frames)
    schedule = result.schedule
    rollforward(schedule)
    deferred_waterfall(schedule)
    lines = with_sources(result.accounting_lines, frames)
    by_month = dict(tuple(lines.groupby("period"))) if len(lines) else {}
    sched_by_month = dict(tuple(schedule.groupby("period"))) if len(schedule) else {}
    out = {}
    for m in months:
        period = pd.Timestamp(m, tz="UTC")
        proposal = propose(
            by_month.get(period, lines.iloc[:0]).reset_index(drop=True),
            customers=customers,
            subsidiary=le["erp_subsidiary_id"].iloc[0] if len(le) else None,
            chart=cfg.accounts(entity),
            posted=posted,
            ledger_lines=ledger.lines,
            period=period,
            closed_periods=closed,
            policy=cfg.period_policy(entity),
            open_exceptions=open_exceptions,
        )
        failed = [
            o
            for o in proposal_checks(
                proposal, sched_by_month.get(period, schedule.iloc[:0]), closed
            )
            if not o.passed
        ]
        if failed:
            raise AssertionError(f"engine proposal for {m} fails its checks: {failed}")
        out[m] = proposal
    return out


def _fingerprint(proposal: pd.DataFrame) -> tuple:
    return (
        tuple(sorted(set(proposal["journal_key"]))),
        len(proposal),
        int(proposal["debit"].sum()) if len(proposal) else 0,
    )


def assert_same_proposals(wh, peer: dict, entity: str) -> None:
    """The platform's stored proposals equal the engine's, month by month."""
    for m, theirs in peer.items():
        ours = wh.read("proposed_journals", entity, pd.Timestamp(m, tz="UTC"))
        if _fingerprint(ours) != _fingerprint(theirs):
            raise AssertionError(
                f"{entity} {m[:7]}: platform proposed {len(ours)} lines, the engine "
                f"{len(theirs)} (or other journals / debits)"
            )


def main(subscriptions: int = 10_000, months: int = 12, entities: int | None = None) -> list[dict]:
    """``months`` < 12 and ``entities`` (the generator's, default 3) only for smoke runs."""
    year = periods(int(months))
    with tempfile.TemporaryDirectory(prefix="bench-close-") as d:
        tmp = Path(d)
        counts = demo_source(tmp / "source", subscriptions, entities=entities)
        with deployment(tmp / "platform", tmp / "source") as dep:
            keys = [(e, p) for e in dep.entities for p in year]
            took = dep.run(keys, [])
            print(f"# ingested {len(keys)} partitions in {took:.1f}s ({counts['invoices']:,} "
                  f"invoices, {counts['invoice_lines']:,} lines)", flush=True)  # fmt: skip
            peer_url = f"sqlite:///{dep.copy_warehouse(tmp / 'engine.sqlite')}"
            from resources.erp import ErpResource

            erp = ErpResource(ledger_url=peer_url)
            # warm-up: each path once on the last other entity's first month (DE01)
            others = [e for e in dep.entities if e != ENTITY]
            if others:
                engine_close(peer_url, erp, others[-1], year[:1])
                dep.run([], [(others[-1], year[0])])

            e_cpu, e_wall, proposals = cpu_wall(lambda: engine_close(peer_url, erp, ENTITY, year))
            p_cpu, p_wall, _ = cpu_wall(lambda: dep.run([], [(ENTITY, m) for m in year]))
            assert_same_proposals(dep.warehouse(), proposals, ENTITY)
    lines = sum(len(p) for p in proposals.values())
    print(f"{ENTITY}, {len(year)} months, {lines:,} proposed journal lines (equal on both sides)")
    print(f"platform (run_stages):  CPU {p_cpu:8.2f} s  wall {p_wall:8.2f} s")
    print(f"engine (one process):   CPU {e_cpu:8.2f} s  wall {e_wall:8.2f} s")
    print(f"engine / platform: CPU {e_cpu / p_cpu:.2f}, wall {e_wall / p_wall:.2f} (target 0.5)")
    return [
        {
            "name": "close_vs_engine",
            "ours": round(p_cpu, 3),
            "peer": round(e_cpu, 3),
            "unit": "s",
            "ratio": round(e_cpu / p_cpu, 3),
            "target": 0.5,
        },
        {
            "name": "close_vs_engine_wall",
            "ours": round(p_wall, 3),
            "peer": round(e_wall, 3),
            "unit": "s",
            "ratio": round(e_wall / p_wall, 3),
            "target": None,
        },
    ]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subscriptions", type=int, default=10_000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--entities", type=int, default=None)
    a = p.parse_args()
    for row in main(a.subscriptions, a.months, a.entities):
        print(row)
