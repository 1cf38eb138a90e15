"""`billing-sync run|close|reopen|periods|replay|export`: the platform from the command line.

- ``run --source PATH``: run a file drop (a finance user's own case) through the chain;
- ``close ENTITY YYYY-MM --by NAME`` / ``reopen ENTITY YYYY-MM --by NAME --reason TEXT``: the
  period close and reopen of the ``period_close`` / ``period_reopen`` jobs
  (``sync_assets.close_jobs``, the same functions), refused with every reason, exit code 1;
- ``periods [ENTITY [YYYY-MM STATUS]]``: list the revenue close and the ERP periods, or set an
  ERP period's status (``sync_core.erp.periods``);
- ``replay ENTITY YYYY-MM``: retry the month's open posting exceptions (the ``posting_replay``
  job's assets, what the replay sensor requests, in process);
- ``export ledger|close-log|exceptions --out FILE.csv``: the ledger's journal lines, the
  period close log or the posting exception queue as CSV.

What ``run`` does with a drop:

Which partitions a drop touches (legal entity x month, ``YYYY-MM-01``):

- **ingest** partitions: the accounting period of every record (docs/data-contract.md,
  "Partitioning"): a customer's ``created_at`` month, an invoice's ``finalized_at`` month and
  its lines with it, a credit note's ``issued_at`` month, a payment's ``created_at``, ...;
- **derived** partitions (revenue, accounting lines, proposals, postings, reconciliation):
  the ingest partitions, plus the months an invoice line's service period
  ``[period_start, period_end)`` recognizes into, the void month of a credit note, the void
  month of an invoice and its service months from then on, the service months of the lines a
  credit note credits or a refund refunds (from its issue or refund month on), and, for a
  customer whose record changed, the months of that customer's documents and the service
  months of its invoices (its held journals, and the revenue held with them, post there).

Months after the current month, or before the first partition, cannot be materialized: they
are reported, never dropped silently. ``--entity`` and ``--from``/``--to`` narrow both lists.
A file that cannot be parsed is an error naming the file, line and field, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sync_core import filedrop
from sync_core.erp.periods import STATUSES, period_table, set_period_status
from sync_core.period_close_flow import PeriodCloseRefused, close_log

Partition = tuple[str, str]
_OBJECTS = list(filedrop.PERIOD_COLUMN) + list(filedrop.HEADER_OF)
EXPORTS = ("ledger", "close-log", "exceptions")


@dataclass
class DropPartitions:
    """The partitions a delivery touches, and the months it touches that cannot run."""

    entities: list[str]
    ingest: list[Partition]
    derived: list[Partition]
    outside: list[Partition] = field(default_factory=list)


def read_drop(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every partitioned object of a file drop, with its ``period`` (strict parsing)."""
    folder = Path(folder)
    raw = {name: filedrop.read_object(folder, name) for name in _OBJECTS}
    out = {}
    for name, df in raw.items():
        header = None
        if name in filedrop.HEADER_OF:
            hname = filedrop.HEADER_OF[name][0]
            header = filedrop.with_period(hname, raw[hname])
        out[name] = filedrop.with_period(name, df, header)
    out["legal_entities"] = filedrop.read_object(folder, "legal_entities")
    return out


def _month(ts) -> pd.Timestamp | None:
    if ts is None or pd.isna(ts):
        return None
    ts = pd.Timestamp(ts).tz_convert("UTC")
    return pd.Timestamp(year=ts.year, month=ts.month, day=1, tz="UTC")


def _service_months(start, end, floor=None) -> list[pd.Timestamp]:
    """Months of the half-open ``[start, end)``, from ``floor`` on."""
    first = _month(start)
    if first is None or end is None or pd.isna(end):
        return [first] if first is not None else []
    last = _month(pd.Timestamp(end) - pd.Timedelta(1, "ns"))
    if floor is not None:
        first = max(first, floor)
    return list(pd.date_range(first, max(first, last), freq="MS", tz="UTC"))


def _record_partitions(frames: dict[str, pd.DataFrame]) -> set[tuple[str, pd.Timestamp]]:
    out = set()
    for name in _OBJECTS:
        df = frames.get(name)
        if df is not None and len(df):
            ok = df["entity_id"].notna() & df["period"].notna()
            out |= set(zip(df.loc[ok, "entity_id"], df.loc[ok, "period"]))
    return out


