"""The demo platform's invoices: one per billing period, their lines (subscription,
prorations, metered usage) and their status (``_Platform`` mixin, see generator.py)."""

from __future__ import annotations

import numpy as np

from sync_core.demo.arrays import (
    DAY,
    HOUR,
    NULL_TS,
    add_months,
    between,
    div_round,
    id_width,
    ids,
    pick,
)
from sync_core.demo.params import ANNUAL_MONTHS, SHARE, tiered


class Billing:
    def _unit(self, cur, tier, annual) -> np.ndarray:
        return self.E.prices[cur, tier] * np.where(annual, ANNUAL_MONTHS, 1)

    # -- one invoice per billing period, finalized at the period start
    def _invoices(self) -> None:
        n_inv = self.n_inv
        sub = np.repeat(np.arange(self.n), n_inv)
        k = np.arange(sub.size) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
        fin = add_months(self.start[sub], k * self.mult[sub])
        order = np.lexsort((sub, fin))
        sub, k, fin = sub[order], k[order], fin[order]
        self.i_sub, self.i_k, self.i_fin = sub, k, fin
        self.i_end = add_months(self.start[sub], (k + 1) * self.mult[sub])
        self.i_ent = np.where(k > self.j_ec[sub], self.ent1[sub], self.ent0[sub])
        self.i_cur = self.cur[sub]
        self.N = sub.size
        self.inv_width = id_width(self.N, 8)

    def _inv_ids(self, inv: np.ndarray) -> np.ndarray:
        """Invoice ids of invoice positions (``in_<n>``, numbered in finalization order)."""
        return ids("in_", inv + 1, self.inv_width)

    def _line_ids(self, rows: np.ndarray) -> np.ndarray:
        """``line_id`` of line positions: ``il_<n>``, or the subscription id (the trap)."""
        out = ids("il_", rows + 1, self.line_width)
        trap = self.L["trap"][rows]
        out[trap] = self.sub_ids[self.L["sub"][rows[trap]]]
        return out

    def _line_keys(self, rows: np.ndarray) -> np.ndarray:
        """``line_key`` (``invoice_id/line_id``) of line positions."""
        return self._inv_ids(self.L["inv"][rows]) + "/" + self._line_ids(rows)

    # -- metered usage: events in billed periods and in the period still open at the end
    def _usage(self) -> None:
        rng, n = self.rng, self.n
        count = np.where(self.metered, np.where(self.cancel, self.n_inv - 1, self.n_inv), 0)
        sub = np.repeat(np.arange(n), count)
        self.pair_first = np.cumsum(count) - count
        k = np.arange(sub.size) - np.repeat(self.pair_first, count)
        ps = add_months(self.start[sub], k)
        pe = np.minimum(add_months(self.start[sub], k + 1), self.t1)
        n_events = rng.poisson(self.lam[sub])
        pair = np.repeat(np.arange(sub.size), n_events)
        ts = between(rng, ps[pair], pe[pair])
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
            full = self.E.prices[self.cur[sp], t[sp]] * q[sp]
            parts.append(
                dict(
                    inv=ip,
                    pos=np.full(ip.size, pos),
                    item=np.zeros(ip.size, dtype=np.int64),
                    type=np.ones(ip.size, dtype=np.int64),
                    qty=q[sp],
                    amount=sign * div_round(full * num, den),
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
                amount=tiered(uq),
                tier=np.full(iu.size, -1),
                ps=add_months(self.start[su], k[iu] - 1),
                pe=self.i_fin[iu],
            )
        )
        cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        del parts
        order = np.lexsort((cols["pos"], cols["inv"]))
        L = {c: v[order] for c, v in cols.items()}
        del cols
        L["sub"] = s[L["inv"]]
        L["tax"] = div_round(L["amount"] * self.c_tax_bp[self.owner[L["sub"]]], 10_000)
        L["trap"] = (L["pos"] == 2) & self.trap[L["sub"]]
        self.line_width = id_width(L["inv"].size, 9)
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

    # -- invoice status: void, uncollectible, open (overdue or paid after the end), paid
    def _statuses(self) -> None:
        rng, N, fin, t1 = self.rng, self.N, self.i_fin, self.t1
        void = pick(rng, t1 - fin >= 2 * HOUR, SHARE["void"], N)
        uncollectible = pick(rng, ~void & (fin < t1 - 30 * DAY), SHARE["uncollectible"], N)
        overdue = pick(rng, ~void & ~uncollectible, SHARE["overdue"], N)
        pay_t = between(rng, fin + 2 * HOUR, fin + 7 * DAY)
        paid = ~void & ~uncollectible & ~overdue & (pay_t < t1)
        self.i_voided = np.where(
            void, between(rng, fin + HOUR, np.minimum(fin + 10 * DAY, t1)), NULL_TS
        )
        self.i_status = np.select(
            [void, uncollectible, paid], ["void", "uncollectible", "paid"], "open"
        ).astype(object)
        self.i_void, self.i_paid, self.i_pay_t = void, paid, pay_t
        # written off 30 days after finalization (before the range ends, by the pick above)
        self.i_uncollectible = np.where(uncollectible, fin + 30 * DAY, NULL_TS)
