"""The demo platform's customers and subscriptions: who buys what, where, from which legal
entity, and how each subscription changes and ends (``_Platform`` mixin, see generator.py).

Two books: the first year of a platform launched in January (``months`` up to 12: starts
spread evenly over the range, ``SHARE["cancel"]`` of the subscriptions cancelled), and a
steady book for a longer history (``params.CHURN``): the volume of month 24 is the volume of
month 6.
"""

from __future__ import annotations

import numpy as np

from sync_core.demo.arrays import (
    DAY,
    HOUR,
    add_months,
    between,
    draw,
    ids,
    month_epoch,
    month_index,
    pick,
)
from sync_core.demo.entities import (
    FOREIGN,
    FOREIGN_COUNTRIES,
    NAME_A,
    NAME_B,
    TAX_BP,
    US_TAXABLE_BP,
    US_TAXABLE_SHARE,
)
from sync_core.demo.params import CHURN, SHARE, TIER_SHARE, TIERS

# a customer whose entity bills outside USD, GBP and EUR is billed in USD or EUR when foreign
_OTHER_FOREIGN = np.array([FOREIGN.index("USD"), FOREIGN.index("EUR")])


class Book:
    # -- customers: entity, currency, country, tax; created_at comes from their subscriptions
    def _customers(self) -> None:
        rng, nc, E = self.rng, max(1, int(round(0.8 * self.n))), self.E
        self.nc = nc
        ent = rng.choice(E.n, size=nc, p=E.share)
        foreign = pick(rng, np.ones(nc, dtype=bool), SHARE["foreign_currency"], nc)
        home = E.currency[ent]
        r = rng.integers(1, len(FOREIGN), nc)
        other = np.where(home < len(FOREIGN), (home + r) % len(FOREIGN), _OTHER_FOREIGN[r - 1])
        cur = np.where(foreign, other, home)
        u = rng.random(nc)
        country = np.where(foreign, draw(u, cur, FOREIGN_COUNTRIES), draw(u, ent, E.home))
        taxable_us = (country == 0) & (rng.random(nc) < US_TAXABLE_SHARE)
        seller_bp = np.where(country == E.country[ent], E.domestic_bp[ent], TAX_BP[country])
        self.c_ent, self.c_cur, self.c_country = ent, cur, country
        self.c_tax_bp = np.where(taxable_us, US_TAXABLE_BP, seller_bp)
        self.c_no_erp = pick(rng, np.ones(nc, dtype=bool), SHARE["missing_erp_id"], nc)
        self.c_no_email = rng.random(nc) < 0.05
        self.c_name = (
            rng.integers(0, len(NAME_A), nc),
            rng.integers(0, len(NAME_B), nc),
            rng.integers(0, 2, nc),
        )

    def _steady_starts(self, annual: np.ndarray) -> np.ndarray:
        """Starts of a steady book: the running book in the first month (annual terms spread
        over the first year), the new subscriptions evenly over the whole range."""
        rng, n, t0 = self.rng, self.n, self.t0
        opening = rng.random(n) < 1.0 / (1.0 + CHURN * self.months)
        first_month = (month_epoch(self.year, 1) - t0) // DAY
        first_year = (month_epoch(self.year, min(12, self.months)) - t0) // DAY
        days = np.where(opening, np.where(annual, first_year, first_month), (self.t1 - t0) // DAY)
        return t0 + between(rng, 0, days) * DAY + rng.integers(0, 24, n) * HOUR

    # -- subscriptions and their amendments
    def _subscriptions(self) -> None:
        rng, n, nc, t0, t1 = self.rng, self.n, self.nc, self.t0, self.t1
        owner = rng.permutation(np.concatenate([np.arange(nc), rng.integers(0, nc, n - nc)]))
        if self.steady:
            annual = pick(rng, np.ones(n, dtype=bool), SHARE["annual"], n)
            start = self._steady_starts(annual)
            order = np.argsort(start, kind="stable")
            owner, start, annual = owner[order], start[order], annual[order]
        else:
            n_days = (t1 - t0) // DAY
            start = t0 + rng.integers(0, n_days, n) * DAY + rng.integers(0, 24, n) * HOUR
            order = np.argsort(start, kind="stable")
            owner, start = owner[order], start[order]
            annual = pick(rng, np.ones(n, dtype=bool), SHARE["annual"], n)
        tier0 = rng.choice(len(TIERS), size=n, p=TIER_SHARE)
        qty0 = np.minimum(rng.geometric(0.2, n), 20)
        metered = pick(rng, ~annual, SHARE["metered"], n)
        ent0, cur = self.c_ent[owner], self.c_cur[owner]
        mult = np.where(annual, 12, 1)
        left = self.months - (month_index(start) - month_index(t0))  # months from the start
        periods = np.where(annual, (left + 11) // 12, left)  # billing periods in the range
        if self.steady:  # the number of periods billed before it ends (maybe after the range)
            life = rng.geometric(np.where(annual, 1 - (1 - CHURN) ** 12, CHURN))
            live = np.minimum(periods, life)
        else:
            life = live = periods

        # entity change at the end of period j_ec (monthly plans without a metered item)
        if self.E.n > 1:
            movable = ~annual & (live >= 2) & ~metered
            ec = pick(rng, movable, SHARE["entity_change"], n, 3)
            j_ec = np.where(ec, between(rng, 0, live - 1), -1)
            ent1 = np.where(ec, (ent0 + rng.integers(1, self.E.n, n)) % self.E.n, ent0)
        else:
            ec, j_ec, ent1 = np.zeros(n, dtype=bool), np.full(n, -1), ent0

        # mid-term change inside period j_ch, prorated on invoice j_ch + 1
        ch = pick(rng, ~annual & (live >= 2) & ~ec, SHARE["change"], n)
        j_ch = np.where(ch, between(rng, 0, live - 1), -1)
        jj = np.maximum(j_ch, 0)
        ch_ps, ch_pe = add_months(start, jj), add_months(start, jj + 1)
        t_ch = ch_ps + HOUR * between(rng, 1, (ch_pe - ch_ps) // HOUR)
        kind = rng.integers(0, 3, n)  # 0 upgrade, 1 downgrade, 2 quantity change
        kind = np.where((kind == 0) & (tier0 == len(TIERS) - 1), 1, kind)
        kind = np.where((kind == 1) & (tier0 == 0), 0, kind)
        tier1 = np.where(ch, tier0 + (kind == 0) - (kind == 1), tier0)
        low = (2 * qty0 + 2) // 3  # a quantity decrease keeps at least 2/3 of the seats
        new_qty = low + between(rng, 0, 20 - low)
        new_qty = new_qty + (new_qty >= qty0)
        qty1 = np.where(ch & (kind == 2), new_qty, qty0)

        # cancel at a period end or mid-term, after any other amendment
        if self.steady:  # ends after `life` periods, at the period end or during the last
            cancel = life < periods
            at_end = rng.random(n) < 0.5
            k_c = life - 1
        else:
            k_min = np.where(ch, j_ch + 1, np.where(ec, j_ec + 1, 0))
            last_start = add_months(start, (periods - 1) * mult)
            k_max_mid = np.where(t1 - last_start >= 2 * HOUR, periods - 1, periods - 2)
            end_ok = ~annual & (k_min <= periods - 2)
            mid_ok = k_min <= k_max_mid
            cancel = pick(rng, end_ok | mid_ok, SHARE["cancel"], n)
            at_end = np.where(end_ok & mid_ok, rng.random(n) < 0.5, end_ok)
            k_max = np.where(at_end, periods - 2, k_max_mid)
            k_c = k_min + between(rng, 0, k_max - k_min + 1)
        c_ps, c_pe = add_months(start, k_c * mult), add_months(start, (k_c + 1) * mult)
        t_mid = c_ps + HOUR * between(rng, 1, (np.minimum(c_pe, t1) - c_ps) // HOUR)
        t_cancel = np.where(at_end, c_pe, t_mid)
        n_inv = np.where(cancel, k_c + 1, periods)

        # annual renewals agreed up to 90 days before the first term ends
        term_end = add_months(start, 12)
        r_lo = np.maximum(start + DAY, term_end - 90 * DAY)
        r_hi = np.minimum(t1, term_end) - HOUR  # a one-year range ends before the term does
        renew = pick(rng, annual & ~cancel & (r_hi - r_lo >= HOUR), SHARE["renew"], n)
        t_renew = r_lo + HOUR * between(rng, 0, (r_hi - r_lo) // HOUR + 1)

        trap = pick(rng, ~annual & (n_inv >= 2), SHARE["line_id_trap"], n)
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
        self.cust_ids[self.c_rows] = ids("cus_", np.arange(1, nc + 1), 7)
        self.sub_ids = ids("sub_", np.arange(1, n + 1), 7)
        self.item_ids = np.stack(
            [
                np.array([f"si_{s[4:]}_1" for s in self.sub_ids.tolist()], dtype=object),
                np.array([f"si_{s[4:]}_2" for s in self.sub_ids.tolist()], dtype=object),
            ]
        )
