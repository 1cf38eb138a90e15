"""Stripe charges, payment intents, invoice payments and refunds -> canonical ``payments``.

One payment is one settlement, whatever objects Stripe sends for it: an invoice collected
automatically (API ``2025-03-31.basil``) arrives as a charge ``ch_1`` with
``payment_intent: "pi_1"``, the PaymentIntent ``pi_1`` itself and an invoice payment whose
``payment`` is ``{"type": "payment_intent", "payment_intent": "pi_1"}`` (Stripe names the
charge there only when it has no PaymentIntent), often in different event batches.

Settlement id (the canonical ``payment_id``)
- The PaymentIntent id when the money moved through a PaymentIntent: a charge's
  ``payment_intent``, an invoice payment's ``payment.payment_intent``, a refund's or a
  dispute's ``payment_intent``, a ``payment_intent`` object's own ``id`` (its
  ``latest_charge`` is then known to belong to it).
- Else the charge id: an invoice payment of type ``charge``, a charge without a
  PaymentIntent, a refund or dispute naming only such a charge.
- Else the payment record id: an invoice payment of type ``payment_record`` (a payment
  recorded out of band).
Every object of one settlement therefore yields the same ``payment_id``: within a run they
are one row, and across runs the mirror keeps the latest record of that id
(``sync_core.stripe.landing.latest_records``), so it stays one row.

Rules
- A settlement is ``succeeded`` when a succeeded charge, a succeeded PaymentIntent or a paid
  invoice payment is in hand; else ``failed`` when only failed charges are (an attempt that
  never settled keeps its failed row); else it has no row, and each object is noted
  (``skipped``: a pending charge, a PaymentIntent not succeeded, an invoice payment not
  paid). A failed attempt followed by a success is one succeeded row.
- The row's amount, currency, time, entity and rate come from the most informative object:
  a succeeded charge (``amount``, ``created``), then a succeeded PaymentIntent
  (``amount_received``; time of its expanded ``latest_charge``, else of the
  ``payment_intent.succeeded`` event that carried it, else its ``created``), then a paid
  invoice payment (``amount_paid``, ``status_transitions.paid_at``), then the latest failed
  charge. The entity is ``entity_of`` of the first object naming one, else the invoice's.
- Invoice: an invoice payment's ``invoice`` (paid or not), the legacy ``invoice`` field of a
  charge or PaymentIntent (before basil), ``metadata.invoice_id``; else ``payment_info`` from
  earlier runs. Customer: a charge's or PaymentIntent's ``customer``, else ``payment_info``,
  else the invoice's.
- ``payment_info`` ({payment id: (invoice id, customer id[, status])}, the mirror's
  payments) links an object that does not know its invoice (a basil charge landing after its
  invoice payment) and keeps a settled payment settled: a failed attempt of a payment an
  earlier run saw succeed is noted (``skipped``), never landed over it.
- Quarantined under ``stripe_unsupported``: a settlement linked to two invoices, or whose
  succeeded objects disagree on the amount (a payment partly applied to an invoice); a
  canonical payment names one invoice and one amount.
- Refunds: ``payment_id`` is the refund's own id, kind ``refund``; they reach their
  settlement through ``payment_intent``, else ``charge`` (mapped to its PaymentIntent when a
  charge or PaymentIntent in hand says so) and take its invoice and customer, else
  ``metadata.invoice_id``. The credit note comes from the credit notes' refunds, else
  ``metadata.credit_note_id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED, FAILED = "succeeded", "failed"
PI_SUCCEEDED_EVENT = "payment_intent.succeeded"
# how informative an object is for its settlement's row: lower first
_RANK = {
    ("charge", SUCCEEDED): 0,
    ("payment_intent", SUCCEEDED): 1,
    ("invoice_payment", SUCCEEDED): 2,
    ("charge", FAILED): 3,
}
PaymentInfo = Mapping[str, tuple]


def succeeded_times(events: Iterable[Mapping]) -> dict[str, int]:
    """{PaymentIntent id: ``created`` of its latest ``payment_intent.succeeded`` event}."""
    out: dict[str, int] = {}
    for ev in events:
        if not isinstance(ev, Mapping) or ev.get("type") != PI_SUCCEEDED_EVENT:
            continue
        obj = (ev.get("data") or {}).get("object") or {}
        pid, created = obj.get("id"), ev.get("created")
        if pid and isinstance(created, int):
            out[str(pid)] = max(created, out.get(str(pid), created))
    return out


@dataclass
class _Source:
    """One Stripe object of a settlement."""

    kind: str  # charge | payment_intent | invoice_payment
    obj: Mapping
    status: str | None  # succeeded | failed | None (no payment: pending, open, ...)


@dataclass
class _Settlement:
    sid: str
    sources: list[_Source] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)
    customer: str | None = None
    charges: list[str] = field(default_factory=list)


class Payments:
    """The payments of one normalization run (``run``: the normalizer's ``_Run``; ``h``: its
    field helpers, as :func:`sync_core.stripe.disputes.dispute_row` takes them)."""

    def __init__(
        self,
        run: Any,
        h: Any,
        payment_info: PaymentInfo | None = None,
        succeeded_at: Mapping[str, int] | None = None,
    ):
        self.run, self.h = run, h
        self.prior = {str(k): tuple(v) for k, v in (payment_info or {}).items()}
        self.succeeded_at = dict(succeeded_at or {})
        self.pi_of_charge: dict[str, str] = {}
        self.settlements: dict[str, _Settlement] = {}

    # -------------------------------------------------------------------------- linking

    def link(self, charges: Iterable[Any], payment_intents: Iterable[Any]) -> None:
        """Charge -> PaymentIntent, from the charges and the PaymentIntents' latest charge."""
        ref, dig = self.h.ref, self.h.dig
        for ch in charges:
            if isinstance(ch, Mapping) and ref(ch.get("id")) and ref(ch.get("payment_intent")):
                self.pi_of_charge[ref(ch["id"])] = ref(ch["payment_intent"])
        for pi in payment_intents:
            if isinstance(pi, Mapping) and ref(pi.get("id")) and ref(dig(pi, "latest_charge")):
                self.pi_of_charge.setdefault(ref(pi["latest_charge"]), ref(pi["id"]))

    def settlement_of(self, charge: str | None = None, payment_intent: str | None = None):
        """The settlement id of a charge and / or PaymentIntent (see the module docstring)."""
        return payment_intent or self.pi_of_charge.get(charge or "") or charge

    def links(self, sid: str | None) -> tuple[str | None, str | None]:
        """(invoice, customer) of a settlement: this run's, else an earlier run's."""
        s = self.settlements.get(sid or "")
        prior = self.prior.get(sid or "", ())
        invoice = (s.invoices[0] if s and len(s.invoices) == 1 else None) or (
            prior[0] if len(prior) > 0 else None
        )
        customer = (s.customer if s else None) or (prior[1] if len(prior) > 1 else None)
        return _clean(invoice), _clean(customer)

    def _settlement(self, sid: str) -> _Settlement:
        return self.settlements.setdefault(sid, _Settlement(sid))

    def _add(self, s: _Settlement, src: _Source, invoice: str | None, customer: str | None):
        s.sources.append(src)
        if invoice and invoice not in s.invoices:
            s.invoices.append(invoice)
        s.customer = s.customer or customer
        if src.status is None:
            label = src.obj.get("status")
            self.run.note(
                "payments",
                self.h.ref(src.obj.get("id")) or s.sid,
                "skipped",
                f"{src.kind.replace('_', ' ')} {label!r} (payment {s.sid})",
            )

    def _legacy_invoice(self, obj: Mapping) -> str | None:
        h = self.h
        return h.ref(obj.get("invoice")) or h.ref(h.dig(obj, "metadata.invoice_id"))

    # -------------------------------------------------------------------------- sources

    def add(self, kind: str, obj: Mapping) -> None:
        """Read one charge / payment_intent / invoice_payment into its settlement; one that
        cannot be placed is quarantined under its own id."""
        h = self.h
        try:
            getattr(self, f"add_{kind}")(obj)
        except h.Bad as exc:
            created = h.safe_epoch(obj.get("created"))
            self.run.bad("payments", h.ref(obj.get("id")), None, created, exc)

    def add_charge(self, ch: Mapping) -> None:
        h = self.h
        cid = h.ref(ch.get("id"))
        if cid is None:
            raise h.Bad("id")
        s = self._settlement(self.settlement_of(cid, h.ref(ch.get("payment_intent"))))
        s.charges.append(cid)
        status = ch.get("status") if ch.get("status") in (SUCCEEDED, FAILED) else None
        if status == SUCCEEDED and ch.get("captured") is False:
            status = None  # an authorization only: no money moved until it is captured
        self._add(s, _Source("charge", ch, status), self._legacy_invoice(ch),
                  h.ref(ch.get("customer")))  # fmt: skip

    def add_payment_intent(self, pi: Mapping) -> None:
        h = self.h
        pid = h.ref(pi.get("id"))
        if pid is None:
            raise h.Bad("id")
        s = self._settlement(pid)
        status = SUCCEEDED if pi.get("status") == SUCCEEDED else None
        self._add(s, _Source("payment_intent", pi, status), self._legacy_invoice(pi),
                  h.ref(pi.get("customer")))  # fmt: skip

    def add_invoice_payment(self, ip: Mapping) -> None:
        h = self.h
        ptype = h.dig(ip, "payment.type")
        if ptype not in ("charge", "payment_intent", "payment_record"):
            raise h.Bad("payment.type", f"unknown payment type {ptype!r}")
        ref = h.ref(h.dig(ip, f"payment.{ptype}"))
        if ref is None:
            raise h.Bad(f"payment.{ptype}")
        sid = self.settlement_of(ref) if ptype == "charge" else ref
        status = SUCCEEDED if ip.get("status") == "paid" else None
        self._add(self._settlement(sid), _Source("invoice_payment", ip, status),
                  h.ref(ip.get("invoice")), None)  # fmt: skip

    # -------------------------------------------------------------------------- rows

    def _amount(self, src: _Source) -> int:
        h = self.h
        if src.kind == "charge" and src.status == SUCCEEDED and src.obj.get("amount_captured"):
            name = "amount_captured"  # a partial capture moved only this much
        else:
            name = {"charge": "amount", "payment_intent": "amount_received"}.get(src.kind)
        name = name or "amount_paid"
        return h.int(src.obj.get(name), name)

    def _created(self, src: _Source) -> int:
        h, o = self.h, src.obj
        if src.kind == "invoice_payment":
            return h.epoch(h.dig(o, "status_transitions.paid_at") or o.get("created"),
                           "status_transitions.paid_at")  # fmt: skip
        if src.kind == "payment_intent":
            latest = o.get("latest_charge")
            when = latest.get("created") if isinstance(latest, Mapping) else None
            when = when or self.succeeded_at.get(str(o.get("id")))
            return h.epoch(when or o.get("created"), "created")
        return h.epoch(o.get("created"), "created")

    def emit(self, sid: str) -> None:
        """The row of one settlement; a bad one is quarantined under its id."""
        s = self.settlements[sid]
        try:
            self._emit(s)
        except self.h.Bad as exc:
            created = next((self.h.safe_epoch(x.obj.get("created")) for x in s.sources), None)
            self.run.bad("payments", sid, None, created, exc)

    def _emit(self, s: _Settlement) -> None:
        h = self.h
        ok = [x for x in s.sources if x.status == SUCCEEDED]
        failed = [x for x in s.sources if x.status == FAILED]
        if not ok and not failed:
            return
        prior = self.prior.get(s.sid, ())
        if not ok and len(prior) > 2 and prior[2] == SUCCEEDED:
            self.run.note("payments", s.sid, "skipped",
                          "failed attempt of a payment already succeeded")  # fmt: skip
            return
        if ok:
            best = min(ok, key=lambda x: _RANK[(x.kind, SUCCEEDED)])
            amounts = {f"{x.kind} {h.ref(x.obj.get('id'))}": self._amount(x) for x in ok}
            if len(set(amounts.values())) > 1:
                said = ", ".join(f"{k}: {v}" for k, v in amounts.items())
                raise h.Bad("amount", f"the objects of one payment disagree ({said})",
                            h.rule_unsupported)  # fmt: skip
        else:
            best = max(failed, key=lambda x: (self._created(x), str(x.obj.get("id"))))
        if len(s.invoices) > 1:
            raise h.Bad("invoice", f"one payment linked to {len(s.invoices)} invoices "
                        f"({', '.join(s.invoices)})", h.rule_unsupported)  # fmt: skip
        invoice, customer = self.links(s.sid)
        ordered = sorted(s.sources, key=lambda x: _RANK.get((x.kind, x.status), 9))
        self.row(
            # entity and rate from the settled objects only, never from a failed attempt
            [x.obj for x in ordered if x.status == best.status],
            best.obj,
            s.sid,
            "payment",
            best.status,
            self._amount(best),
            self._created(best),
            invoice,
            customer,
            None,
        )
        self.run.charge_info.update({c: {"invoice": invoice, "customer": customer, "charge": c}
                                     for c in s.charges})  # fmt: skip
        self.run.charge_info[s.sid] = {
            "invoice": invoice,
            "customer": customer,
            "charge": s.charges[0] if s.charges else None,
        }

    def known_links(self) -> None:
        """Earlier runs' settlements as the disputes' links (``run.charge_info``)."""
        for sid in self.prior:
            invoice, customer = self.links(sid)
            self.run.charge_info.setdefault(sid, {"invoice": invoice, "customer": customer})

    def row(self, objs, best, pid, kind, status, amount, created, invoice, customer, cn):
        """Append one canonical payment row (entity and rate from the first of ``objs`` that
        names them, else the invoice's entity and ``best``)."""
        h, run = self.h, self.run
        info = run.invoice_info.get(invoice) if invoice else None
        named = next((e for e in map(_entity_of(run), objs) if e), None)
        entity = run.entity({}, named or (info[0] if info else None))
        customer = customer or (info[1] if info else None)
        if customer is None:
            raise h.Bad("customer")
        currency = h.ccy(best.get("currency"))
        rated = next((o for o in objs if h.dig(o, "metadata.fx_rate") not in (None, "")), best)
        row = run.iso(
            "payments",
            {
                "entity_id": entity,
                "payment_id": pid,
                "kind": kind,
                "customer_id": customer,
                "invoice_id": invoice,
                "credit_note_id": cn,
                "amount": amount,
                "currency": currency,
                "created_at": created,
                "status": status,
                "fx_rate": run.fx(rated, currency, entity, created),
            },
        )
        run.rows["payments"].append(row)

    # -------------------------------------------------------------------------- refunds

    def refund(self, rf: Mapping) -> None:
        h = self.h
        rid, created = h.ref(rf.get("id")), h.safe_epoch(rf.get("created"))
        try:
            if rid is None:
                raise h.Bad("id")
            status = rf.get("status")
            if status not in (SUCCEEDED, FAILED):
                self.run.note("payments", rid, "skipped", f"refund {status!r}")
                return
            sid = self.settlement_of(h.ref(rf.get("charge")), h.ref(rf.get("payment_intent")))
            invoice, customer = self.links(sid)
            invoice = invoice or h.ref(h.dig(rf, "metadata.invoice_id"))
            cn = self.run.refund_credit_note.get(rid) or h.ref(h.dig(rf, "metadata.credit_note_id"))
            self.row(
                [rf],
                rf,
                rid,
                "refund",
                status,
                h.int(rf.get("amount"), "amount"),
                h.epoch(rf.get("created"), "created"),
                invoice,
                h.ref(rf.get("customer")) or customer,
                cn,
            )
        except h.Bad as exc:
            self.run.bad("payments", rid, None, created, exc)


def _entity_of(run: Any):
    def read(obj: Mapping) -> str | None:
        try:
            e = run.entity_of(obj)
        except Exception:  # noqa: BLE001 - a failing resolver names no entity
            return None
        return str(e) if e else None

    return read


def _clean(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


__all__ = ["FAILED", "PI_SUCCEEDED_EVENT", "SUCCEEDED", "Payments", "succeeded_times"]