def _credited(entity, lines: pd.DataFrame, floor) -> set[tuple[str, pd.Timestamp]]:
    """The service months of ``lines`` from ``floor`` on (and ``floor`` itself)."""
    out = {(entity, floor)}
    for ln in lines.itertuples(index=False):
        out |= {(entity, m) for m in _service_months(ln.period_start, ln.period_end, floor)}
    return out


def _derived_months(delivery, lookup) -> set[tuple[str, pd.Timestamp]]:
    """Months beyond the records' own periods that a delivery changes (module docstring)."""
    out: set[tuple[str, pd.Timestamp]] = set()
    lines = pd.concat([lookup["invoice_lines"], delivery["invoice_lines"]]).drop_duplicates(
        "line_key", keep="last"
    )
    for r in delivery["invoice_lines"].itertuples(index=False):
        out |= {(r.entity_id, m) for m in _service_months(r.period_start, r.period_end)}
    for r in delivery["invoices"].itertuples(index=False):  # a void stops what is still to come
        if (void := _month(r.voided_at)) is not None:
            out |= _credited(r.entity_id, lines[lines["invoice_id"] == r.invoice_id], void)
    for r in delivery["credit_notes"].itertuples(index=False):
        if (m := _month(r.voided_at)) is not None:
            out.add((r.entity_id, m))
    pays = delivery["payments"]
    for r in pays[pays["kind"] == "refund"].itertuples(index=False):  # refunds clear deferred
        if r.invoice_id is not None and not pd.isna(r.invoice_id):
            out |= _credited(r.entity_id, lines[lines["invoice_id"] == r.invoice_id], r.period)
    note_lines = pd.concat([lookup["credit_note_lines"], delivery["credit_note_lines"]])
    for r in delivery["credit_notes"].itertuples(index=False):
        named = note_lines.loc[note_lines["credit_note_id"] == r.credit_note_id, "invoice_line_key"]
        credited = lines[lines["line_key"].isin(named.dropna())]
        if named.isna().any() or not len(named):  # credits the invoice's lines pro rata
            credited = pd.concat([credited, lines[lines["invoice_id"] == r.invoice_id]])
        out |= _credited(r.entity_id, credited, _month(r.issued_at))
    changed = set(delivery["customers"]["customer_id"])
    for name in filedrop.PERIOD_COLUMN:  # a changed customer: the months of its documents
        docs = lookup[name]
        if name != "customers" and "customer_id" in docs and len(docs):
            docs = docs[docs["customer_id"].isin(changed) & docs["period"].notna()]
            out |= set(zip(docs["entity_id"], docs["period"]))
    billed = lookup["invoices"][lookup["invoices"]["customer_id"].isin(changed)]
    for ln in lines[lines["invoice_id"].isin(billed["invoice_id"])].itertuples(index=False):
        out |= {(ln.entity_id, m) for m in _service_months(ln.period_start, ln.period_end)}
    return out


def drop_partitions(
    delivery: dict[str, pd.DataFrame],
    lookup: dict[str, pd.DataFrame] | None = None,
    *,
    entity: str | None = None,
    start: str | None = None,
    end: str | None = None,
    first: str = "2025-01",
    now: pd.Timestamp | None = None,
) -> DropPartitions:
    """The ingest and derived partitions of ``delivery`` (see the module docstring).

    ``lookup`` is the whole source the delivery is part of (default: the delivery), used to
    find the invoice lines a credit note credits and a changed customer's documents.
    ``start``/``end`` are ``YYYY-MM`` and inclusive; ``now`` caps at its month.
    """
    lookup = delivery if lookup is None else lookup
    cap = _month(pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now))
    lo = pd.Timestamp(f"{max(first, start or first)}-01", tz="UTC")
    hi = min(cap, pd.Timestamp(f"{end}-01", tz="UTC")) if end else cap
    ingest = _record_partitions(delivery)
    derived = ingest | _derived_months(delivery, lookup)

    def keep(parts):
        return {(e, m) for e, m in parts if entity is None or e == entity}

    def fmt(parts):
        return sorted((e, f"{m:%Y-%m-%d}") for e, m in parts)

    ingest, derived = keep(ingest), keep(derived)
    unrunnable = {
        (e, m) for e, m in derived if m > cap or m < pd.Timestamp(f"{first}-01", tz="UTC")
    }
    inside = {(e, m) for e, m in derived if lo <= m <= hi}
    entities = set(lookup["legal_entities"]["entity_id"]) if "legal_entities" in lookup else set()
    entities |= {e for e, _ in inside}
    return DropPartitions(
        entities=sorted(e for e in entities if entity is None or e == entity),
        ingest=fmt(p for p in ingest if p in inside),
        derived=fmt(inside),
        outside=fmt(unrunnable),
    )


