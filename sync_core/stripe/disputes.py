"""Stripe disputes (chargebacks) -> canonical ``disputes`` rows, and the invoice fields of
contract 1.1 that come from Stripe.

Rules
- ``dispute_id`` = ``id``; ``payment_id`` = ``charge`` (or, when only ``payment_intent`` is
  given, the charge an invoice payment names for it); ``invoice_id`` and ``customer_id`` from
  that charge's links (the charge and invoice payment lists of the same run), else
  ``metadata.invoice_id`` / ``metadata.customer_id``; a dispute whose customer cannot be found
  is quarantined (``stripe_required_field``, field ``charge``).
- ``amount`` / ``currency`` as disputed. ``fee`` is the sum of the fees of the dispute's
  withdrawal balance transactions (``balance_transactions[]`` with a negative ``amount``), in
  their currency (``fee_currency``); a dispute without balance transactions (an inquiry,
  ``warning_*``) has fee 0 in the dispute currency. Both amounts are converted to ISO 4217
  minor units with their own currency (``sync_core.stripe.currencies``).
- ``created_at`` = ``created``. ``closed_at``: the ``created`` of the dispute's
  ``charge.dispute.closed`` event when the events are given, else the last balance
  transaction's ``created`` for a won dispute (the funds reinstated); a won or lost dispute with
  neither is quarantined (field ``closed_at``): Stripe's dispute object carries no close date.
- Invoices: ``uncollectible_at`` = ``status_transitions.marked_uncollectible_at``;
  ``balance_applied`` = ``ending_balance - starting_balance`` (Stripe's customer balance is
  negative for a credit: a credit of 11.00 applied in full takes it from ``-1100`` to ``0``, so
  1100 was applied); 0 when Stripe gives neither. A debit balance added to the invoice comes out
  negative and is left to the contract (``balance_applied >= 0``) to quarantine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sync_core.stripe.currencies import InexactAmount, to_iso

CLOSED_EVENT = "charge.dispute.closed"


def closed_at_from_events(events: Iterable[Mapping]) -> dict[str, int]:
    """{dispute id: ``created`` of its latest ``charge.dispute.closed`` event}."""
    out: dict[str, int] = {}
    for ev in events:
        if not isinstance(ev, Mapping) or ev.get("type") != CLOSED_EVENT:
            continue
        obj = (ev.get("data") or {}).get("object") or {}
        did, created = obj.get("id"), ev.get("created")
        if did and isinstance(created, int):
            out[str(did)] = max(created, out.get(str(did), created))
    return out


def balance_applied(inv: Mapping, read_int) -> int:
    """Credit applied from the customer's balance (see module docstring)."""
    start, end = inv.get("starting_balance"), inv.get("ending_balance")
    if start is None or end is None:
        return 0
    return read_int(end, "ending_balance") - read_int(start, "starting_balance")


def _withdrawals(d: Mapping) -> list[Mapping]:
    bts = d.get("balance_transactions")
    if not isinstance(bts, list):
        return []
    return [bt for bt in bts if isinstance(bt, Mapping) and (bt.get("amount") or 0) < 0]


def dispute_fee(d: Mapping, currency: str, read_int, read_ccy) -> tuple[int, str]:
    """(fee in ISO minor units, its currency)."""
    out = _withdrawals(d)
    if not out:
        return 0, currency
    fee_ccy = read_ccy(out[0].get("currency"), "balance_transactions[].currency")
    fee = sum(read_int(bt.get("fee") or 0, "balance_transactions[].fee") for bt in out)
    return to_iso(fee, fee_ccy, "fee"), fee_ccy


def closed_at(d: Mapping, closed: Mapping[str, int]) -> int | None:
    if d.get("status") not in ("won", "lost"):
        return None
    if str(d.get("id")) in closed:
        return closed[str(d.get("id"))]
    bts = [bt for bt in d.get("balance_transactions") or [] if isinstance(bt, Mapping)]
    if d.get("status") == "won" and bts and isinstance(bts[-1].get("created"), int):
        return bts[-1]["created"]
    return None


def dispute_row(run: Any, d: Mapping, closed: Mapping[str, int], h) -> dict:
    """One canonical dispute row; raises ``h.Bad`` (the normalizer's bad-record error)."""
    did = h.ref(d.get("id"))
    if did is None:
        raise h.Bad("id")
    charge = h.ref(d.get("charge"))
    pi = h.ref(d.get("payment_intent"))
    info = run.charge_info.get(charge) or run.charge_info.get(pi) or {}
    payment = charge or (info.get("charge") if info else None) or pi
    if payment is None:
        raise h.Bad("charge")
    invoice = info.get("invoice") or h.ref(h.dig(d, "metadata.invoice_id"))
    inv_info = run.invoice_info.get(invoice) if invoice else None
    customer = info.get("customer") or (inv_info[1] if inv_info else None)
    customer = customer or h.ref(h.dig(d, "metadata.customer_id"))
    if customer is None:
        raise h.Bad("charge", "no customer: the disputed charge is not known to this run")
    entity = run.entity(d, inv_info[0] if inv_info else None)
    currency = h.ccy(d.get("currency"))
    created = h.epoch(d.get("created"), "created")
    status = h.req(d, "status")
    try:
        amount = to_iso(h.int(d.get("amount"), "amount"), currency, "amount")
        fee, fee_ccy = dispute_fee(d, currency, h.int, h.ccy)
    except InexactAmount as exc:
        raise h.Bad(exc.field, exc.problem, h.rule_minor_units) from None
    when = closed_at(d, closed)
    if status in ("won", "lost") and when is None:
        raise h.Bad("closed_at", f"a {status} dispute without its {CLOSED_EVENT} event")
    return {
        "entity_id": entity,
        "dispute_id": did,
        "payment_id": payment,
        "invoice_id": invoice,
        "customer_id": customer,
        "amount": amount,
        "currency": currency,
        "fee": fee,
        "fee_currency": fee_ccy,
        "status": str(status),
        "created_at": created,
        "closed_at": when,
        "fx_rate": run.fx(d, currency, entity, created),
    }
