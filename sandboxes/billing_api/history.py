"""Subscriptions of the sandbox's builder and their history in the events feed.

A subscription is the contract versions of its items (``si_<sub>_<n>``), replayed in time: its
state at a time ``t`` holds each item that has started by then at its last live version, the
item's service period that began last by then, and ``status: canceled`` (with ``canceled_at``
and ``ended_at``) once an item's last version by then is a ``cancel``. The served object is the
state after every version; ``latest_invoice`` is the newest invoice finalized by then. Events,
one per distinct ``effective_at`` of the versions:

- ``customer.subscription.created`` at the first: the subscription as created;
- ``customer.subscription.updated`` per later amendment: the state after it, with
  ``data.previous_attributes`` holding the previous value of each changed top-level field
  (Stripe's shape, e.g. ``{"items": {...}, "metadata": {...}}``); an amendment that changes
  no served field (a mid-term renewal at the same price and quantity) has none, as Stripe
  sends none;
- ``customer.subscription.deleted`` at the cancellation: the canceled state.
"""

from __future__ import annotations

import bisect

from sandboxes.billing_api.render import render_subscription


class SubscriptionsMixin:
    """Part of :class:`sandboxes.billing_api.builder._Builder` (``self.r``, ``self.versions``,
    ``self.sub_of``, ``self.price``, ``self.event``)."""

    def subscriptions(self) -> list[dict]:
        periods: dict[str, list[tuple[int, int]]] = {}
        for ln in self.r["invoice_lines"]:
            it = ln.get("subscription_item_id")
            if it and ln["line_type"] != "invoiceitem" and ln["period_start"] is not None:
                periods.setdefault(it, []).append((ln["period_start"], ln["period_end"]))
        for ps in periods.values():
            ps.sort()
        self.invoices_of: dict[str, list[tuple[int, str]]] = {}
        for inv in self.r["invoices"]:
            if inv.get("subscription_id") and inv["finalized_at"] is not None:
                self.invoices_of.setdefault(inv["subscription_id"], []).append(
                    (inv["finalized_at"], inv["invoice_id"])
                )
        for invs in self.invoices_of.values():
            invs.sort()
        items_of: dict[str, dict[str, list[dict]]] = {}
        for item_id, vs in sorted(self.versions.items()):
            items_of.setdefault(self.sub_of(item_id), {})[item_id] = vs
        out = []
        for sid, items in items_of.items():
            times = sorted({v["effective_at"] for vs in items.values() for v in vs})
            prev = None
            for t in times:
                snap = render_subscription(self._sub_at(sid, items, periods, t))
                if prev is None:
                    self.event(t, "customer.subscription.created", snap)
                elif snap["status"] == "canceled" and prev["status"] != "canceled":
                    self.event(t, "customer.subscription.deleted", snap, 1)
                else:
                    changed = {k: prev.get(k) for k in snap if prev.get(k) != snap[k]}
                    if not changed:  # e.g. a mid-term renewal at the same price and quantity
                        continue
                    self.event(t, "customer.subscription.updated", snap, 1, changed)
                prev = snap
            out.append(self._sub_at(sid, items, periods, None))
        return out

    def _sub_at(self, sid: str, items: dict[str, list[dict]], periods, t: int | None) -> dict:
        """The subscription after the versions in effect at ``t`` (all of them when None)."""
        upto = {
            item_id: [v for v in vs if t is None or v["effective_at"] <= t]
            for item_id, vs in items.items()
        }
        upto = {k: vs for k, vs in upto.items() if vs}
        first_vs = next(iter(upto.values()))
        first = first_vs[0]
        cancels = [vs[-1]["effective_at"] for vs in upto.values() if _canceled(vs)]
        invs = self.invoices_of.get(sid, [])
        n = len(invs) if t is None else bisect.bisect_right(invs, (t, "\uffff"))
        ended = max(cancels) if cancels else None
        data = []
        for item_id, vs in upto.items():
            live = [v for v in vs if v["amendment_type"] != "cancel"]
            state = live[-1] if live else vs[-1]
            ps, pe = _period_at(periods.get(item_id, []), t)
            metered = bool(state["metered"])
            data.append(
                {
                    "id": item_id,
                    "object": "subscription_item",
                    "created": vs[0]["effective_at"],
                    "current_period_end": pe,
                    "current_period_start": ps,
                    "discounts": [],
                    "metadata": {},
                    "price": self.price(state),
                    "quantity": None if metered else state["quantity"],
                    "subscription": sid,
                    "tax_rates": [],
                }
            )
        return {
            "id": sid,
            "object": "subscription",
            "billing_cycle_anchor": first["effective_at"],
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": ended,
            "collection_method": "charge_automatically",
            "created": first["effective_at"],
            "currency": str(first["currency"]).lower(),
            "customer": first["customer_id"],
            "days_until_due": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": ended,
            "items": {"object": "list", "data": data},
            "latest_invoice": invs[n - 1][1] if n else None,
            "livemode": False,
            "metadata": {"legal_entity": first_vs[-1]["entity_id"]},
            "start_date": first["effective_at"],
            "status": "canceled" if cancels else "active",
            "test_clock": None,
            "trial_end": None,
            "trial_start": None,
        }


def _canceled(vs: list[dict]) -> bool:
    return vs[-1]["amendment_type"] == "cancel"


def _period_at(ps: list[tuple[int, int]], t: int | None) -> tuple[int | None, int | None]:
    """The service period that began last by ``t`` (the last one when None)."""
    if not ps:
        return None, None
    i = len(ps) if t is None else bisect.bisect_right(ps, (t, float("inf")))
    return ps[i - 1] if i else (None, None)
