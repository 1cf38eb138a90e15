"""Seeded, deterministic demo subscription platform that writes the public file-drop folder.

``generate(folder, subscriptions)`` writes one ``<object>.csv`` per key of ``MODELS``: the
model's columns in declaration order without ``period`` (the reader derives it), UTF-8, header
row, comma separator, minimal quoting, ``\\n`` line ends. Timestamps are ISO 8601 UTC with a
``Z`` (seconds), booleans ``true``/``false``, null is an empty field, money is integer minor
units (JPY has none: its amounts are whole yen) and ``fx_rate`` is the functional-currency
units per transaction-currency unit (at most 6 decimals, ``1`` for equal currencies). Rows are
sorted by id, so the same arguments give byte-identical files.

The range is ``months`` accounting months from January of ``year`` (12: that calendar year);
everything happens inside it, only service periods (``period_end``) may reach past its end.
``entities`` legal entities (1 to 20, ``entities.ENTITY_TABLE``) share the customers; the
first three are US01, UK01 and DE01. Up to 12 months the platform is in its first year
(subscriptions start evenly through the range and volume grows month by month); a longer
range is a steady book whose last months look like its early ones in volume (``book.py``).
The default call (3 entities, 12 months) writes what the generator always wrote.

Modelling choices worth knowing when reading the data
- A subscription has a licensed item ``si_<n>_1`` and, when metered, a usage item
  ``si_<n>_2``. ``subscription_contracts`` are versioned per subscription item (``contract_id``
  is the item id), so the metered price has its own contract rows (``metered`` true, quantity
  0, ``unit_amount`` the first-tier unit price). Invoice lines and usage events carry the same
  item id.
- Metered items and mid-term plan changes exist on monthly plans only. A change
  (upgrade/downgrade/quantity_change) is billed as two proration lines on the next invoice.
  Downgrades step at most 1.5x down so no invoice goes negative.
- ``cancel`` rows carry quantity 0 and ``effective_at`` is when the cancellation takes effect
  (a period end, or mid-term); a mid-term cancel is not prorated.
- Annual terms renew by themselves: an annual subscription is invoiced at the start of every
  term in the range. ``renew`` rows are renewals agreed up to 90 days before the first term
  ends (in a one-year range the renewed term starts next year, so it is not invoiced here).
- ``entity_change`` moves a subscription to another legal entity at a period boundary: later
  invoices carry the new entity (the customer master stays with its original entity).
- The Stripe line-id trap: for about 1 % of subscriptions the subscription line's ``line_id``
  is the subscription id itself, repeated on every invoice of that subscription; ``line_key``
  (``invoice_id/line_id``) stays unique.
- A few ``failed`` payment attempts precede some successful payments.
- Invoice numbers are ``<entity>-<year>-<sequence>``, a sequence per entity and year.

Modules: ``entities`` (legal entities, currencies, countries), ``params`` (plans, shares,
churn), ``book`` (customers, subscriptions), ``billing`` (invoices, lines, usage, statuses),
``settlement`` (credit notes, payments, contracts), ``tables`` (the file-drop tables),
``bad_rows`` (rows broken on purpose), ``arrays`` (vectorised helpers).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from sync_core.contracts.models import MODELS
from sync_core.demo.arrays import DAY, decimal, iso, month_epoch
from sync_core.demo.bad_rows import plan_bad_rows
from sync_core.demo.billing import Billing
from sync_core.demo.book import Book
from sync_core.demo.entities import DEFAULT_ENTITIES, ENTITY_TABLE, MAX_ENTITIES, Setup, setup
from sync_core.demo.params import METRIC, STEADY_AFTER_MONTHS, TIERS, USAGE_TIER_UNITS
from sync_core.demo.params import USAGE_PRICE_2 as _USAGE_PRICE_2  # noqa: F401 - sandboxes
from sync_core.demo.settlement import Settlement
from sync_core.demo.tables import Tables

__all__ = ["ENTITIES", "METRIC", "TIERS", "USAGE_TIER_UNITS", "generate", "main"]

# the default demo's legal entities: entity_id, name, functional currency, country, subsidiary
ENTITIES = tuple(e[:5] for e in ENTITY_TABLE[:DEFAULT_ENTITIES])
MAX_MONTHS = 120
_CHUNK = 100_000


def generate(
    folder: str | Path,
    subscriptions: int = 300,
    seed: int = 7,
    year: int = 2025,
    months: int = 12,
    entities: int = DEFAULT_ENTITIES,
    *,
    bad_rows: int = 5,
) -> dict[str, int]:
    """Write the file-drop folder; return {object_name: row_count}.

    ``months`` accounting months of history from January of ``year``; ``entities`` legal
    entities (1 to 20, the first three US01, UK01, DE01); ``bad_rows`` rows that each break
    one contract rule.
    """
    if subscriptions < 1:
        raise ValueError("subscriptions must be >= 1")
    if bad_rows < 0:
        raise ValueError("bad_rows must be >= 0")
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}, got {months}")
    if not 1 <= entities <= MAX_ENTITIES:
        raise ValueError(f"entities must be between 1 and {MAX_ENTITIES}, got {entities}")
    rng = np.random.default_rng(seed)
    platform = _Platform(rng, subscriptions, year, months, setup(entities))
    breaks = plan_bad_rows(rng, platform.sizes(), bad_rows)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, model in MODELS.items():  # one table in memory at a time
        table = platform.table(name)
        if breaks.get(name):
            table = {c: v.copy() for c, v in table.items()}  # never edit the platform's arrays
        for breaker, row in breaks.get(name, ()):
            breaker(table, row)
        counts[name] = _write(out / f"{name}.csv", model, table)
        del table
    return counts


class _Platform(Book, Billing, Settlement, Tables):
    """The simulated platform: one pass per object, all vectorised over numpy arrays.

    Times are int64 epoch seconds in ``[t0, t1)``, the range. Per-subscription arrays have
    length ``n``, per-customer ``nc``, per-invoice ``N``; lines are kept in (invoice, position)
    order while building. Entities index ``E`` (``entities.Setup``), currencies
    ``E.currencies``.
    """

    def __init__(self, rng: np.random.Generator, n: int, year: int, months: int, E: Setup):
        self.rng, self.n, self.year, self.months, self.E = rng, n, year, months, E
        self.steady = months > STEADY_AFTER_MONTHS
        self.t0, self.t1 = month_epoch(year), month_epoch(year, months)
        self.fx = _fx_table(rng, E, (self.t1 - self.t0) // DAY)
        self._customers()
        self._subscriptions()
        self._invoices()
        self._usage()
        self._lines()
        self._statuses()
        self._credit_notes()
        self._payments()
        self._contracts()

    def _rate(self, entity: np.ndarray, currency: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return self.fx[self.E.currency[entity], currency, (ts - self.t0) // DAY]


def _fx_table(rng: np.random.Generator, E: Setup, n_days: int) -> np.ndarray:
    """``[functional, transaction, day]`` -> rate string (functional units per transaction unit).

    USD per unit of every other currency follows a smoothed random walk (exponentially
    weighted daily shocks); cross rates derive from them, so the table is free of triangular
    arbitrage.
    """
    k = len(E.currencies)
    usd = np.ones((k, n_days))
    for c in range(1, k):
        shocks = rng.normal(0.0, 0.004, n_days)
        drift = np.empty(n_days)
        acc = 0.0
        for i, x in enumerate(shocks.tolist()):
            acc = 0.7 * acc + 0.3 * x
            drift[i] = acc
        usd[c] = E.usd_start[c] * np.exp(np.cumsum(drift))
    table = np.empty((k, k, n_days), dtype=object)
    for f in range(k):
        for t in range(k):
            table[f, t] = "1" if f == t else [decimal(x) for x in (usd[t] / usd[f]).tolist()]
    return table


# ----------------------------------------------------------------------------- writing


def _format(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype.startswith("datetime64"):
        return iso(values)
    if dtype in ("bool", "boolean"):
        return np.where(values, "true", "false").astype(object)
    return values


def _write(path: Path, model, table: dict[str, np.ndarray]) -> int:
    """Write ``table`` (columns as arrays, rows already sorted by id) as the file-drop CSV."""
    schema = model.to_schema()
    columns = [c for c in schema.columns if c != "period"]
    if set(columns) != set(table):
        raise ValueError(f"{path.name}: columns {sorted(table)} do not match {columns}")
    dtypes = {c: str(schema.columns[c].dtype) for c in columns}
    rows = len(table[columns[0]])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")  # RFC 4180 minimal quoting, None -> empty
        out.writerow(columns)
        for lo in range(0, rows, _CHUNK):
            part = [_format(table[c][lo : lo + _CHUNK], dtypes[c]).tolist() for c in columns]
            out.writerows(zip(*part))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the demo platform's file-drop folder.")
    p.add_argument("folder", type=Path)
    p.add_argument("--subscriptions", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--months", type=int, default=12, help="months of history from January")
    p.add_argument("--entities", type=int, default=DEFAULT_ENTITIES, help="legal entities")
    p.add_argument("--bad-rows", type=int, default=5)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(
        a.folder, a.subscriptions, a.seed, a.year, a.months, a.entities, bad_rows=a.bad_rows
    )
    for name, rows in counts.items():
        print(f"{name:24s} {rows:>10,d}")
    print(f"written to {a.folder} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
