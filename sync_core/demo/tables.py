"""The demo platform's objects as file-drop tables: columns as arrays, rows sorted by id,
timestamps as epoch seconds (``_Platform`` mixin, see generator.py)."""

from __future__ import annotations

import numpy as np

from sync_core.demo.arrays import DAY, NULL_TS, Lazy, gather, group_rank, id_width, ids
from sync_core.demo.entities import COUNTRIES, NAME_A, NAME_B, SUFFIXES
from sync_core.demo.params import METRIC, TIERS, USAGE_PRICE_1

_COUNTRY_CODES = np.array(COUNTRIES, dtype=object)


class Tables:
    def sizes(self) -> dict[str, int]:
        """Row count of every object, known before its table is formatted."""
        return {
            "legal_entities": self.E.n,
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
        rows = self.E.rows
        return {
            "entity_id": self.E.ids.copy(),
            "name": np.array([e[1] for e in rows], dtype=object),
            "functional_currency": np.array([e[2] for e in rows], dtype=object),
            "country": np.array([e[3] for e in rows], dtype=object),
            "erp_subsidiary_id": np.array([e[4] for e in rows], dtype=object),
            "recognition_method": np.full(len(rows), "day", dtype=object),
        }

    def _customers_table(self) -> dict[str, np.ndarray]:
        rows, cids = self.c_rows, self.cust_ids[self.c_rows]
        a, b, sfx = (x[rows] for x in self.c_name)
        country = self.c_country[rows]
        names = [
            f"{NAME_A[i]} {NAME_B[j]}{SUFFIXES[c][s]}"
            for i, j, c, s in zip(a.tolist(), b.tolist(), country.tolist(), sfx.tolist())
        ]
        ent_ids = self.E.ids[self.c_ent[rows]]
        erp = np.array(
            [f"C-{e}-{i:06d}" for i, e in enumerate(ent_ids.tolist(), start=1)], dtype=object
        )
        erp[self.c_no_erp[rows]] = None
        email = np.array([f"billing+{s[4:]}@example.com" for s in cids.tolist()], dtype=object)
        email[self.c_no_email[rows]] = None
        return {
            "entity_id": ent_ids,
            "customer_id": cids,
            "name": np.array(names, dtype=object),
            "email": email,
            "country": _COUNTRY_CODES[country],
            "currency": self.E.codes[self.c_cur[rows]],
            "erp_customer_id": erp,
            "created_at": self.c_created[rows],
        }

    def _subscription_contracts_table(self) -> dict[str, np.ndarray]:
        sub, item, kind, t, tier, qty, ent = (
            self.C[c] for c in ("sub", "item", "kind", "t", "tier", "qty", "ent")
        )
        key = sub * 2 + item
        version = group_rank(key) + 1
        metered = item == 1
        annual = self.annual[sub]
        cur = self.cur[sub]
        lower = [c.lower() for c in self.E.currencies]
        plan = np.array([f"plan_{t}" for t in TIERS] + ["plan_api_calls"], dtype=object)
        price = np.array(
            [
                [[f"price_{t}_{iv}_{c}" for iv in ("monthly", "annual")] for t in TIERS]
                for c in lower
            ]
            + [[[f"price_api_calls_tiered_{c}"] * 2] * len(TIERS) for c in lower],
            dtype=object,
        )  # [metered * currencies + currency, tier, annual]
        return {
            "entity_id": self.E.ids[ent],
            "contract_id": self.item_ids[item, sub],
            "version": version,
            "customer_id": self.cust_ids[self.owner[sub]],
            "amendment_type": kind.astype(object),
            "effective_at": t,
            "plan_id": plan[np.where(metered, len(TIERS), tier)],
            "price_id": price[metered * len(lower) + cur, tier, annual.astype(np.int64)],
            "interval": np.where(annual, "year", "month").astype(object),
            "unit_amount": np.where(metered, USAGE_PRICE_1, self._unit(cur, tier, annual)),
            "quantity": qty,
            "currency": self.E.codes[cur],
            "metered": metered,
        }

    def _usage_events_table(self) -> dict[str, np.ndarray]:
        s = self.e_sub
        width = id_width(s.size, 9)
        return {
            "entity_id": gather(self.E.ids[self.ent0], s),
            "event_id": Lazy(s.size, lambda rows: ids("mev_", rows + 1, width)),
            "customer_id": gather(self.cust_ids[self.owner], s),
            "subscription_id": gather(self.sub_ids, s),
            "subscription_item_id": gather(self.item_ids[1], s),
            "metric": Lazy(s.size, lambda rows: np.full(rows.size, METRIC, dtype=object)),
            "quantity": self.e_qty,
            "timestamp": self.e_ts,
        }

    def _invoice_numbers(self) -> np.ndarray:
        """``<entity>-<year>-<sequence>``: a sequence per entity and year of finalization."""
        year = (self.i_fin // DAY).astype("datetime64[D]").astype("datetime64[Y]").astype(int)
        year = year + 1970
        key = self.i_ent.astype(np.int64) * 10_000 + year
        order = np.argsort(key, kind="stable")  # invoices are in id (= finalization) order
        seq = np.empty(self.N, dtype=np.int64)
        seq[order] = group_rank(key[order]) + 1
        ent_ids = self.E.ids[self.i_ent]
        return np.array(
            [f"{e}-{y}-{q:06d}" for e, y, q in zip(ent_ids.tolist(), year.tolist(), seq.tolist())],
            dtype=object,
        )

    def _invoices_table(self) -> dict[str, np.ndarray]:
        return {
            "entity_id": self.E.ids[self.i_ent],
            "invoice_id": Lazy(self.N, self._inv_ids),
            "number": self._invoice_numbers(),
            "customer_id": gather(self.cust_ids[self.owner], self.i_sub),
            "subscription_id": gather(self.sub_ids, self.i_sub),
            "currency": self.E.codes[self.i_cur],
            "status": self.i_status,
            "finalized_at": self.i_fin,
            "voided_at": self.i_voided,
            "subtotal": self.i_subtotal,
            "tax": self.i_tax,
            "total": self.i_total,
            "fx_rate": self._rate(self.i_ent, self.i_cur, self.i_fin),
            "uncollectible_at": self.i_uncollectible,
            "balance_applied": np.zeros(self.N, dtype=np.int64),  # none applied
        }

    def _invoice_lines_table(self) -> dict[str, np.ndarray]:
        L = self.L
        # by line_key: invoice ids have one width, and in an invoice the il_ line ids come in
        # line order, before the trap's sub_ line id
        order = np.argsort(L["inv"] * 2 + L["trap"], kind="stable")
        inv, sub = L["inv"][order], L["sub"][order]
        line_type = np.array(["subscription", "invoiceitem", "usage"], dtype=object)
        product = np.array([f"prod_{t}" for t in TIERS] + ["prod_api_calls"], dtype=object)
        tier = L["tier"][order]
        return {
            "entity_id": self.E.ids[self.i_ent[inv]],
            "line_key": Lazy(order.size, lambda rows: self._line_keys(order[rows])),
            "line_id": Lazy(order.size, lambda rows: self._line_ids(order[rows])),
            "invoice_id": Lazy(order.size, lambda rows: self._inv_ids(inv[rows])),
            "subscription_id": gather(self.sub_ids, sub),
            "subscription_item_id": gather(self.item_ids.ravel(), L["item"][order] * self.n + sub),
            "product_id": product[np.where(tier < 0, len(TIERS), tier)],
            "line_type": line_type[L["type"][order]],
            "proration": L["type"][order] == 1,
            "quantity": L["qty"][order],
            "amount": L["amount"][order],
            "tax_amount": L["tax"][order],
            "tax_behavior": np.full(order.size, "exclusive", dtype=object),
            "currency": self.E.codes[self.i_cur[inv]],
            "period_start": L["ps"][order],
            "period_end": L["pe"][order],
        }

    def _credit_notes_table(self) -> dict[str, np.ndarray]:
        CN = self.CN
        inv = CN["inv"]
        return {
            "entity_id": self.E.ids[self.i_ent[inv]],
            "credit_note_id": CN["ids"],
            "invoice_id": self._inv_ids(inv),
            "customer_id": self.cust_ids[self.owner[self.i_sub[inv]]],
            "currency": self.E.codes[self.i_cur[inv]],
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
            "entity_id": self.E.ids[self.i_ent[inv]],
            "credit_note_line_id": ids("cnli_", np.arange(1, CNL["cn"].size + 1), 7),
            "credit_note_id": self.CN["ids"][CNL["cn"]],
            "invoice_line_key": CNL["key"],
            "amount": CNL["amount"],
            "tax_amount": CNL["tax"],
            "currency": self.E.codes[self.i_cur[inv]],
            "period_start": np.full(inv.size, NULL_TS, dtype=np.int64),  # not prospective
            "period_end": np.full(inv.size, NULL_TS, dtype=np.int64),
        }

    def _payments_table(self) -> dict[str, np.ndarray]:
        P = self.P
        inv = P["inv"]
        ent, cur = self.i_ent[inv], self.i_cur[inv]
        cn_ids = np.where(P["cn"] >= 0, self.CN["ids"][np.maximum(P["cn"], 0)], None)
        return {
            "entity_id": self.E.ids[ent],
            "payment_id": Lazy(inv.size, self._payment_ids),
            "kind": np.where(P["refund"], "refund", "payment").astype(object),
            "customer_id": gather(self.cust_ids[self.owner[self.i_sub]], inv),
            "invoice_id": Lazy(inv.size, lambda rows: self._inv_ids(inv[rows])),
            "credit_note_id": cn_ids.astype(object),
            "amount": P["amount"],
            "currency": self.E.codes[cur],
            "created_at": P["created"],
            "status": np.where(P["ok"], "succeeded", "failed").astype(object),
            "fx_rate": self._rate(ent, cur, P["created"]),
        }

    def _disputes_table(self) -> dict[str, np.ndarray]:
        """Chargebacks of one in 60 succeeded payments of paid invoices (no rng draw, so the
        other tables do not move): opened 10 days after the payment, closed 20 days later,
        alternately won and lost, with Stripe's fee in the payment currency (15.00 in USD,
        GBP and EUR; ``entities.CURRENCY_TABLE``)."""
        P = self.P
        ok = np.flatnonzero(P["ok"] & ~P["refund"] & self.i_paid[P["inv"]])
        chosen = ok[::60]
        chosen = chosen[P["created"][chosen] + 30 * DAY < self.t1]
        inv = P["inv"][chosen]
        ent, cur = self.i_ent[inv], self.i_cur[inv]
        opened = P["created"][chosen] + 10 * DAY
        return {
            "entity_id": self.E.ids[ent],
            "dispute_id": np.array([f"dp_{i:07d}" for i in range(chosen.size)], dtype=object),
            "payment_id": self._payment_ids(chosen),
            "invoice_id": self._inv_ids(inv),
            "customer_id": self.cust_ids[self.owner[self.i_sub[inv]]],
            "amount": P["amount"][chosen],
            "currency": self.E.codes[cur],
            "fee": self.E.dispute_fee[cur],
            "fee_currency": self.E.codes[cur],
            "status": np.where(np.arange(chosen.size) % 2 == 0, "lost", "won").astype(object),
            "created_at": opened,
            "closed_at": opened + 20 * DAY,
            "fx_rate": self._rate(ent, cur, opened),
        }
