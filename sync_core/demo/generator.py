"""Seeded, deterministic demo subscription platform that writes the public file-drop folder.

``generate(out_dir)`` writes one ``<object>.csv`` per key of ``MODELS``: the model's columns in
declaration order without ``period`` (the reader derives it), UTF-8, header row, comma
separator, minimal quoting, ``\\n`` line ends. Timestamps are ISO 8601 UTC with a ``Z``
(seconds), booleans ``true``/``false``, null is an empty field, money is integer minor units and
``fx_rate`` is the functional-currency units per transaction-currency unit (at most 6
decimals, ``1`` for equal currencies). Rows are sorted by id, so the same arguments give
byte-identical files. Everything happens inside the calendar year ``year``; only service
periods (``period_end``) may reach into the next year.

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
- ``renew`` rows are annual renewals agreed during the year (up to 90 days before the term
  ends); the renewed term starts next year, so it is not invoiced here.
- ``entity_change`` moves a subscription to another legal entity at a period boundary: later
  invoices carry the new entity (the customer master stays with its original entity).
- The Stripe line-id trap: for about 1 % of subscriptions the subscription line's ``line_id``
  is the subscription id itself, repeated on every invoice of that subscription; ``line_key``
  (``invoice_id/line_id``) stays unique.
- A few ``failed`` payment attempts precede some successful payments.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
from pathlib import Path

import numpy as np

from sync_core.contracts.models import MODELS

HOUR = 3_600
DAY = 86_400
NULL_TS = np.iinfo(np.int64).min  # a null timestamp (NaT as datetime64)
_CHUNK = 250_000

# entity_id, name, functional currency, country, ERP subsidiary; index i bills in CURRENCIES[i]
ENTITIES = (
    ("US01", "Demo Cloud Inc.", "USD", "US", "1"),
    ("UK01", "Demo Cloud Ltd", "GBP", "GB", "2"),
    ("DE01", "Demo Cloud GmbH", "EUR", "DE", "3"),
)
ENTITY_SHARE = (0.5, 0.3, 0.2)
CURRENCIES = ("USD", "GBP", "EUR")
_ENT_IDS = np.array([e[0] for e in ENTITIES], dtype=object)
_CCY = np.array(CURRENCIES, dtype=object)
_USD_PER_UNIT_START = (1.0, 1.27, 1.08)

COUNTRIES = ("US", "CA", "GB", "IE", "DE", "FR", "NL", "AT")
_COUNTRY_ISO3 = ("USA", "CAN", "GBR", "IRL", "DEU", "FRA", "NLD", "AUT")
# exclusive tax in basis points by customer country: GB 20 % VAT, DE 19 % VAT, other EU reverse
# charge, exports 0 %; US 0 % except a subset of customers in 7 % sales-tax states
_TAX_BP = np.array([0, 0, 2000, 0, 1900, 0, 0, 0], dtype=np.int64)
_US_TAXABLE_BP = 700
_US_TAXABLE_SHARE = 0.3
# (country index, probability) for customers billed in their entity's currency, by entity ...
_HOME_COUNTRIES = (
    ((0, 0.95), (1, 0.05)),
    ((2, 0.9), (3, 0.1)),
    ((4, 0.75), (5, 0.1), (6, 0.1), (7, 0.05)),
)
# ... and for customers billed in a foreign currency, by that currency
_CURRENCY_COUNTRIES = (((0, 1.0),), ((2, 1.0),), ((4, 0.5), (5, 0.25), (6, 0.25)))
_SUFFIXES = (
    (", Inc.", " LLC"),
    (" Inc.", " Inc."),
    (" Ltd", " plc"),
    (" Ltd", " Ltd"),
    (" GmbH", " AG"),
    (" SAS", " SARL"),
    (" B.V.", " B.V."),
    (" GmbH", " GmbH"),
)
_NAME_A = (
    "Acme", "Blue", "Northwind", "Globex", "Initech", "Cedar", "Harbor", "Summit", "Quantum",
    "Pioneer", "Müller", "Öko", "Lumen", "Vertex", "Atlas", "Nimbus", "Falcon", "Orchid",
    "Granite", "Søren",
)  # fmt: skip
_NAME_B = (
    "Labs", "Systems", "Analytics", "Foods", "Logistics", "Studio", "Works", "Partners",
    "Digital", "Energy", "Bau", "Health", "Media", "Robotics", "Retail",
)  # fmt: skip

TIERS = ("starter", "team", "business", "scale")
_TIER_SHARE = (0.4, 0.3, 0.2, 0.1)
# monthly unit price in minor units [currency, tier]; neighbouring tiers differ by <= ~1.5x
_MONTHLY_PRICE = np.array(
    [[1200, 1800, 2700, 4000], [1000, 1500, 2200, 3300], [1100, 1650, 2450, 3650]],
    dtype=np.int64,
)
_ANNUAL_MONTHS = 10  # an annual price is ten monthly prices
METRIC = "api_calls"
USAGE_TIER_UNITS = 1000  # the first 1000 units of a period cost 2 minor units each, then 1
_USAGE_PRICE_1, _USAGE_PRICE_2 = 2, 1

_CHANGE_TYPES = np.array(["upgrade", "downgrade", "quantity_change"], dtype=object)
_CN_REASONS = np.array(
    [None, "duplicate", "order_change", "product_unsatisfactory", "fraudulent"], dtype=object
)

# shares of the whole population (subscriptions, invoices, credit notes)
_SHARE = {
    "foreign_currency": 0.10,
    "missing_erp_id": 0.03,
    "annual": 0.20,
    "metered": 0.15,
    "entity_change": 0.005,
    "change": 0.15,
    "cancel": 0.10,
    "renew": 0.03,
    "line_id_trap": 0.01,
    "void": 0.015,
    "uncollectible": 0.02,
    "overdue": 0.035,
    "credit_note": 0.04,
    "failed_attempt": 0.02,
    "void_credit_note": 0.02,
}


# ----------------------------------------------------------------------------- helpers


def _epoch(year: int) -> int:
    return int(np.datetime64(f"{year:04d}-01-01", "s").astype(np.int64))


def _add_months(ts: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Anchored month arithmetic on epoch seconds: same day of month and time of day, clamped
    to the month's last day (Jan 31 + 1 month = Feb 28, + 2 months = Mar 31), like Stripe."""
    days, tod = np.divmod(np.asarray(ts, dtype=np.int64), DAY)
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    m2 = m + np.asarray(months, dtype=np.int64)
    first = m2.astype("datetime64[D]")
    dim = ((m2 + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (first.astype(np.int64) + np.minimum(dom, dim - 1)) * DAY + tod


def _div_round(num, den) -> np.ndarray:
    """``num / den`` rounded half-even, exactly in integers (``den > 0``)."""
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    q, r = np.divmod(num, den)
    twice = 2 * r
    return q + ((twice > den) | ((twice == den) & (q % 2 == 1)))


def _between(rng: np.random.Generator, lo, hi, size: int | None = None) -> np.ndarray:
    """Uniform integers in ``[lo, hi)`` elementwise; rows with ``hi <= lo`` get ``lo``."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    shape = np.broadcast_shapes(lo.shape, hi.shape) if size is None else (size,)
    span = np.maximum(hi - lo, 1)
    return lo + np.minimum((rng.random(shape) * span).astype(np.int64), span - 1)


def _pick(
    rng: np.random.Generator, eligible: np.ndarray, share: float, total: int, minimum: int = 1
) -> np.ndarray:
    """Exactly ``max(minimum, round(share * total))`` eligible rows (fewer if not enough)."""
    idx = np.flatnonzero(eligible)
    k = min(idx.size, max(minimum, int(round(share * total))))
    out = np.zeros(eligible.shape[0], dtype=bool)
    out[rng.choice(idx, size=k, replace=False)] = True
    return out


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded ids; the width grows with the count so lexical order = numeric order."""
    width = max(width, len(str(int(numbers.max())))) if numbers.size else width
    return np.array([f"{prefix}{x:0{width}d}" for x in numbers.tolist()], dtype=object)


def _group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its run of equal (sorted) ``keys``."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(keys.size), 0))
    return np.arange(keys.size) - first


def _draw(u: np.ndarray, group: np.ndarray, tables) -> np.ndarray:
    """Categorical draw from uniforms ``u`` with a (value, probability) table per group."""
    out = np.zeros(u.size, dtype=np.int64)
    for g, table in enumerate(tables):
        m = group == g
        values = np.array([v for v, _ in table])
        cum = np.cumsum([p for _, p in table])
        out[m] = values[np.minimum(np.searchsorted(cum, u[m], side="right"), values.size - 1)]
    return out


@functools.cache
def _time_of_day() -> np.ndarray:
    return np.array(
        [f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)],
        dtype=object,
    )


def _iso(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds to ``YYYY-MM-DDTHH:MM:SSZ``; ``NULL_TS`` to an empty field."""
    out = np.full(ts.size, None, dtype=object)
    ok = ts != NULL_TS
    if ok.any():
        d, s = np.divmod(ts[ok], DAY)
        d0 = int(d.min())
        days = np.datetime_as_string(np.arange(d0, int(d.max()) + 1).astype("datetime64[D]"))
        out[ok] = days.astype(object)[d - d0] + _time_of_day()[s]
    return out


def _decimal(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _fx_table(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """``[functional, transaction, day]`` -> rate string (functional units per transaction unit).

    USD per GBP and USD per EUR follow a smoothed random walk (exponentially weighted daily
    shocks); cross rates derive from them, so the table is free of triangular arbitrage.
    """
    usd = np.ones((len(CURRENCIES), n_days))
    for c in (1, 2):
        shocks = rng.normal(0.0, 0.004, n_days)
        drift = np.empty(n_days)
        acc = 0.0
        for i, x in enumerate(shocks.tolist()):
            acc = 0.7 * acc + 0.3 * x
            drift[i] = acc
        usd[c] = _USD_PER_UNIT_START[c] * np.exp(np.cumsum(drift))
    table = np.empty((len(CURRENCIES), len(CURRENCIES), n_days), dtype=object)
    for f in range(len(CURRENCIES)):
        for t in range(len(CURRENCIES)):
            table[f, t] = "1" if f == t else [_decimal(x) for x in (usd[t] / usd[f]).tolist()]
    return table


def _tiered(quantity: np.ndarray) -> np.ndarray:
    first = np.minimum(quantity, USAGE_TIER_UNITS)
    return _USAGE_PRICE_1 * first + _USAGE_PRICE_2 * (quantity - first)


# ----------------------------------------------------------------------------- generator


def generate(
    out_dir: str | Path,
    *,
    subscriptions: int = 300,
    seed: int = 7,
    year: int = 2025,
    bad_rows: int = 5,
) -> dict[str, int]:
    """Write the file-drop folder; return {object_name: row_count}."""
    if subscriptions < 1:
        raise ValueError("subscriptions must be >= 1")
    if bad_rows < 0:
        raise ValueError("bad_rows must be >= 0")
    rng = np.random.default_rng(seed)
    platform = _Platform(rng, subscriptions, year)
    breaks = _plan_bad_rows(rng, platform.sizes(), bad_rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, model in MODELS.items():  # one table in memory at a time
        table = platform.table(name)
        if breaks.get(name):
            table = {c: v.copy() for c, v in table.items()}  # never edit the platform's arrays
        for breaker, row in breaks.get(name, ()):
            breaker(table, row)
        counts[name] = _write(out / f"{name}.csv", model, table)
    return counts


class _Platform:
    """The simulated platform: one pass per object, all vectorised over numpy arrays.

    Times are int64 epoch seconds. Per-subscription arrays have length ``n``, per-customer
    ``nc``, per-invoice ``N``; lines are kept in (invoice, position) order while building.
    """

    def __init__(self, rng: np.random.Generator, n: int, year: int):
        self.rng, self.n, self.year = rng, n, year
        self.y0, self.y1 = _epoch(year), _epoch(year + 1)
        self.fx = _fx_table(rng, (self.y1 - self.y0) // DAY)
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
        return self.fx[entity, currency, (ts - self.y0) // DAY]

    # -- customers: entity, currency, country, tax; created_at comes from their subscriptions
    def _customers(self) -> None:
        rng, nc = self.rng, max(1, int(round(0.8 * self.n)))
        self.nc = nc
        ent = rng.choice(len(ENTITIES), size=nc, p=ENTITY_SHARE)
        foreign = _pick(rng, np.ones(nc, dtype=bool), _SHARE["foreign_currency"], nc)
        cur = np.where(foreign, (ent + rng.integers(1, len(CURRENCIES), nc)) % len(CURRENCIES), ent)
        u = rng.random(nc)
        country = np.where(
            foreign, _draw(u, cur, _CURRENCY_COUNTRIES), _draw(u, ent, _HOME_COUNTRIES)
        )
        taxable_us = (country == 0) & (rng.random(nc) < _US_TAXABLE_SHARE)
        self.c_ent, self.c_cur, self.c_country = ent, cur, country
        self.c_tax_bp = np.where(taxable_us, _US_TAXABLE_BP, _TAX_BP[country])
        self.c_no_erp = _pick(rng, np.ones(nc, dtype=bool), _SHARE["missing_erp_id"], nc)
        self.c_no_email = rng.random(nc) < 0.05
        self.c_name = (
            rng.integers(0, len(_NAME_A), nc),
            rng.integers(0, len(_NAME_B), nc),
            rng.integers(0, 2, nc),
        )

    # -- subscriptions and their amendments
    def _subscriptions(self) -> None:
        rng, n, nc, y0, y1 = self.rng, self.n, self.nc, self.y0, self.y1
        n_days = (y1 - y0) // DAY
        owner = rng.permutation(np.concatenate([np.arange(nc), rng.integers(0, nc, n - nc)]))
        start = y0 + rng.integers(0, n_days, n) * DAY + rng.integers(0, 24, n) * HOUR
        order = np.argsort(start, kind="stable")
        owner, start = owner[order], start[order]
        annual = _pick(rng, np.ones(n, dtype=bool), _SHARE["annual"], n)
        tier0 = rng.choice(len(TIERS), size=n, p=_TIER_SHARE)
        qty0 = np.minimum(rng.geometric(0.2, n), 20)
        metered = _pick(rng, ~annual, _SHARE["metered"], n)
        ent0, cur = self.c_ent[owner], self.c_cur[owner]
        mult = np.where(annual, 12, 1)
        month0 = (start // DAY).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        periods = np.where(annual, 1, 12 - (month0 - (self.year - 1970) * 12))

        # entity change at the end of period j_ec (monthly plans without a metered item)
        ec = _pick(rng, ~annual & (periods >= 2) & ~metered, _SHARE["entity_change"], n, 3)
        j_ec = np.where(ec, _between(rng, 0, periods - 1), -1)
        ent1 = np.where(ec, (ent0 + rng.integers(1, len(ENTITIES), n)) % len(ENTITIES), ent0)

        # mid-term change inside period j_ch, prorated on invoice j_ch + 1
        ch = _pick(rng, ~annual & (periods >= 2) & ~ec, _SHARE["change"], n)
        j_ch = np.where(ch, _between(rng, 0, periods - 1), -1)
        jj = np.maximum(j_ch, 0)
        ch_ps, ch_pe = _add_months(start, jj), _add_months(start, jj + 1)
        t_ch = ch_ps + HOUR * _between(rng, 1, (ch_pe - ch_ps) // HOUR)
        kind = rng.integers(0, 3, n)  # 0 upgrade, 1 downgrade, 2 quantity change
        kind = np.where((kind == 0) & (tier0 == len(TIERS) - 1), 1, kind)
        kind = np.where((kind == 1) & (tier0 == 0), 0, kind)
        tier1 = np.where(ch, tier0 + (kind == 0) - (kind == 1), tier0)
        low = (2 * qty0 + 2) // 3  # a quantity decrease keeps at least 2/3 of the seats
        new_qty = low + _between(rng, 0, 20 - low)
        new_qty = new_qty + (new_qty >= qty0)
        qty1 = np.where(ch & (kind == 2), new_qty, qty0)

        # cancel at a period end or mid-term, after any other amendment
        k_min = np.where(ch, j_ch + 1, np.where(ec, j_ec + 1, 0))
        last_start = _add_months(start, (periods - 1) * mult)
        k_max_mid = np.where(y1 - last_start >= 2 * HOUR, periods - 1, periods - 2)
        end_ok = ~annual & (k_min <= periods - 2)
        mid_ok = k_min <= k_max_mid
        cancel = _pick(rng, end_ok | mid_ok, _SHARE["cancel"], n)
        at_end = np.where(end_ok & mid_ok, rng.random(n) < 0.5, end_ok)
        k_max = np.where(at_end, periods - 2, k_max_mid)
        k_c = k_min + _between(rng, 0, k_max - k_min + 1)
        c_ps, c_pe = _add_months(start, k_c * mult), _add_months(start, (k_c + 1) * mult)
        t_mid = c_ps + HOUR * _between(rng, 1, (np.minimum(c_pe, y1) - c_ps) // HOUR)
        t_cancel = np.where(at_end, c_pe, t_mid)
        n_inv = np.where(cancel, k_c + 1, periods)

        # annual renewals agreed during the year, up to 90 days before the term ends
        term_end = _add_months(start, 12)
        r_lo = np.maximum(start + DAY, term_end - 90 * DAY)
        r_hi = y1 - HOUR
        renew = _pick(rng, annual & ~cancel & (r_hi - r_lo >= HOUR), _SHARE["renew"], n)
        t_renew = r_lo + HOUR * _between(rng, 0, (r_hi - r_lo) // HOUR + 1)

        trap = _pick(rng, ~annual & (n_inv >= 2), _SHARE["line_id_trap"], n)
        self.lam = rng.uniform(3, 25, n)  # usage events per period
        self.mean_q = np.minimum(np.exp(rng.normal(np.log(40.0), 1.0, n)), 400.0)

        self.owner, self.start, self.annual, self.metered = owner, start, annual, metered
        self.tier0, self.qty0, self.tier1, self.qty1 = tier0, qty0, tier1, qty1
        self.ent0, self.cur, self.mult = ent0, cur, mult
        self.ec, self.j_ec, self.ent1 = ec, j_ec, ent1
        self.ch, self.j_ch, self.t_ch, self.ch_ps, self.ch_kind = ch, j_ch, t_ch, ch_ps, kind
        self.cancel, self.t_cancel, self.n_inv = cancel, t_cancel, n_inv
        self.renew, self.t_renew, self.trap = renew, t_renew, trap
        # a customer is created with its first subscription; customer ids follow that order
        _, first_sub = np.unique(owner, return_index=True)  # subscriptions are sorted by start
        self.c_created = start[first_sub]
        self.c_rows = np.lexsort((np.arange(nc), self.c_created))
        self.cust_ids = np.empty(nc, dtype=object)
        self.cust_ids[self.c_rows] = _ids("cus_", np.arange(1, nc + 1), 7)
        self.sub_ids = _ids("sub_", np.arange(1, n + 1), 7)
        self.item_ids = np.stack(
            [
                np.array([f"si_{s[4:]}_1" for s in self.sub_ids.tolist()], dtype=object),
                np.array([f"si_{s[4:]}_2" for s in self.sub_ids.tolist()], dtype=object),
            ]
        )

    def _unit(self, cur, tier, annual) -> np.ndarray:
        return _MONTHLY_PRICE[cur, tier] * np.where(annual, _ANNUAL_MONTHS, 1)

    # -- one invoice per billing period, finalized at the period start
    def _invoices(self) -> None:
        n_inv = self.n_inv
        sub = np.repeat(np.arange(self.n), n_inv)
        k = np.arange(sub.size) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
        fin = _add_months(self.start[sub], k * self.mult[sub])
        order = np.lexsort((sub, fin))
        sub, k, fin = sub[order], k[order], fin[order]
        self.i_sub, self.i_k, self.i_fin = sub, k, fin
        self.i_end = _add_months(self.start[sub], (k + 1) * self.mult[sub])
        self.i_ent = np.where(k > self.j_ec[sub], self.ent1[sub], self.ent0[sub])
        self.i_cur = self.cur[sub]
        self.N = sub.size
        self.inv_ids = _ids("in_", np.arange(1, self.N + 1), 8)

    # -- metered usage: events in billed periods and in the period still open at year end
    def _usage(self) -> None:
        rng, n = self.rng, self.n
        count = np.where(self.metered, np.where(self.cancel, self.n_inv - 1, self.n_inv), 0)
        sub = np.repeat(np.arange(n), count)
        self.pair_first = np.cumsum(count) - count
        k = np.arange(sub.size) - np.repeat(self.pair_first, count)
        ps = _add_months(self.start[sub], k)
        pe = np.minimum(_add_months(self.start[sub], k + 1), self.y1)
        n_events = rng.poisson(self.lam[sub])
        pair = np.repeat(np.arange(sub.size), n_events)
        ts = _between(rng, ps[pair], pe[pair])
        qty = rng.poisson(self.mean_q[sub[pair]])
        self.pair_qty = np.bincount(pair, weights=qty, minlength=sub.size).astype(np.int64)
        order = np.lexsort((pair, ts))
        self.e_sub, self.e_ts, self.e_qty = sub[pair][order], ts[order], qty[order]

    # -- invoice lines: prorations (positions 0, 1), subscription (2), usage (3)
    def _lines(self) -> None:
        s, k = self.i_sub, self.i_k
        inv = np.arange(self.N)
        tier = np.where(k > self.j_ch[s], self.tier1[s], self.tier0[s])
        qty = np.where(k > self.j_ch[s], self.qty1[s], self.qty0[s])
        parts = [
            dict(
                inv=inv,
                pos=np.full(self.N, 2),
                item=np.zeros(self.N, dtype=np.int64),
                type=np.zeros(self.N, dtype=np.int64),
                qty=qty,
                amount=self._unit(self.cur[s], tier, self.annual[s]) * qty,
                tier=tier,
                ps=self.i_fin,
                pe=self.i_end,
            )
        ]
        ip = np.flatnonzero(self.ch[s] & (k == self.j_ch[s] + 1))
        sp = s[ip]
        num, den = self.i_fin[ip] - self.t_ch[sp], self.i_fin[ip] - self.ch_ps[sp]
        for pos, t, q, sign in ((0, self.tier0, self.qty0, -1), (1, self.tier1, self.qty1, 1)):
            full = _MONTHLY_PRICE[self.cur[sp], t[sp]] * q[sp]
            parts.append(
                dict(
                    inv=ip,
                    pos=np.full(ip.size, pos),
                    item=np.zeros(ip.size, dtype=np.int64),
                    type=np.ones(ip.size, dtype=np.int64),
                    qty=q[sp],
                    amount=sign * _div_round(full * num, den),
                    tier=t[sp],
                    ps=self.t_ch[sp],
                    pe=self.i_fin[ip],
                )
            )
        iu = np.flatnonzero(self.metered[s] & (k >= 1))
        su = s[iu]
        uq = self.pair_qty[self.pair_first[su] + k[iu] - 1]
        parts.append(
            dict(
                inv=iu,
                pos=np.full(iu.size, 3),
                item=np.ones(iu.size, dtype=np.int64),
                type=np.full(iu.size, 2),
                qty=uq,
                amount=_tiered(uq),
                tier=np.full(iu.size, -1),
                ps=_add_months(self.start[su], k[iu] - 1),
                pe=self.i_fin[iu],
            )
        )
        cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        order = np.lexsort((cols["pos"], cols["inv"]))
        L = {c: v[order] for c, v in cols.items()}
        L["sub"] = s[L["inv"]]
        L["tax"] = _div_round(L["amount"] * self.c_tax_bp[self.owner[L["sub"]]], 10_000)
        line_id = _ids("il_", np.arange(1, L["inv"].size + 1), 9)
        trap = (L["pos"] == 2) & self.trap[L["sub"]]
        line_id[trap] = self.sub_ids[L["sub"][trap]]
        L["line_id"] = line_id
        L["key"] = self.inv_ids[L["inv"]] + "/" + line_id
        self.L = L
        first = np.searchsorted(L["inv"], inv)
        self.i_subtotal = np.add.reduceat(L["amount"], first)
        self.i_tax = np.add.reduceat(L["tax"], first)
        self.i_total = self.i_subtotal + self.i_tax
        self.i_sub_line = np.flatnonzero(L["pos"] == 2)
        self.i_usage_line = np.full(self.N, -1)
        self.i_usage_line[L["inv"][L["pos"] == 3]] = np.flatnonzero(L["pos"] == 3)
        self.i_prorated = np.zeros(self.N, dtype=bool)
        self.i_prorated[ip] = True

    # -- invoice status: void, uncollectible, open (overdue or paid after year end), paid
    def _statuses(self) -> None:
        rng, N, fin, y1 = self.rng, self.N, self.i_fin, self.y1
        void = _pick(rng, y1 - fin >= 2 * HOUR, _SHARE["void"], N)
        uncollectible = _pick(rng, ~void & (fin < y1 - 30 * DAY), _SHARE["uncollectible"], N)
        overdue = _pick(rng, ~void & ~uncollectible, _SHARE["overdue"], N)
        pay_t = _between(rng, fin + 2 * HOUR, fin + 7 * DAY)
        paid = ~void & ~uncollectible & ~overdue & (pay_t < y1)
        self.i_voided = np.where(
            void, _between(rng, fin + HOUR, np.minimum(fin + 10 * DAY, y1)), NULL_TS
        )
        self.i_status = np.select(
            [void, uncollectible, paid], ["void", "uncollectible", "paid"], "open"
        ).astype(object)
        self.i_void, self.i_paid, self.i_pay_t = void, paid, pay_t
        # written off 30 days after finalization (before the year ends, by the pick above)
        self.i_uncollectible = np.where(uncollectible, fin + 30 * DAY, NULL_TS)

    # -- credit notes: ~4 % of non-void invoices, at most one per invoice
    def _credit_notes(self) -> None:
        rng, y1 = self.rng, self.y1
        ci = np.flatnonzero(_pick(rng, ~self.i_void, _SHARE["credit_note"], self.N))
        m = ci.size
        fin, pay_t, paid = self.i_fin[ci], self.i_pay_t[ci], self.i_paid[ci]
        post = paid & (y1 - pay_t >= 2 * HOUR) & (rng.random(m) < 0.7)
        pre_hi = np.where(paid, pay_t, np.minimum(y1, fin + 30 * DAY))
        issued = np.where(
            post,
            _between(rng, pay_t + 1, np.minimum(y1, pay_t + 60 * DAY)),
            _between(rng, fin + 1, pre_hi),
        )
        # 0: lines pointing at invoice lines, 1: one pro-rata line without a key, 2: no lines
        mode = rng.choice(3, size=m, p=(0.6, 0.25, 0.15))
        mode = np.where((mode == 0) & self.i_prorated[ci], 1, mode)
        # share of the invoice credited, per mille: before payment at most 40 % so an amount
        # stays due; after payment up to all of it
        permille = np.where(
            post,
            np.where(rng.random(m) < 0.4, 1000, _between(rng, 100, 1000, m)),
            _between(rng, 100, 401, m),
        )
        L = self.L
        sl, ul = self.i_sub_line[ci], self.i_usage_line[ci]
        a1 = L["amount"][sl] * permille // 1000
        t1 = _div_round(L["tax"][sl] * a1, L["amount"][sl])
        ul_amount = np.where(ul >= 0, L["amount"][ul], 0)
        second = (mode == 0) & (ul_amount >= 100) & (rng.random(m) < 0.5)
        a2 = np.where(second, ul_amount * permille // 1000, 0)
        t2 = np.where(second, _div_round(L["tax"][ul] * a2, np.maximum(ul_amount, 1)), 0)
        a_pr = self.i_subtotal[ci] * permille // 1000
        t_pr = _div_round(self.i_tax[ci] * a_pr, self.i_subtotal[ci])
        subtotal = np.where(mode == 0, a1 + a2, a_pr)
        tax = np.where(mode == 0, t1 + t2, t_pr)
        total = subtotal + tax
        how = rng.choice(4, size=m, p=(0.5, 0.25, 0.15, 0.1))  # refund, balance, oob, split
        refund = np.where(post, np.select([how == 0, how == 3], [total, total // 2], 0), 0)
        balance = np.where(post, np.select([how == 1, how == 3], [total, total - total // 2], 0), 0)
        oob = np.where(post & (how == 2), total, 0)
        voidable = ((~post & ~paid) | (post & (refund == 0))) & (y1 - issued >= HOUR)
        void = _pick(rng, voidable, _SHARE["void_credit_note"], m, minimum=min(2, m))
        voided = np.where(
            void, _between(rng, issued + 1, np.minimum(y1, issued + 10 * DAY)), NULL_TS
        )
        reason = _CN_REASONS[rng.choice(_CN_REASONS.size, size=m, p=(0.3, 0.2, 0.2, 0.2, 0.1))]

        order = np.lexsort((ci, issued))
        self.CN = {
            "inv": ci[order],
            "post": post[order],
            "issued": issued[order],
            "voided": voided[order],
            "subtotal": subtotal[order],
            "tax": tax[order],
            "total": total[order],
            "refund": refund[order],
            "balance": balance[order],
            "oob": oob[order],
            "reason": reason[order],
            "ids": _ids("cn_", np.arange(1, m + 1), 7),
        }
        # lines: first line (modes 0 and 1), second line (mode 0 with a usage line)
        mode, second, sl, ul = mode[order], second[order], sl[order], ul[order]
        rank = np.arange(m)
        one = mode <= 1
        key1 = np.where(mode == 0, L["key"][sl], None)
        cols = {
            "cn": np.r_[rank[one], rank[second]],
            "pos": np.r_[np.zeros(one.sum(), dtype=np.int64), np.ones(second.sum(), np.int64)],
            "key": np.r_[key1[one], L["key"][ul[second]]],
            "amount": np.r_[np.where(mode == 0, a1[order], a_pr[order])[one], a2[order][second]],
            "tax": np.r_[np.where(mode == 0, t1[order], t_pr[order])[one], t2[order][second]],
        }
        o = np.lexsort((cols["pos"], cols["cn"]))
        self.CNL = {c: v[o] for c, v in cols.items()}
        # a live pre-payment credit note lowers the amount the customer pays
        live_pre = ~self.CN["post"] & (self.CN["voided"] == NULL_TS)
        self.i_credited = np.zeros(self.N, dtype=np.int64)
        self.i_credited[self.CN["inv"][live_pre]] = self.CN["total"][live_pre]

    # -- payments (and a few failed attempts before them), refunds of credit notes
    def _payments(self) -> None:
        rng = self.rng
        pi = np.flatnonzero(self.i_paid)
        fi = np.flatnonzero(_pick(rng, self.i_paid, _SHARE["failed_attempt"], self.N))
        t_fail = _between(rng, self.i_fin[fi] + 1, self.i_pay_t[fi])
        inv = np.r_[pi, fi]
        created = np.r_[self.i_pay_t[pi], t_fail]
        ok = np.r_[np.ones(pi.size, dtype=bool), np.zeros(fi.size, dtype=bool)]
        order = np.lexsort((inv, created))
        inv, created, ok = inv[order], created[order], ok[order]
        CN = self.CN
        rf = np.flatnonzero(CN["refund"] > 0)  # credit notes are sorted by issued_at already
        self.P = {
            "ids": np.r_[
                _ids("py_", np.arange(1, inv.size + 1), 8),
                _ids("re_", np.arange(1, rf.size + 1), 7),
            ],
            "refund": np.r_[np.zeros(inv.size, dtype=bool), np.ones(rf.size, dtype=bool)],
            "inv": np.r_[inv, CN["inv"][rf]],
            "cn": np.r_[np.full(inv.size, -1), rf],
            "amount": np.r_[self.i_total[inv] - self.i_credited[inv], CN["refund"][rf]],
            "created": np.r_[created, CN["issued"][rf]],
            "ok": np.r_[ok, np.ones(rf.size, dtype=bool)],
        }

    # ------------------------------------------------------------------------- tables

    def sizes(self) -> dict[str, int]:
        """Row count of every object, known before its table is formatted."""
        return {
            "legal_entities": len(ENTITIES),
            "customers": self.nc,
            "subscription_contracts": self.C["sub"].size,
            "usage_events": self.e_sub.size,
            "invoices": self.N,
            "invoice_lines": self.L["inv"].size,
            "credit_notes": self.CN["inv"].size,
            "credit_note_lines": self.CNL["cn"].size,
            "payments": self.P["inv"].size,
        }

    def table(self, name: str) -> dict[str, np.ndarray]:
        """The object's columns as arrays, rows sorted by id (timestamps as epoch seconds)."""
        return getattr(self, f"_{name}_table")()

    def _legal_entities_table(self) -> dict[str, np.ndarray]:
        return {
            "entity_id": _ENT_IDS.copy(),
            "name": np.array([e[1] for e in ENTITIES], dtype=object),
            "functional_currency": np.array([e[2] for e in ENTITIES], dtype=object),
            "country": np.array([e[3] for e in ENTITIES], dtype=object),
            "erp_subsidiary_id": np.array([e[4] for e in ENTITIES], dtype=object),
            "recognition_method": np.full(len(ENTITIES), "day", dtype=object),
        }

    def _customers_table(self) -> dict[str, np.ndarray]:
        rows, ids = self.c_rows, self.cust_ids[self.c_rows]
        created = self.c_created
        a, b, sfx = (x[rows] for x in self.c_name)
        country = self.c_country[rows]
        names = [
            f"{_NAME_A[i]} {_NAME_B[j]}{_SUFFIXES[c][s]}"
            for i, j, c, s in zip(a.tolist(), b.tolist(), country.tolist(), sfx.tolist())
        ]
        ent = self.c_ent[rows]
        erp = np.array(
            [f"C-{ENTITIES[e][0]}-{i:06d}" for i, e in enumerate(ent.tolist(), start=1)],
            dtype=object,
        )
        erp[self.c_no_erp[rows]] = None
        email = np.array([f"billing+{s[4:]}@example.com" for s in ids.tolist()], dtype=object)
        email[self.c_no_email[rows]] = None
        return {
            "entity_id": _ENT_IDS[ent],
            "customer_id": ids,
            "name": np.array(names, dtype=object),
            "email": email,
            "country": np.array(COUNTRIES, dtype=object)[country],
            "currency": _CCY[self.c_cur[rows]],
            "erp_customer_id": erp,
            "created_at": created[rows],
        }

    # -- contract rows per subscription item, versioned in time order
    def _contracts(self) -> None:
        n = self.n
        rows = []  # (sub, item, seq, type, t, tier, qty, entity)

        def add(mask, item, seq, kind, t, tier, qty, ent):
            idx = np.flatnonzero(mask)
            kind = kind[idx] if isinstance(kind, np.ndarray) else np.full(idx.size, kind, object)
            rows.append((idx, item, seq, kind, t[idx], tier[idx], qty[idx], ent[idx]))

        zero = np.zeros(n, dtype=np.int64)
        add(np.ones(n, dtype=bool), 0, 0, "new", self.start, self.tier0, self.qty0, self.ent0)
        add(self.metered, 1, 0, "new", self.start, zero, zero, self.ent0)
        add(self.ch, 0, 1, _CHANGE_TYPES[self.ch_kind], self.t_ch, self.tier1, self.qty1, self.ent0)
        ec_t = _add_months(self.start, self.j_ec + 1)
        add(self.ec, 0, 1, "entity_change", ec_t, self.tier0, self.qty0, self.ent1)
        add(self.renew, 0, 2, "renew", self.t_renew, self.tier0, self.qty0, self.ent0)
        add(self.cancel, 0, 3, "cancel", self.t_cancel, self.tier1, zero, self.ent1)
        add(self.cancel & self.metered, 1, 3, "cancel", self.t_cancel, zero, zero, self.ent1)
        sub, item, seq, kind, t, tier, qty, ent = (
            np.concatenate([np.broadcast_to(r[i], r[0].shape) for r in rows]) for i in range(8)
        )
        order = np.lexsort((seq, t, item, sub))
        self.C = dict(
            zip(
                ("sub", "item", "kind", "t", "tier", "qty", "ent"),
                (x[order] for x in (sub, item, kind, t, tier, qty, ent)),
            )
        )

    def _subscription_contracts_table(self) -> dict[str, np.ndarray]:
        sub, item, kind, t, tier, qty, ent = (
            self.C[c] for c in ("sub", "item", "kind", "t", "tier", "qty", "ent")
        )
        key = sub * 2 + item
        version = _group_rank(key) + 1
        metered = item == 1
        annual = self.annual[sub]
        cur = self.cur[sub]
        lower = [c.lower() for c in CURRENCIES]
        plan = np.array([f"plan_{t}" for t in TIERS] + ["plan_api_calls"], dtype=object)
        price = np.array(
            [
                [[f"price_{t}_{iv}_{c}" for iv in ("monthly", "annual")] for t in TIERS]
                for c in lower
            ]
            + [[[f"price_api_calls_tiered_{c}"] * 2] * len(TIERS) for c in lower],
            dtype=object,
        )  # [metered * 3 + currency, tier, annual]
        return {
            "entity_id": _ENT_IDS[ent],
            "contract_id": self.item_ids[item, sub],
            "version": version,
            "customer_id": self.cust_ids[self.owner[sub]],
            "amendment_type": kind.astype(object),
            "effective_at": t,
            "plan_id": plan[np.where(metered, len(TIERS), tier)],
            "price_id": price[metered * len(CURRENCIES) + cur, tier, annual.astype(np.int64)],
            "interval": np.where(annual, "year", "month").astype(object),
            "unit_amount": np.where(metered, _USAGE_PRICE_1, self._unit(cur, tier, annual)),
            "quantity": qty,
            "currency": _CCY[cur],
            "metered": metered,
        }

    def _usage_events_table(self) -> dict[str, np.ndarray]:
        s = self.e_sub
        return {
            "entity_id": _ENT_IDS[self.ent0[s]],
            "event_id": _ids("mev_", np.arange(1, s.size + 1), 9),
            "customer_id": self.cust_ids[self.owner[s]],
            "subscription_id": self.sub_ids[s],
            "subscription_item_id": self.item_ids[1, s],
            "metric": np.full(s.size, METRIC, dtype=object),
            "quantity": self.e_qty,
            "timestamp": self.e_ts,
        }

    def _invoices_table(self) -> dict[str, np.ndarray]:
        seq = np.zeros(self.N, dtype=np.int64)
        for e in range(len(ENTITIES)):
            m = self.i_ent == e
            seq[m] = np.arange(1, m.sum() + 1)
        number = np.array(
            [
                f"{ENTITIES[e][0]}-{self.year}-{q:06d}"
                for e, q in zip(self.i_ent.tolist(), seq.tolist())
            ],
            dtype=object,
        )
        return {
            "entity_id": _ENT_IDS[self.i_ent],
            "invoice_id": self.inv_ids,
            "number": number,
            "customer_id": self.cust_ids[self.owner[self.i_sub]],
            "subscription_id": self.sub_ids[self.i_sub],
            "currency": _CCY[self.i_cur],
            "status": self.i_status,
            "finalized_at": self.i_fin,
            "voided_at": self.i_voided,
            "subtotal": self.i_subtotal,
            "tax": self.i_tax,
            "total": self.i_total,
            "fx_rate": self._rate(self.i_ent, self.i_cur, self.i_fin),
            "uncollectible_at": self.i_uncollectible,
            "balance_applied": np.zeros(self.inv_ids.size, dtype=np.int64),  # none applied
        }

    def _invoice_lines_table(self) -> dict[str, np.ndarray]:
        L = self.L
        order = np.argsort(L["key"].astype(str), kind="stable")  # by line_key
        inv, sub = L["inv"][order], L["sub"][order]
        line_type = np.array(["subscription", "invoiceitem", "usage"], dtype=object)
        product = np.array([f"prod_{t}" for t in TIERS] + ["prod_api_calls"], dtype=object)
        tier = L["tier"][order]
        return {
            "entity_id": _ENT_IDS[self.i_ent[inv]],
            "line_key": L["key"][order],
            "line_id": L["line_id"][order],
            "invoice_id": self.inv_ids[inv],
            "subscription_id": self.sub_ids[sub],
            "subscription_item_id": self.item_ids[L["item"][order], sub],
            "product_id": product[np.where(tier < 0, len(TIERS), tier)],
            "line_type": line_type[L["type"][order]],
            "proration": L["type"][order] == 1,
            "quantity": L["qty"][order],
            "amount": L["amount"][order],
            "tax_amount": L["tax"][order],
            "tax_behavior": np.full(order.size, "exclusive", dtype=object),
            "currency": _CCY[self.i_cur[inv]],
            "period_start": L["ps"][order],
            "period_end": L["pe"][order],
        }

    def _credit_notes_table(self) -> dict[str, np.ndarray]:
        CN = self.CN
        inv = CN["inv"]
        return {
            "entity_id": _ENT_IDS[self.i_ent[inv]],
            "credit_note_id": CN["ids"],
            "invoice_id": self.inv_ids[inv],
            "customer_id": self.cust_ids[self.owner[self.i_sub[inv]]],
            "currency": _CCY[self.i_cur[inv]],
            "type": np.where(CN["post"], "post_payment", "pre_payment").astype(object),
            "status": np.where(CN["voided"] == NULL_TS, "issued", "void").astype(object),
            "issued_at": CN["issued"],
            "voided_at": CN["voided"],
            "subtotal": CN["subtotal"],
            "tax": CN["tax"],
            "total": CN["total"],
            "refund_amount": CN["refund"],
            "credit_balance_amount": CN["balance"],
            "out_of_band_amount": CN["oob"],
            "reason": CN["reason"],
        }

    def _credit_note_lines_table(self) -> dict[str, np.ndarray]:
        CNL = self.CNL
        inv = self.CN["inv"][CNL["cn"]]
        return {
            "entity_id": _ENT_IDS[self.i_ent[inv]],
            "credit_note_line_id": _ids("cnli_", np.arange(1, CNL["cn"].size + 1), 7),
            "credit_note_id": self.CN["ids"][CNL["cn"]],
            "invoice_line_key": CNL["key"],
            "amount": CNL["amount"],
            "tax_amount": CNL["tax"],
            "currency": _CCY[self.i_cur[inv]],
            "period_start": np.full(inv.size, NULL_TS, dtype=np.int64),  # not prospective
            "period_end": np.full(inv.size, NULL_TS, dtype=np.int64),
        }

    def _payments_table(self) -> dict[str, np.ndarray]:
        P = self.P
        inv = P["inv"]
        ent, cur = self.i_ent[inv], self.i_cur[inv]
        cn_ids = np.where(P["cn"] >= 0, self.CN["ids"][np.maximum(P["cn"], 0)], None)
        return {
            "entity_id": _ENT_IDS[ent],
            "payment_id": P["ids"],
            "kind": np.where(P["refund"], "refund", "payment").astype(object),
            "customer_id": self.cust_ids[self.owner[self.i_sub[inv]]],
            "invoice_id": self.inv_ids[inv],
            "credit_note_id": cn_ids.astype(object),
            "amount": P["amount"],
            "currency": _CCY[cur],
            "created_at": P["created"],
            "status": np.where(P["ok"], "succeeded", "failed").astype(object),
            "fx_rate": self._rate(ent, cur, P["created"]),
        }

    def _disputes_table(self) -> dict[str, np.ndarray]:
        """Chargebacks of one in 60 succeeded payments of paid invoices (no rng draw, so the
        other tables do not move): opened 10 days after the payment, closed 20 days later,
        alternately won and lost, with Stripe's 15.00 fee in the payment currency."""
        P = self.P
        ok = np.flatnonzero(P["ok"] & ~P["refund"] & self.i_paid[P["inv"]])
        pick = ok[::60]
        pick = pick[P["created"][pick] + 30 * DAY < self.y1]
        inv = P["inv"][pick]
        ent, cur = self.i_ent[inv], self.i_cur[inv]
        opened = P["created"][pick] + 10 * DAY
        fee = np.full(pick.size, 1500, dtype=np.int64)  # USD, GBP and EUR: two decimals
        return {
            "entity_id": _ENT_IDS[ent],
            "dispute_id": np.array([f"dp_{i:07d}" for i in range(pick.size)], dtype=object),
            "payment_id": P["ids"][pick],
            "invoice_id": self.inv_ids[inv],
            "customer_id": self.cust_ids[self.owner[self.i_sub[inv]]],
            "amount": P["amount"][pick],
            "currency": _CCY[cur],
            "fee": fee,
            "fee_currency": _CCY[cur],
            "status": np.where(np.arange(pick.size) % 2 == 0, "lost", "won").astype(object),
            "created_at": opened,
            "closed_at": opened + 20 * DAY,
            "fx_rate": self._rate(ent, cur, opened),
        }


# ----------------------------------------------------------------------------- bad rows

_ISO3 = dict(zip(COUNTRIES, _COUNTRY_ISO3))


def _bad_period(t, r):
    t["period_end"][r] = t["period_start"][r]  # period_start >= period_end


def _bad_currency(t, r):
    t["currency"][r] = "XXX"  # not an active ISO 4217 code


def _bad_usage(t, r):
    t["quantity"][r] = -1 - t["quantity"][r]  # negative usage


def _bad_country(t, r):
    t["country"][r] = _ISO3.get(t["country"][r], "ZZZ")  # 3-letter country


def _bad_settlement(t, r):
    t["out_of_band_amount"][r] += t["total"][r] + 1  # refund + balance + oob != total


def _bad_total(t, r):
    t["total"][r] += 1  # total != subtotal + tax


def _bad_interval(t, r):
    t["interval"][r] = "week"  # unknown billing interval


def _bad_credit_line(t, r):
    t["amount"][r] = -1 - t["amount"][r]  # negative credit note line


# in this order, cycling, so any count spreads over the objects; each breaks one rule of one row
_CORRUPTIONS = (
    ("invoice_lines", _bad_period),
    ("payments", _bad_currency),
    ("usage_events", _bad_usage),
    ("customers", _bad_country),
    ("credit_notes", _bad_settlement),
    ("invoices", _bad_total),
    ("subscription_contracts", _bad_interval),
    ("credit_note_lines", _bad_credit_line),
)


def _plan_bad_rows(rng: np.random.Generator, sizes: dict[str, int], count: int) -> dict:
    """Exactly ``count`` distinct rows to break: {object: [(breaker, row), ...]}."""
    plan = {name: [] for name in sizes}
    used = {name: np.zeros(sizes[name], dtype=bool) for name, _ in _CORRUPTIONS}
    done, i, misses = 0, 0, 0
    while done < count:
        name, breaker = _CORRUPTIONS[i % len(_CORRUPTIONS)]
        i += 1
        free = np.flatnonzero(~used[name])
        if free.size == 0:
            misses += 1
            if misses == len(_CORRUPTIONS):
                raise ValueError(f"not enough rows to break {count} of them")
            continue
        misses = 0
        row = int(free[rng.integers(free.size)])
        used[name][row] = True
        plan[name].append((breaker, row))
        done += 1
    return plan


# ----------------------------------------------------------------------------- writing


def _format(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype.startswith("datetime64"):
        return _iso(values)
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
    p.add_argument("out_dir", type=Path)
    p.add_argument("--subscriptions", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--bad-rows", type=int, default=5)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(
        a.out_dir, subscriptions=a.subscriptions, seed=a.seed, year=a.year, bad_rows=a.bad_rows
    )
    for name, rows in counts.items():
        print(f"{name:24s} {rows:>10,d}")
    print(f"written to {a.out_dir} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
