"""Balance transactions and automatic payouts of the sandbox's builder.

The demo is one Stripe account serving several legal entities, settling each currency as
charged (``exchange_rate`` null). Rules:

- a succeeded charge ``ch`` has balance transaction ``txn_<ch>`` (``type: charge``): ``amount``
  the charge's, ``fee`` Stripe's standard card fee **2.9 % + 30 minor units, the 2.9 % rounded
  half up to a whole minor unit** (:func:`stripe_fee`: 10,000 -> 290 + 30 = 320; 500 -> 14.5 ->
  15 + 30 = 45), one ``fee_details`` entry ``stripe_fee``, ``net = amount - fee``;
- a succeeded refund ``re`` has ``txn_<re>`` (``type: refund``): ``amount = net = -refund``,
  ``fee`` 0 (Stripe keeps the charge's fee);
- both are available at 00:00 UTC two days after they were created (``available_on``);
- one automatic payout per legal entity (``metadata.legal_entity``) x currency x week (Monday
  to Sunday, UTC) of ``available_on``: created at 00:00 UTC of the Monday after that week,
  ``arrival_date`` two days later, ``amount`` the sum of the week's nets. A week whose sum is
  not positive pays nothing and its transactions join the next payout (Stripe does not pay
  out a negative balance). The payout is ``po_<entity>_<currency>_<YYYYMMDD of created>`` with
  its own balance transaction ``txn_<po>`` (``type: payout``, ``amount = net = -payout``).
  ``GET /v1/balance_transactions?payout=<po>`` lists the transactions it paid out and its own
  (so they sum to zero). Events ``payout.created`` (``status: pending``) and ``payout.paid``
  (at ``arrival_date``).
"""

from __future__ import annotations

import datetime as dt

DAY = 86_400
AVAILABLE_AFTER_DAYS = 2
ARRIVAL_AFTER_DAYS = 2


def stripe_fee(amount: int) -> int:
    """Stripe's fee on a charge of ``amount`` minor units: 2.9 % rounded half up to a whole
    minor unit, plus 30 minor units (exact integer arithmetic)."""
    return (amount * 29 + 500) // 1000 + 30


def _day_start(ts: int) -> int:
    return ts // DAY * DAY


def payout_day(available_on: int) -> int:
    """00:00 UTC of the Monday after the (Monday to Sunday) week of ``available_on``."""
    day = available_on // DAY
    monday = day - (day + 3) % 7  # 1970-01-01, day 0, was a Thursday
    return (monday + 7) * DAY


def _txn(tid, ttype, category, amount, fee, ccy, source, created, available_on) -> dict:
    return {
        "id": tid,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "created": created,
        "currency": ccy,
        "description": None,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [
            {
                "amount": fee,
                "application": None,
                "currency": ccy,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else [],
        "net": amount - fee,
        "reporting_category": category,
        "source": source,
        "status": "available",
        "type": ttype,
        "payout": None,  # sandbox only, not served: the automatic payout that paid it out
    }


class BalanceMixin:
    """Part of :class:`sandboxes.billing_api.builder._Builder` (``self.event``)."""

    def balance(self, charges: list[dict], refunds: list[dict]) -> tuple[list[dict], list[dict]]:
        """(balance transactions, payouts) of the succeeded charges and refunds that name a
        balance transaction."""
        txns = []
        for ch in charges:
            if ch.get("balance_transaction"):
                fee = stripe_fee(ch["amount"])
                txns.append(
                    _txn(ch["balance_transaction"], "charge", "charge", ch["amount"], fee,
                         ch["currency"], ch["id"], ch["created"],
                         _day_start(ch["created"]) + AVAILABLE_AFTER_DAYS * DAY)
                )  # fmt: skip
        for rf in refunds:
            if rf.get("balance_transaction"):
                txns.append(
                    _txn(rf["balance_transaction"], "refund", "refund", -rf["amount"], 0,
                         rf["currency"], rf["id"], rf["created"],
                         _day_start(rf["created"]) + AVAILABLE_AFTER_DAYS * DAY)
                )  # fmt: skip
        entity = {o["id"]: o["metadata"]["legal_entity"] for o in (*charges, *refunds)}
        groups: dict[tuple[str, str], dict[int, list[dict]]] = {}
        for t in txns:
            key = (entity[t["source"]], t["currency"])
            groups.setdefault(key, {}).setdefault(payout_day(t["available_on"]), []).append(t)
        payouts = []
        for (ent, ccy), weeks in sorted(groups.items()):
            pending: list[dict] = []
            for day in sorted(weeks):
                pending += weeks[day]
                amount = sum(t["net"] for t in pending)
                if amount <= 0:
                    continue
                po = self.payout(ent, ccy, day, amount)
                txns.append(
                    _txn(po["balance_transaction"], "payout", "payout", -amount, 0, ccy,
                         po["id"], day, day)
                )  # fmt: skip
                for t in (*pending, txns[-1]):
                    t["payout"] = po["id"]
                payouts.append(po)
                pending = []
        return txns, payouts

    def payout(self, entity: str, ccy: str, created: int, amount: int) -> dict:
        """An automatic payout, paid; its ``payout.created`` and ``payout.paid`` events."""
        stamp = dt.datetime.fromtimestamp(created, dt.UTC).strftime("%Y%m%d")
        pid = f"po_{entity}_{ccy}_{stamp}"
        arrival = created + ARRIVAL_AFTER_DAYS * DAY
        po = {
            "id": pid,
            "object": "payout",
            "amount": amount,
            "application_fee": None,
            "application_fee_amount": None,
            "arrival_date": arrival,
            "automatic": True,
            "balance_transaction": f"txn_{pid}",
            "created": created,
            "currency": ccy,
            "description": "STRIPE PAYOUT",
            "destination": None,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {"legal_entity": entity},
            "method": "standard",
            "original_payout": None,
            "reconciliation_status": "completed",
            "reversed_by": None,
            "source_type": "card",
            "statement_descriptor": None,
            "status": "paid",
            "trace_id": {"status": "unsupported", "value": None},
            "type": "bank_account",
        }
        pending = {**po, "reconciliation_status": "in_progress", "status": "pending"}
        self.event(created, "payout.created", pending, 5)
        self.event(arrival, "payout.paid", po, 5)
        return po
