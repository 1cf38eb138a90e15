"""Rows the demo generator breaks on purpose, one contract rule each, so a demo run shows
quarantine at work."""

from __future__ import annotations

import numpy as np

from sync_core.demo.entities import COUNTRY_ISO3


def _bad_period(t, r):
    t["period_end"][r] = t["period_start"][r]  # period_start >= period_end


def _bad_currency(t, r):
    t["currency"][r] = "XXX"  # not an active ISO 4217 code


def _bad_usage(t, r):
    t["quantity"][r] = -1 - t["quantity"][r]  # negative usage


def _bad_country(t, r):
    t["country"][r] = COUNTRY_ISO3.get(t["country"][r], "ZZZ")  # 3-letter country


def _bad_settlement(t, r):
    t["out_of_band_amount"][r] += t["total"][r] + 1  # refund + balance + oob != total


def _bad_total(t, r):
    t["total"][r] += 1  # total != subtotal + tax


def _bad_interval(t, r):
    t["interval"][r] = "week"  # unknown billing interval


def _bad_credit_line(t, r):
    t["amount"][r] = -1 - t["amount"][r]  # negative credit note line


# in this order, cycling, so any count spreads over the objects; each breaks one rule of one row
CORRUPTIONS = (
    ("invoice_lines", _bad_period),
    ("payments", _bad_currency),
    ("usage_events", _bad_usage),
    ("customers", _bad_country),
    ("credit_notes", _bad_settlement),
    ("invoices", _bad_total),
    ("subscription_contracts", _bad_interval),
    ("credit_note_lines", _bad_credit_line),
)


def plan_bad_rows(rng: np.random.Generator, sizes: dict[str, int], count: int) -> dict:
    """Exactly ``count`` distinct rows to break: {object: [(breaker, row), ...]}."""
    plan = {name: [] for name in sizes}
    used = {name: np.zeros(sizes[name], dtype=bool) for name, _ in CORRUPTIONS}
    done, i, misses = 0, 0, 0
    while done < count:
        name, breaker = CORRUPTIONS[i % len(CORRUPTIONS)]
        i += 1
        free = np.flatnonzero(~used[name])
        if free.size == 0:
            misses += 1
            if misses == len(CORRUPTIONS):
                raise ValueError(f"not enough rows to break {count} of them")
            continue
        misses = 0
        row = int(free[rng.integers(free.size)])
        used[name][row] = True
        plan[name].append((breaker, row))
        done += 1
    return plan
