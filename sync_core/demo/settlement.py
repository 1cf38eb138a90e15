"""The demo platform's credit notes, payments and refunds, and the versioned contract rows of
every subscription item (``_Platform`` mixin, see generator.py)."""

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
from sync_core.demo.params import CHANGE_TYPES, CN_REASONS, SHARE


class Settlement:
    # -- credit notes: ~4 % of non-void invoices, at most one per invoice
    def _credit_notes(self) -> None:
        rng, t1 = self.rng, self.t1
        ci = np.flatnonzero(pick(rng, ~self.i_void, SHARE["credit_note"], self.N))
        m = ci.size
        fin, pay_t, paid = self.i_fin[ci], self.i_pay_t[ci], self.i_paid[ci]
        post = paid & (t1 - pay_t >= 2 * HOUR) & (rng.random(m) < 0.7)
        pre_hi = np.where(paid, pay_t, np.minimum(t1, fin + 30 * DAY))
        issued = np.where(
            post,
            between(rng, pay_t + 1, np.minimum(t1, pay_t + 60 * DAY)),
            between(rng, fin + 1, pre_hi),
        )
        # 0: lines pointing at invoice lines, 1: one pro-rata line without a key, 2: no lines
        mode = rng.choice(3, size=m, p=(0.6, 0.25, 0.15))
        mode = np.where((mode == 0) & self.i_prorated[ci], 1, mode)
        # share of the invoice credited, per mille: before payment at most 40 % so an amount
        # stays due; after payment up to all of it
        permille = np.where(
            post,
            np.where(rng.random(m) < 0.4, 1000, between(rng, 100, 1000, m)),
            between(rng, 100, 401, m),
        )
        L = self.L
        sl, ul = self.i_sub_line[ci], self.i_usage_line[ci]
        a1 = L["amount"][sl] * permille // 1000
        tax1 = div_round(L["tax"][sl] * a1, L["amount"][sl])
        ul_amount = np.where(ul >= 0, L["amount"][ul], 0)
        second = (mode == 0) & (ul_amount >= 100) & (rng.random(m) < 0.5)
        a2 = np.where(second, ul_amount * permille // 1000, 0)
        t2 = np.where(second, div_round(L["tax"][ul] * a2, np.maximum(ul_amount, 1)), 0)
        a_pr = self.i_subtotal[ci] * permille // 1000
        t_pr = div_round(self.i_tax[ci] * a_pr, self.i_subtotal[ci])
        subtotal = np.where(mode == 0, a1 + a2, a_pr)
        tax = np.where(mode == 0, tax1 + t2, t_pr)
        total = subtotal + tax
        how = rng.choice(4, size=m, p=(0.5, 0.25, 0.15, 0.1))  # refund, balance, oob, split
        refund = np.where(post, np.select([how == 0, how == 3], [total, total // 2], 0), 0)
        balance = np.where(post, np.select([how == 1, how == 3], [total, total - total // 2], 0), 0)
        oob = np.where(post & (how == 2), total, 0)
        voidable = ((~post & ~paid) | (post & (refund == 0))) & (t1 - issued >= HOUR)
        void = pick(rng, voidable, SHARE["void_credit_note"], m, minimum=min(2, m))
        voided = np.where(
            void, between(rng, issued + 1, np.minimum(t1, issued + 10 * DAY)), NULL_TS
        )
        reason = CN_REASONS[rng.choice(CN_REASONS.size, size=m, p=(0.3, 0.2, 0.2, 0.2, 0.1))]

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
            "ids": ids("cn_", np.arange(1, m + 1), 7),
        }
        # lines: first line (modes 0 and 1), second line (mode 0 with a usage line)
        mode, second, sl, ul = mode[order], second[order], sl[order], ul[order]
        rank = np.arange(m)
        one = mode <= 1
        key1 = np.where(mode == 0, self._line_keys(sl), None)
        cols = {
            "cn": np.r_[rank[one], rank[second]],
            "pos": np.r_[np.zeros(one.sum(), dtype=np.int64), np.ones(second.sum(), np.int64)],
            "key": np.r_[key1[one], self._line_keys(ul[second])],
            "amount": np.r_[np.where(mode == 0, a1[order], a_pr[order])[one], a2[order][second]],
            "tax": np.r_[np.where(mode == 0, tax1[order], t_pr[order])[one], t2[order][second]],
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
        fi = np.flatnonzero(pick(rng, self.i_paid, SHARE["failed_attempt"], self.N))
        t_fail = between(rng, self.i_fin[fi] + 1, self.i_pay_t[fi])
        inv = np.r_[pi, fi]
        created = np.r_[self.i_pay_t[pi], t_fail]
        ok = np.r_[np.ones(pi.size, dtype=bool), np.zeros(fi.size, dtype=bool)]
        order = np.lexsort((inv, created))
        inv, created, ok = inv[order], created[order], ok[order]
        CN = self.CN
        rf = np.flatnonzero(CN["refund"] > 0)  # credit notes are sorted by issued_at already
        self.pay_width = id_width(inv.size, 8), id_width(rf.size, 7)
        self.P = {
            "num": np.r_[np.arange(1, inv.size + 1), np.arange(1, rf.size + 1)],
            "refund": np.r_[np.zeros(inv.size, dtype=bool), np.ones(rf.size, dtype=bool)],
            "inv": np.r_[inv, CN["inv"][rf]],
            "cn": np.r_[np.full(inv.size, -1), rf],
            "amount": np.r_[self.i_total[inv] - self.i_credited[inv], CN["refund"][rf]],
            "created": np.r_[created, CN["issued"][rf]],
            "ok": np.r_[ok, np.ones(rf.size, dtype=bool)],
        }

    def _payment_ids(self, rows: np.ndarray) -> np.ndarray:
        """Payment ids of payment positions: ``py_<n>`` payments, then ``re_<n>`` refunds."""
        out = np.empty(rows.size, dtype=object)
        refund, num = self.P["refund"][rows], self.P["num"][rows]
        out[~refund] = ids("py_", num[~refund], self.pay_width[0])
        out[refund] = ids("re_", num[refund], self.pay_width[1])
        return out

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
        add(self.ch, 0, 1, CHANGE_TYPES[self.ch_kind], self.t_ch, self.tier1, self.qty1, self.ent0)
        ec_t = add_months(self.start, self.j_ec + 1)
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