def _month_arg(text: str) -> str:
    try:
        return f"{pd.Timestamp(f'{text}-01'):%Y-%m}" if len(text) == 7 else _bad_month(text)
    except ValueError:
        return _bad_month(text)


def _bad_month(text: str):
    raise argparse.ArgumentTypeError(f"expected a month as YYYY-MM, got {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="billing-sync", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize the partitions a file drop touches")
    run.add_argument("--source", required=True, type=Path, help="file-drop folder")
    run.add_argument("--entity", help="only this legal entity")
    run.add_argument("--from", dest="start", type=_month_arg, help="first month, YYYY-MM")
    run.add_argument("--to", dest="end", type=_month_arg, help="last month, YYYY-MM")
    run.add_argument("--quiet", action="store_true", help="no per-partition progress lines")
    close = sub.add_parser("close", help="close a month: revenue and ERP period, audited")
    reopen = sub.add_parser("reopen", help="reopen the last closed month (reason required)")
    replay = sub.add_parser("replay", help="retry a month's open posting exceptions")
    for cmd in (close, reopen, replay):
        cmd.add_argument("entity")
        cmd.add_argument("period", type=_month_arg, help="YYYY-MM")
    for cmd in (close, reopen):
        cmd.add_argument("--by", default=os.getenv("USER"), help="who (default: $USER)")
    reopen.add_argument("--reason", required=True, help="why the month reopens (recorded)")
    periods = sub.add_parser("periods", help="list closes and ERP periods, or set one's status")
    periods.add_argument("entity", nargs="?")
    periods.add_argument("period", nargs="?", type=_month_arg, help="YYYY-MM (to set)")
    periods.add_argument("status", nargs="?", choices=STATUSES)
    export = sub.add_parser("export", help="write the ledger, close log or queue to CSV")
    export.add_argument("what", choices=EXPORTS)
    export.add_argument("--out", required=True, type=Path, help="CSV file to write")
    export.add_argument("--entity", help="only this legal entity")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"close": close, "reopen": reopen, "periods": periods, "replay": replay,
                "export": export}  # fmt: skip
    if args.command in commands:
        return commands[args.command](args)
    if not args.source.is_dir():
        print(f"billing-sync: source folder {args.source} does not exist", file=sys.stderr)
        return 2
    try:
        drop = read_drop(args.source)
    except filedrop.FileDropParseError as exc:
        print(f"billing-sync: cannot read the file drop: {exc}", file=sys.stderr)
        return 2
    if "legal_entities" in drop and not len(drop["legal_entities"]):
        print(f"billing-sync: {args.source} has no legal_entities file", file=sys.stderr)
        return 2
    # the configured source for this run is the drop (README, "Settings")
    os.environ["SYNC_SOURCE_KIND"] = "file_drop"
    os.environ["SYNC_SOURCE_PATH"] = str(args.source.resolve())
    from sync_assets.partitions import FIRST_PERIOD

    parts = drop_partitions(
        drop, entity=args.entity, start=args.start, end=args.end, first=FIRST_PERIOD[:7]
    )
    return run(parts, quiet=args.quiet)


def run(parts: DropPartitions, quiet: bool = False, trigger: str = "billing-sync") -> int:
    """Materialize ``parts`` on the configured instance and warehouse and print the summary."""
    from sync_assets import runner
    from sync_assets.definitions import build_resources

    say = (lambda _: None) if quiet else (lambda m: print(m, flush=True))
    for e, p in parts.outside:
        print(f"not run: {e} {p[:7]} is outside the partitions (2025-01 to the current month)")
    if not parts.derived:
        print("billing-sync: the drop touches no partition in the selected range", file=sys.stderr)
        return 1
    resources = build_resources()
    instance = runner.instance()
    try:
        runner.materialize(instance, resources, ["legal_entities"], trigger=trigger)
        if new := runner.add_entities(instance, parts.entities):
            print(f"new legal entities added as partitions: {', '.join(new)}")
        took = runner.run_stages(
            instance, resources, parts.ingest, parts.derived, trigger=trigger, say=say
        )
    except Exception as exc:  # noqa: BLE001 - a failed step: its error, not a traceback
        cause = getattr(exc, "user_exception", None) or exc
        print(f"billing-sync: run failed: {type(cause).__name__}: {cause}", file=sys.stderr)
        return 1
    print(
        f"materialized {len(parts.ingest)} ingest and {len(parts.derived)} derived partitions "
        f"in {took:.1f}s\n"
    )
    runner.print_summary(resources, parts.derived, parts.entities)
    return 0


def _configured():
    """The configured instance and resources (what the code location uses)."""
    from sync_assets import runner
    from sync_assets.definitions import build_resources

    return runner.instance(), build_resources()


def _stores():
    """The configured warehouse and ERP resource, their settings read."""
    resources = _configured()[1]
    return (resources["warehouse"].process_config_and_initialize().get(),
            resources["erp"].process_config_and_initialize())  # fmt: skip


def _refused(exc: Exception) -> int:
    print(f"billing-sync: {exc}", file=sys.stderr)
    return 1


def _done(record) -> int:
    extra = f" ({record.reason})" if record.reason else ""
    print(f"{record.entity_id} {record.period} {record.action} by {record.by}{extra} at "
          f"{record.at:%Y-%m-%d %H:%M:%S} UTC: revenue closed through "
          f"{record.revenue_closed_through}, ERP period {record.erp_status}")  # fmt: skip
    return 0


def close(args) -> int:
    """``billing-sync close``: ``close_jobs.close_month``, what the ``period_close`` job runs."""
    from sync_assets.close_jobs import close_month

    try:
        return _done(close_month(*_configured(), args.entity, args.period, args.by))
    except (PeriodCloseRefused, ValueError) as exc:
        return _refused(exc)


def reopen(args) -> int:
    """``billing-sync reopen``: ``close_jobs.reopen_month``, what ``period_reopen`` runs."""
    from sync_assets.close_jobs import reopen_month

    resources = _configured()[1]
    try:
        return _done(reopen_month(resources, args.entity, args.period, args.by, args.reason))
    except (PeriodCloseRefused, ValueError) as exc:
        return _refused(exc)


def periods(args) -> int:
    """``billing-sync periods``: list, or set one ERP period's status."""
    wh, erp = _stores()
    ledger = erp.engine()
    if args.status:
        set_period_status(ledger, args.entity, f"{args.period}-01", args.status)
        print(f"{args.entity} {args.period}: ERP period {args.status}")
        return 0
    if args.period:
        print("billing-sync: periods ENTITY YYYY-MM needs a STATUS to set", file=sys.stderr)
        return 2
    closes = {e: f"{t:%Y-%m}" for e, t in wh.closed_through().items()}
    erp = period_table(ledger)
    entities = sorted({e for e in closes} | {e for e, _ in erp})
    for entity in [args.entity] if args.entity else entities:
        months = ", ".join(f"{p:%Y-%m} {s}" for (e, p), s in erp.items() if e == entity)
        print(f"{entity}: revenue closed through {closes.get(entity, '-')}; "
              f"ERP periods: {months or 'all open'}")  # fmt: skip
    return 0


def replay(args) -> int:
    """``billing-sync replay``: ``close_jobs.replay_month`` (the ``posting_replay`` job's
    assets for the month, in process, when it has open posting exceptions)."""
    from sync_assets.close_jobs import replay_month

    try:
        before, after = replay_month(*_configured(), args.entity, args.period)
    except RuntimeError as exc:
        return _refused(exc)
    print(f"{args.entity} {args.period}: {before} open posting exceptions replayed, "
          f"{before - after} posted, {after} still open")  # fmt: skip
    return 0


def export(args) -> int:
    """``billing-sync export``: one table as CSV (``--entity`` keeps one legal entity)."""
    wh, erp = _stores()
    if args.what == "ledger":
        heads = erp.ledger().journals()
        lines = erp.ledger().lines(list(heads["external_id"]))
        df = lines.merge(heads, on="external_id", how="left", suffixes=("", "_journal"))
    elif args.what == "close-log":
        df = close_log(wh)
    else:
        df = erp.queue().all()
    if args.entity and "entity_id" in df:
        df = df[df["entity_id"] == args.entity]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {len(df)} rows of {args.what} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
