"""Stripe API objects (dicts, as the API returns them) -> canonical contract frames.

Every ``normalize_*`` function takes a list of Stripe objects and returns a
:class:`Normalized`: one frame per canonical object (columns exactly as
``sync_core.contracts.models``, without ``period``, typed like
:func:`sync_core.filedrop.read_object`), a ``quarantine`` frame and a ``notes`` frame.
:func:`normalize_all` does every object at once and links them (invoice -> lines, payment ->
invoice, refund -> credit note, metered prices -> usage lines).

Rules
- Both invoice-line shapes are read: the current nested one (API ``2025-03-31.basil`` and
  later: ``parent.subscription_item_details`` / ``parent.invoice_item_details``,
  ``pricing.price_details``, ``taxes[]``) and the legacy flat one (``type``,
  ``subscription``, ``subscription_item``, ``proration``, ``price``, ``tax_amounts[]``).
- Unknown fields are ignored. A record that lacks a field the contract needs (or whose value
  cannot be read) is never raised: it becomes a quarantine row (rule
  ``stripe_required_field``, owner by object, message naming the field). A value the contract
  cannot express (a price billed every 3 months, a mixed credit note) is quarantined under
  ``stripe_unsupported``. Contract rules themselves (currency codes, ``total = subtotal + tax``,
  ...) are left to the contract validation: nothing is silently corrected here.
- Deliberate adjustments and skips are written to ``notes`` (object_type, source_id, kind,
  message): draft invoices are skipped (not finalized); a one-off line with
  ``period.start == period.end`` gets the one-day service period ``[start, start + 1 day)``.
- Money: line ``amount`` is net of tax (inclusive tax subtracted) and of discounts; invoice
  ``subtotal = total - tax`` where ``tax`` is the sum of the invoice's taxes. Pricing features
  (``transform_quantity``, tiers with flat amounts, line discounts and pre-tax credits) are
  applied exactly or quarantined as :mod:`sync_core.stripe.pricing` says.
  Every money column is then converted from Stripe's minor unit to ISO 4217's
  (``sync_core.stripe.currencies``: ISK and UGX / 100, MGA x 100); an amount with no exact
  equivalent is quarantined under ``stripe_minor_units`` with the field named, never rounded.
- Payments: one row per settlement, keyed by the PaymentIntent id when there is one, else the
  charge id, else the payment record id, whichever of its charges, payment intents and
  invoice payments are in hand (:mod:`sync_core.stripe.payments`); a dispute's
  ``payment_id`` is its settlement's id.
- Entity: ``entity_of(obj)`` (default ``metadata.legal_entity``), else ``default_entity``;
  lines take their document's entity, payments their invoice's entity when it is known.
- FX: ``metadata.fx_rate`` when present, else ``fx_rates(currency, functional, date)`` when the
  entity's functional currency is known (``functional_currency``) and differs, else ``"1"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

import pandas as pd

from sync_core.contracts.models import FX_RATE
from sync_core.contracts.validate import DEFAULT_OWNER, EXCEPTION_COLUMNS, OWNER
from sync_core.filedrop import file_columns
from sync_core.stripe.currencies import RULE_MINOR_UNITS, InexactAmount, iso_row
from sync_core.stripe.disputes import balance_applied, closed_at_from_events, dispute_row
from sync_core.stripe.payments import Payments, succeeded_times
from sync_core.stripe.pricing import PriceError, contract_terms, line_credits

DAY_S = 86_400
RULE_REQUIRED = "stripe_required_field"
RULE_UNSUPPORTED = "stripe_unsupported"
NOTE_COLUMNS = ["object_type", "source_id", "kind", "message"]
OBJECTS = (
    "customers",
    "subscription_contracts",
    "usage_events",
    "invoices",
    "invoice_lines",
    "credit_notes",
    "credit_note_lines",
    "payments",
    "disputes",
)
_FX = re.compile(FX_RATE)

EntityOf = Callable[[Mapping], "str | None"]
FxRates = Callable[[str, str, pd.Timestamp], "str | None"]


# --------------------------------------------------------------------------------- results


def _empty(object_name: str) -> pd.DataFrame:
    return _frame(object_name, [])


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in EXCEPTION_COLUMNS}).astype(
        {"period": "datetime64[ns, UTC]"}
    )


def _empty_notes() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in NOTE_COLUMNS})


@dataclass
class Normalized:
    """Canonical frames (without ``period``), the quarantine and the notes of one run."""

    customers: pd.DataFrame = field(default_factory=lambda: _empty("customers"))
    subscription_contracts: pd.DataFrame = field(
        default_factory=lambda: _empty("subscription_contracts")
    )
    usage_events: pd.DataFrame = field(default_factory=lambda: _empty("usage_events"))
    invoices: pd.DataFrame = field(default_factory=lambda: _empty("invoices"))
    invoice_lines: pd.DataFrame = field(default_factory=lambda: _empty("invoice_lines"))
    credit_notes: pd.DataFrame = field(default_factory=lambda: _empty("credit_notes"))
    credit_note_lines: pd.DataFrame = field(default_factory=lambda: _empty("credit_note_lines"))
    payments: pd.DataFrame = field(default_factory=lambda: _empty("payments"))
    disputes: pd.DataFrame = field(default_factory=lambda: _empty("disputes"))
    quarantine: pd.DataFrame = field(default_factory=_empty_quarantine)
    notes: pd.DataFrame = field(default_factory=_empty_notes)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The canonical objects only: {object name: frame}."""
        return {name: getattr(self, name) for name in OBJECTS}

    def merge(self, other: Normalized) -> Normalized:
        out = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            out[f.name] = a if b.empty else b if a.empty else pd.concat([a, b], ignore_index=True)
        return Normalized(**out)


# --------------------------------------------------------------------------------- helpers


class _Bad(Exception):
    """A record that cannot become a canonical row."""

    def __init__(self, field: str, problem: str = "required field is missing", rule=RULE_REQUIRED):
        self.field, self.problem, self.rule = field, problem, rule
        super().__init__(f"{field}: {problem}")


def _dig(obj: Any, path: str) -> Any:
    """``obj['a']['b']`` for ``path='a.b'``; ``None`` as soon as a step is not a dict."""
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _req(obj: Any, path: str) -> Any:
    v = _dig(obj, path)
    if v is None or v == "":
        raise _Bad(path)
    return v


def _ref(v: Any) -> str | None:
    """An id whether the field is unexpanded (``"cus_1"``) or expanded (``{"id": ...}``)."""
    if v is None:
        return None
    if isinstance(v, Mapping):
        v = v.get("id")
    return str(v) if v not in (None, "") else None


def _int(v: Any, name: str) -> int:
    if v is None or v == "":
        raise _Bad(name)
    if isinstance(v, bool):
        raise _Bad(name, f"expected an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            d = None
        if d is not None and d.is_finite() and d == d.to_integral_value():
            return int(d)
    raise _Bad(name, f"expected an integer, got {v!r}")


def _opt_int(v: Any, name: str) -> int | None:
    return None if v is None else _int(v, name)


def _epoch(v: Any, name: str) -> int:
    """Epoch seconds (Stripe timestamps are integers)."""
    return _int(v, name)


def _ccy(v: Any, name: str = "currency") -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad(name)
    return v.strip().upper()


def _sum_amounts(items: Any, name: str) -> int:
    if not isinstance(items, list):
        return 0
    return sum(_int(_dig(x, "amount"), f"{name}[].amount") for x in items)


def _month(epoch: int | None) -> pd.Timestamp:
    if epoch is None:
        return pd.NaT
    ts = pd.Timestamp(int(epoch), unit="s", tz="UTC")
    return pd.Timestamp(year=ts.year, month=ts.month, day=1, tz="UTC")


def metadata_entity(obj: Mapping) -> str | None:
    """The default ``entity_of``: ``metadata.legal_entity``."""
    v = _dig(obj, "metadata.legal_entity")
    return str(v) if v not in (None, "") else None


def same_currency_rate(currency: str, functional: str, date: pd.Timestamp) -> str | None:
    """The default ``fx_rates``: ``"1"`` for equal currencies, unknown otherwise."""
    return "1" if currency == functional else None


def _frame(object_name: str, rows: list[dict]) -> pd.DataFrame:
    """Rows -> a frame typed like ``filedrop.read_object`` (timestamps from epoch seconds)."""
    specs = file_columns(object_name)
    cols = [s.name for s in specs]
    df = pd.DataFrame.from_records(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
    out = {}
    for s in specs:
        col = df[s.name]
        if s.kind == "timestamp":
            out[s.name] = pd.to_datetime(
                pd.array(col.tolist(), dtype="Int64"), unit="s", utc=True
            ).as_unit("ns")
        elif s.kind == "int":
            out[s.name] = pd.array(col.tolist(), dtype="Int64")
        elif s.kind == "bool":
            out[s.name] = pd.array(col.tolist(), dtype="boolean")
        else:
            out[s.name] = col.astype(object).where(col.notna(), None)
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


class _Run:
    """Collects rows, quarantine and notes for one normalization."""

    def __init__(
        self,
        entity_of: EntityOf | None = None,
        default_entity: str | None = None,
        fx_rates: FxRates | None = None,
        functional_currency: Mapping[str, str] | None = None,
        metered_prices: Iterable[str] | None = None,
        metered_items: Iterable[str] | None = None,
    ):
        self.entity_of = entity_of or metadata_entity
        self.default_entity = default_entity
        self.fx_rates = fx_rates or same_currency_rate
        self.functional = dict(functional_currency or {})
        self.metered_prices = set(metered_prices or ())
        self.metered_items = set(metered_items or ())
        self.rows: dict[str, list[dict]] = {name: [] for name in OBJECTS}
        self.quarantine: list[dict] = []
        self.notes: list[dict] = []
        # links filled while normalizing, used by later objects
        self.invoice_info: dict[str, tuple[str, str]] = {}  # invoice -> (entity, customer)
        self.charge_info: dict[str, dict] = {}  # charge / payment id -> {invoice, customer}
        self.refund_credit_note: dict[str, str] = {}  # refund id -> credit note id
        self.payments: Payments | None = None  # sync_core.stripe.payments, set by normalize_all

    # -- bookkeeping
    def bad(self, object_type, source_id, entity, epoch, exc: _Bad | str, rule=None) -> None:
        if isinstance(exc, _Bad):
            message = f"{exc.field}: {exc.problem}"
            rule = rule or exc.rule
        else:
            message = str(exc)
        self.quarantine.append(
            {
                "entity_id": entity,
                "period": _month(epoch),
                "object_type": object_type,
                "source_id": source_id,
                "rule": rule or RULE_REQUIRED,
                "message": message,
                "owner": OWNER.get(object_type, DEFAULT_OWNER),
            }
        )

    def note(self, object_type, source_id, kind, message) -> None:
        self.notes.append(
            {"object_type": object_type, "source_id": source_id, "kind": kind, "message": message}
        )

    def entity(self, obj: Mapping, fallback: str | None = None) -> str:
        """``entity_of(obj)``, else ``fallback`` (the parent document's), else the default."""
        try:
            e = self.entity_of(obj)
        except Exception:  # noqa: BLE001 - a failing resolver is a missing entity
            e = None
        e = e or fallback or self.default_entity
        if not e:
            raise _Bad("metadata.legal_entity", "no legal entity (and no default entity)")
        return str(e)

    def iso(self, object_name: str, row: dict) -> dict:
        """``row`` with its money in ISO 4217 minor units (Stripe's special cases)."""
        try:
            return iso_row(object_name, row)
        except InexactAmount as exc:
            raise _Bad(exc.field, exc.problem, RULE_MINOR_UNITS) from None

    def fx(self, obj: Mapping, currency: str, entity: str, when: int) -> str:
        meta = _dig(obj, "metadata.fx_rate")
        if meta not in (None, ""):
            if not _FX.match(str(meta)):
                raise _Bad("metadata.fx_rate", f"not a positive decimal: {meta!r}")
            return str(meta)
        functional = self.functional.get(entity)
        if functional is None or functional == currency:
            return "1"
        rate = self.fx_rates(currency, functional, pd.Timestamp(when, unit="s", tz="UTC"))
        if rate in (None, ""):
            raise _Bad("fx_rate", f"no {currency}->{functional} rate for entity {entity}")
        return str(rate)

    def result(self) -> Normalized:
        out = {name: _frame(name, rows) for name, rows in self.rows.items()}
        q = pd.DataFrame(self.quarantine, columns=EXCEPTION_COLUMNS) if self.quarantine else None
        if q is not None:
            q["period"] = pd.to_datetime(q["period"], utc=True)
        notes = pd.DataFrame(self.notes, columns=NOTE_COLUMNS) if self.notes else None
        return Normalized(
            **out,
            quarantine=q if q is not None else _empty_quarantine(),
            notes=notes if notes is not None else _empty_notes(),
        )

    # ----------------------------------------------------------------------------- objects

    def customer(self, c: Mapping) -> None:
        cid, entity, created = _ref(_dig(c, "id")), None, _dig(c, "created")
        try:
            if cid is None:
                raise _Bad("id")
            if c.get("deleted"):
                self.note("customers", cid, "skipped", "deleted customer")
                return
            entity = self.entity(c)
            erp = _dig(c, "metadata.erp_customer_id") or _dig(c, "metadata.netsuite_id")
            country = _dig(c, "address.country") or _dig(c, "shipping.address.country")
            if not country:
                raise _Bad("address.country")
            self.rows["customers"].append(
                {
                    "entity_id": entity,
                    "customer_id": cid,
                    "name": _req(c, "name"),
                    "email": c.get("email") or None,
                    "country": str(country).upper(),
                    "currency": _ccy(c.get("currency")),
                    "erp_customer_id": str(erp) if erp not in (None, "") else None,
                    "created_at": _epoch(c.get("created"), "created"),
                }
            )
        except _Bad as exc:
            self.bad("customers", cid, entity, _safe_epoch(created), exc)

    def subscription(self, s: Mapping) -> None:
        sid, entity = _ref(_dig(s, "id")), None
        start = _safe_epoch(_dig(s, "start_date") or _dig(s, "created"))
        try:
            if sid is None:
                raise _Bad("id")
            entity = self.entity(s)
            customer = _ref(_req(s, "customer"))
            items = _dig(s, "items.data")
            if not isinstance(items, list):
                raise _Bad("items.data")
            if _dig(s, "items.has_more"):
                raise _Bad("items.has_more", "the item list is incomplete (page it first)")
        except _Bad as exc:
            self.bad("subscription_contracts", sid, entity, start, exc)
            return
        for item in items:
            iid = _ref(_dig(item, "id"))
            created = _safe_epoch(_dig(item, "created")) or start
            try:
                if iid is None:
                    raise _Bad("items.data[].id")
                price = item.get("price") if isinstance(item.get("price"), Mapping) else None
                plan = item.get("plan") if isinstance(item.get("plan"), Mapping) else None
                if price is None and plan is None:
                    raise _Bad("price")
                p = price or {}
                interval = _dig(p, "recurring.interval") or _dig(plan, "interval")
                count = _dig(p, "recurring.interval_count") or _dig(plan, "interval_count") or 1
                if interval is None:
                    raise _Bad("price.recurring.interval")
                if _int(count, "price.recurring.interval_count") != 1:
                    raise _Bad(
                        "price.recurring.interval_count",
                        f"every {count} {interval}s cannot be expressed (month or year only)",
                        RULE_UNSUPPORTED,
                    )
                usage = _dig(p, "recurring.usage_type") or _dig(plan, "usage_type")
                metered = usage == "metered"
                qty = item.get("quantity")
                if qty is None and metered:
                    qty = 0  # metered items carry no quantity
                product = _ref(p.get("product")) or _ref(_dig(plan, "product"))
                if product is None:
                    raise _Bad("price.product")
                terms = _priced(contract_terms, price, plan, _int(qty, "quantity"), metered)
                if terms.note:
                    self.note("subscription_contracts", iid, "adjusted", terms.note)
                row = self.iso(
                    "subscription_contracts",
                    {
                        "entity_id": entity,
                        "contract_id": iid,
                        "version": 1,
                        "customer_id": customer,
                        "amendment_type": "new",
                        "effective_at": _epoch(created, "items.data[].created"),
                        "plan_id": product,
                        "price_id": _ref(p.get("id")) or _ref(_req(plan, "id")),
                        "interval": str(interval),
                        "unit_amount": terms.unit_amount,
                        "quantity": terms.quantity,
                        "currency": _ccy(p.get("currency") or s.get("currency")),
                        "metered": metered,
                    },
                )
                self.rows["subscription_contracts"].append(row)
            except _Bad as exc:
                self.bad("subscription_contracts", iid or sid, entity, created, exc)

    def invoice(self, inv: Mapping) -> None:
        iid, entity = _ref(_dig(inv, "id")), None
        fin = _safe_epoch(_dig(inv, "status_transitions.finalized_at"))
        try:
            if iid is None:
                raise _Bad("id")
            if inv.get("deleted"):
                self.note("invoices", iid, "skipped", "deleted invoice (drafts only)")
                return
            status = _req(inv, "status")
            if status == "draft":
                self.note("invoices", iid, "skipped", "draft invoice: not finalized")
                return
            entity = self.entity(inv)
            currency = _ccy(inv.get("currency"))
            customer = _ref(_req(inv, "customer"))
            finalized = _epoch(_dig(inv, "status_transitions.finalized_at"), "finalized_at")
            voided = _opt_int(_dig(inv, "status_transitions.voided_at"), "voided_at")
            sub = _ref(inv.get("subscription")) or _ref(
                _dig(inv, "parent.subscription_details.subscription")
            )
            if isinstance(inv.get("total_taxes"), list):  # basil
                tax = _sum_amounts(inv["total_taxes"], "total_taxes")
            elif inv.get("tax") is not None:  # legacy
                tax = _int(inv["tax"], "tax")
            else:
                tax = _sum_amounts(inv.get("total_tax_amounts"), "total_tax_amounts")
            total = _int(inv.get("total"), "total")
            lines = _dig(inv, "lines.data")
            if not isinstance(lines, list):
                raise _Bad("lines.data")
            if _dig(inv, "lines.has_more"):
                raise _Bad("lines.has_more", "the line list is incomplete (page it first)")
            row = {
                "entity_id": entity,
                "invoice_id": iid,
                "number": inv.get("number") or None,
                "customer_id": customer,
                "subscription_id": sub,
                "currency": currency,
                "status": str(status),
                "finalized_at": finalized,
                "voided_at": voided,
                "subtotal": total - tax,
                "tax": tax,
                "total": total,
                "fx_rate": self.fx(inv, currency, entity, finalized),
                "uncollectible_at": _opt_int(
                    _dig(inv, "status_transitions.marked_uncollectible_at"),
                    "status_transitions.marked_uncollectible_at",
                ),
                "balance_applied": balance_applied(inv, _int),
            }
            row = self.iso("invoices", row)
        except _Bad as exc:
            self.bad("invoices", iid, entity, fin, exc)
            return
        self.invoice_info[iid] = (entity, customer)
        self._document("invoices", "invoice_lines", row, lines, self.invoice_line, finalized)

    def _document(self, header_type, line_type, row, lines, read_line, epoch=None) -> None:
        """A document is kept whole or quarantined whole: a line that cannot be read
        quarantines its header (``lines_valid``) and its other lines (``header_quarantined``),
        as the contract's document rules do."""
        sid_col = {"invoices": "invoice_id", "credit_notes": "credit_note_id"}[header_type]
        line_id = {"invoice_lines": "line_key", "credit_note_lines": "credit_note_line_id"}
        epoch = epoch if epoch is not None else row.get("issued_at")
        good, failed = [], 0
        for ln in lines:
            r = read_line(ln, row)
            if r is None:
                failed += 1
            else:
                good.append(r)
        if not failed:
            self.rows[header_type].append(row)
            self.rows[line_type].extend(good)
            return
        self.bad(
            header_type,
            row[sid_col],
            row["entity_id"],
            epoch,
            f"{failed} of its {len(lines)} lines could not be read from Stripe",
            rule="lines_valid",
        )
        for r in good:
            self.bad(
                line_type,
                r[line_id[line_type]],
                row["entity_id"],
                epoch,
                f"its document {row[sid_col]} was quarantined",
                rule="header_quarantined",
            )

    def invoice_line(self, ln: Mapping, inv: Mapping) -> dict | None:
        lid = _ref(_dig(ln, "id"))
        key = f"{inv['invoice_id']}/{lid}"
        try:
            if lid is None:
                raise _Bad("id")
            parent = ln.get("parent")
            ptype = _dig(parent, "type")
            if ptype:  # basil: nested parent
                if ptype == "subscription_item_details":
                    d = parent.get("subscription_item_details") or {}
                    sub, item = _ref(d.get("subscription")), _ref(d.get("subscription_item"))
                    kind = "invoiceitem" if d.get("invoice_item") else "subscription"
                elif ptype == "invoice_item_details":
                    d = parent.get("invoice_item_details") or {}
                    sub, item, kind = _ref(d.get("subscription")), None, "invoiceitem"
                else:
                    raise _Bad("parent.type", f"unknown parent type {ptype!r}", RULE_UNSUPPORTED)
                proration = d.get("proration")
                proration_field = f"parent.{ptype}.proration"
            else:  # legacy flat shape
                kind = _req(ln, "type")
                if kind not in ("subscription", "invoiceitem"):
                    raise _Bad("type", f"unknown line type {kind!r}", RULE_UNSUPPORTED)
                sub, item = _ref(ln.get("subscription")), _ref(ln.get("subscription_item"))
                proration, proration_field = ln.get("proration"), "proration"
            if not isinstance(proration, bool):
                raise _Bad(proration_field)
            price = ln.get("price") if isinstance(ln.get("price"), Mapping) else None
            plan = ln.get("plan") if isinstance(ln.get("plan"), Mapping) else None
            price_id = (
                _ref(_dig(ln, "pricing.price_details.price"))
                or _ref(ln.get("price"))
                or _ref(ln.get("plan"))
            )
            product = (
                _ref(_dig(ln, "pricing.price_details.product"))
                or _ref(_dig(price, "product"))
                or _ref(_dig(plan, "product"))
            )
            if product is None:
                raise _Bad("pricing.price_details.product")
            metered = (
                _dig(price, "recurring.usage_type") == "metered"
                or _dig(plan, "usage_type") == "metered"
                or (price_id is not None and price_id in self.metered_prices)
                or (item is not None and item in self.metered_items)
            )
            if kind == "subscription" and metered:
                kind = "usage"
            # taxes: basil taxes[] (tax_behavior) or legacy tax_amounts[] (inclusive)
            tax = inclusive_tax = 0
            inclusive = False
            if isinstance(ln.get("taxes"), list):
                for t in ln["taxes"]:
                    a = _int(_dig(t, "amount"), "taxes[].amount")
                    tax += a
                    if _dig(t, "tax_behavior") == "inclusive":
                        inclusive, inclusive_tax = True, inclusive_tax + a
            elif isinstance(ln.get("tax_amounts"), list):
                for t in ln["tax_amounts"]:
                    a = _int(_dig(t, "amount"), "tax_amounts[].amount")
                    tax += a
                    if _dig(t, "inclusive") is True:
                        inclusive, inclusive_tax = True, inclusive_tax + a
            if not inclusive and _dig(price, "tax_behavior") == "inclusive":
                inclusive = True
            credits = _priced(line_credits, ln)  # discounts (sync_core.stripe.pricing)
            amount = _int(ln.get("amount"), "amount") - credits - inclusive_tax
            start = _epoch(_dig(ln, "period.start"), "period.start")
            end = _epoch(_dig(ln, "period.end"), "period.end")
            if start == end:
                end = start + DAY_S
                self.note(
                    "invoice_lines",
                    key,
                    "adjusted",
                    "period.start == period.end (one-off item): service period set to one day "
                    "[start, start + 1 day)",
                )
            return self.iso(
                "invoice_lines",
                {
                    "entity_id": inv["entity_id"],
                    "line_key": key,
                    "line_id": lid,
                    "invoice_id": inv["invoice_id"],
                    "subscription_id": sub,
                    "subscription_item_id": item,
                    "product_id": product,
                    "line_type": kind,
                    "proration": proration,
                    "quantity": _int(ln.get("quantity"), "quantity"),
                    "amount": amount,
                    "tax_amount": tax,
                    "tax_behavior": "inclusive" if inclusive else "exclusive",
                    "currency": _ccy(ln.get("currency") or inv["currency"]),
                    "period_start": start,
                    "period_end": end,
                },
            )
        except _Bad as exc:
            self.bad("invoice_lines", key, inv["entity_id"], inv["finalized_at"], exc)
            return None

    def credit_note(self, cn: Mapping) -> None:
        cid, entity = _ref(_dig(cn, "id")), None
        issued = _safe_epoch(_dig(cn, "effective_at") or _dig(cn, "created"))
        try:
            if cid is None:
                raise _Bad("id")
            invoice = _ref(_req(cn, "invoice"))
            info = self.invoice_info.get(invoice)
            entity = self.entity(cn, info[0] if info else None)
            currency = _ccy(cn.get("currency"))
            kind = _req(cn, "type")
            if kind not in ("pre_payment", "post_payment"):
                raise _Bad("type", f"{kind!r} cannot be expressed", RULE_UNSUPPORTED)
            status = _req(cn, "status")
            total = _int(cn.get("total"), "total")
            if isinstance(cn.get("total_taxes"), list):
                tax = _sum_amounts(cn["total_taxes"], "total_taxes")
            else:
                tax = _sum_amounts(cn.get("tax_amounts"), "tax_amounts")
            refunds = cn.get("refunds")
            if isinstance(refunds, list):  # basil: [{refund, amount_refunded}]
                refund = sum(_int(_dig(r, "amount_refunded"), "refunds[].amount") for r in refunds)
                for r in refunds:
                    if _ref(_dig(r, "refund")):
                        self.refund_credit_note[_ref(r["refund"])] = cid
            elif _ref(cn.get("refund")):  # legacy: one refund id, amount on the refund
                rid = _ref(cn.get("refund"))
                self.refund_credit_note[rid] = cid
                refund = (
                    _int(_dig(cn, "refund.amount"), "refund.amount")
                    if isinstance(cn.get("refund"), Mapping)
                    else _int(_dig(cn, "metadata.refund_amount"), "refund.amount (expand refund)")
                )
            else:
                refund = 0
            oob = _int(cn.get("out_of_band_amount") or 0, "out_of_band_amount")
            # Stripe has no credit-balance amount on the note: after payment it is the rest
            balance = total - refund - oob if kind == "post_payment" else 0
            customer = _ref(cn.get("customer")) or (info[1] if info else None)
            if customer is None:
                raise _Bad("customer")
            lines = _dig(cn, "lines.data")
            if lines is None:
                lines = []
            if not isinstance(lines, list):
                raise _Bad("lines.data")
            if _dig(cn, "lines.has_more"):
                raise _Bad("lines.has_more", "the line list is incomplete (page it first)")
            row = {
                "entity_id": entity,
                "credit_note_id": cid,
                "invoice_id": invoice,
                "customer_id": customer,
                "currency": currency,
                "type": kind,
                "status": str(status),
                "issued_at": _epoch(cn.get("effective_at") or cn.get("created"), "created"),
                "voided_at": _opt_int(cn.get("voided_at"), "voided_at"),
                "subtotal": total - tax,
                "tax": tax,
                "total": total,
                "refund_amount": refund,
                "credit_balance_amount": balance,
                "out_of_band_amount": oob,
                "reason": cn.get("reason") or None,
            }
            row = self.iso("credit_notes", row)
        except _Bad as exc:
            self.bad("credit_notes", cid, entity, issued, exc)
            return
        self._document("credit_notes", "credit_note_lines", row, lines, self.credit_note_line)

    def credit_note_line(self, ln: Mapping, cn: Mapping) -> dict | None:
        lid = _ref(_dig(ln, "id"))
        try:
            if lid is None:
                raise _Bad("id")
            kind = ln.get("type")
            il = _ref(ln.get("invoice_line_item"))
            if kind == "invoice_line_item" and il is None:
                raise _Bad("invoice_line_item")
            if isinstance(ln.get("taxes"), list):
                taxes, behavior = ln["taxes"], "tax_behavior"
            else:
                taxes, behavior = ln.get("tax_amounts") or [], "inclusive"
            tax = inclusive_tax = 0
            for t in taxes if isinstance(taxes, list) else []:
                a = _int(_dig(t, "amount"), "taxes[].amount")
                tax += a
                if _dig(t, behavior) in ("inclusive", True):
                    inclusive_tax += a
            credits = _priced(line_credits, ln, single_discount=True)
            return self.iso(
                "credit_note_lines",
                {
                    "entity_id": cn["entity_id"],
                    "credit_note_line_id": lid,
                    "credit_note_id": cn["credit_note_id"],
                    "invoice_line_key": f"{cn['invoice_id']}/{il}" if il else None,
                    "amount": _int(ln.get("amount"), "amount") - credits - inclusive_tax,
                    "tax_amount": tax,
                    "currency": cn["currency"],
                },
            )
        except _Bad as exc:
            self.bad("credit_note_lines", lid, cn["entity_id"], cn["issued_at"], exc)
            return None

    def dispute(self, d: Mapping, closed: Mapping[str, int]) -> None:
        """A dispute -> ``disputes`` (rules in :mod:`sync_core.stripe.disputes`)."""
        did, created = _ref(_dig(d, "id")), _safe_epoch(_dig(d, "created"))
        try:
            row = dispute_row(self, d, closed, _HELPERS)
            if self.payments is not None:  # the disputed settlement's canonical id
                pid = self.payments.settlement_of(
                    _ref(d.get("charge")), _ref(d.get("payment_intent"))
                )
                row["payment_id"] = pid or row["payment_id"]
            self.rows["disputes"].append(row)
        except _Bad as exc:
            self.bad("disputes", did, None, created, exc)

    def meter_event(self, ev: Mapping, items: Mapping[str, list[tuple]]) -> None:
        """A billing meter event -> usage event. The subscription item comes from
        ``payload.subscription_item`` or, failing that, from the customer's only metered
        item (``items``: customer -> [(entity, subscription, item)])."""
        eid, ts = _ref(_dig(ev, "identifier")), _safe_epoch(_dig(ev, "timestamp"))
        entity = None
        try:
            if eid is None:
                raise _Bad("identifier")
            payload = ev.get("payload") or {}
            customer = _ref(payload.get("stripe_customer_id") or payload.get("customer"))
            if customer is None:
                raise _Bad("payload.stripe_customer_id")
            item = _ref(payload.get("subscription_item"))
            candidates = items.get(customer, [])
            match = [c for c in candidates if item is None or c[2] == item]
            if len(match) != 1:
                raise _Bad(
                    "payload.subscription_item",
                    f"{len(match)} metered subscription items match customer {customer}",
                )
            entity, sub, item = match[0]
            self.rows["usage_events"].append(
                {
                    "entity_id": entity,
                    "event_id": eid,
                    "customer_id": customer,
                    "subscription_id": sub,
                    "subscription_item_id": item,
                    "metric": _req(ev, "event_name"),
                    "quantity": _int(payload.get("value"), "payload.value"),
                    "timestamp": _epoch(ev.get("timestamp"), "timestamp"),
                }
            )
        except _Bad as exc:
            self.bad("usage_events", eid, entity, ts, exc)


def _priced(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` of :mod:`sync_core.stripe.pricing`, a refusal as a bad record."""
    try:
        return fn(*args, **kwargs)
    except PriceError as exc:
        rule = RULE_UNSUPPORTED if exc.unsupported else RULE_REQUIRED
        raise _Bad(exc.field, exc.problem, rule) from None


def _safe_epoch(v: Any) -> int | None:
    try:
        return None if v is None else _int(v, "t")
    except _Bad:
        return None


_HELPERS = SimpleNamespace(
    Bad=_Bad, ref=_ref, dig=_dig, req=_req, int=_int, ccy=_ccy, epoch=_epoch,
    safe_epoch=_safe_epoch, rule_minor_units=RULE_MINOR_UNITS,
    rule_unsupported=RULE_UNSUPPORTED,
)  # fmt: skip


def _guard(run: _Run, object_type: str, obj: Any, fn: Callable[[], None]) -> None:
    """Run one record's normalization; an unexpected shape is quarantined, never raised."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - a malformed record must not stop the run
        sid = _ref(obj.get("id")) if isinstance(obj, Mapping) else None
        run.bad(object_type, sid, None, None, f"unreadable record: {type(exc).__name__}: {exc}")


def metered_from_subscriptions(subscriptions: Iterable[Mapping]) -> tuple[set[str], set[str]]:
    """(metered price ids, metered subscription item ids) of the given subscriptions."""
    prices, items = set(), set()
    for s in subscriptions:
        for it in _dig(s, "items.data") or []:
            usage = _dig(it, "price.recurring.usage_type") or _dig(it, "plan.usage_type")
            if usage == "metered":
                if _ref(_dig(it, "price.id")):
                    prices.add(_ref(it["price"]["id"]))
                if _ref(_dig(it, "id")):
                    items.add(_ref(it["id"]))
    return prices, items


def objects_from_events(events: Iterable[Mapping]) -> dict[str, list[dict]]:
    """``data.object`` of each event, the latest event per object id winning (by ``created``,
    then event id), grouped by the object's ``object`` type."""
    latest: dict[tuple[str, str], tuple[int, str, dict]] = {}
    for ev in events:
        obj = _dig(ev, "data.object")
        if not isinstance(obj, Mapping) or not obj.get("id") or not obj.get("object"):
            continue
        k = (str(obj["object"]), str(obj["id"]))
        rank = (_safe_epoch(ev.get("created")) or 0, str(ev.get("id") or ""))
        if k not in latest or rank >= latest[k][:2]:
            latest[k] = (*rank, dict(obj))
    out: dict[str, list[dict]] = {}
    for (otype, _), (_, _, obj) in sorted(latest.items()):
        out.setdefault(otype, []).append(obj)
    return out


# --------------------------------------------------------------------------------- public API


def normalize_customers(customers: Iterable[Mapping], **options) -> Normalized:
    """Customers -> ``customers``; options as :func:`normalize_all`."""
    return normalize_all(customers=customers, **options)


def normalize_subscriptions(subscriptions: Iterable[Mapping], **options) -> Normalized:
    """Subscriptions with their items -> ``subscription_contracts``: one row per item,
    version 1, ``new`` (the list API gives the current state, not the amendment history)."""
    return normalize_all(subscriptions=subscriptions, **options)


def normalize_invoices(invoices: Iterable[Mapping], **options) -> Normalized:
    """Invoices with all their lines -> ``invoices`` + ``invoice_lines``. The nested line
    shape names the price only by id: pass ``metered_prices`` / ``metered_items`` (see
    :func:`metered_from_subscriptions`), or ``subscriptions``, to tell usage lines apart."""
    return normalize_all(invoices=invoices, **options)


def normalize_credit_notes(credit_notes: Iterable[Mapping], **options) -> Normalized:
    """Credit notes with their lines -> ``credit_notes`` + ``credit_note_lines``."""
    return normalize_all(credit_notes=credit_notes, **options)


def normalize_payments(
    invoice_payments: Iterable[Mapping] = (),
    charges: Iterable[Mapping] = (),
    refunds: Iterable[Mapping] = (),
    payment_intents: Iterable[Mapping] = (),
    **options,
) -> Normalized:
    """Charges, payment intents and invoice payments -> kind ``payment``, one row per
    settlement (:mod:`sync_core.stripe.payments`); refunds -> kind ``refund``."""
    return normalize_all(
        invoice_payments=invoice_payments,
        charges=charges,
        refunds=refunds,
        payment_intents=payment_intents,
        **options,
    )


def normalize_meter_events(
    meter_events: Iterable[Mapping], subscriptions: Iterable[Mapping] = (), **options
) -> Normalized:
    """Billing meter events -> ``usage_events`` (items resolved through ``subscriptions``)."""
    return normalize_all(meter_events=meter_events, subscriptions=subscriptions, **options)


def normalize_all(
    *,
    customers: Iterable[Mapping] = (),
    subscriptions: Iterable[Mapping] = (),
    invoices: Iterable[Mapping] = (),
    credit_notes: Iterable[Mapping] = (),
    invoice_payments: Iterable[Mapping] = (),
    charges: Iterable[Mapping] = (),
    payment_intents: Iterable[Mapping] = (),
    refunds: Iterable[Mapping] = (),
    meter_events: Iterable[Mapping] = (),
    disputes: Iterable[Mapping] = (),
    events: Iterable[Mapping] = (),
    entity_of: EntityOf | None = None,
    default_entity: str | None = None,
    fx_rates: FxRates | None = None,
    functional_currency: Mapping[str, str] | None = None,
    metered_prices: Iterable[str] | None = None,
    metered_items: Iterable[str] | None = None,
    invoice_info: Mapping[str, tuple[str, str]] | None = None,
    payment_info: Mapping[str, tuple] | None = None,
) -> Normalized:
    """Normalize everything at once, linking the objects.

    ``events`` are unpacked with :func:`objects_from_events`; an object also passed directly
    (from a list pull) keeps the listed version. ``invoice_info`` ({invoice id: (entity,
    customer)}) links payments to invoices normalized in an earlier run; ``payment_info``
    ({payment id: (invoice id, customer id[, status])}, earlier runs' payments) links the
    objects of a settlement that do not know their invoice (:mod:`sync_core.stripe.payments`).
    """
    given = {
        "customer": list(customers),
        "subscription": list(subscriptions),
        "invoice": list(invoices),
        "credit_note": list(credit_notes),
        "invoice_payment": list(invoice_payments),
        "charge": list(charges),
        "payment_intent": list(payment_intents),
        "refund": list(refunds),
        "billing.meter_event": list(meter_events),
        "dispute": list(disputes),
    }
    events = list(events)
    run = _Run(entity_of, default_entity, fx_rates, functional_currency)
    for otype, objs in objects_from_events(events).items():
        if otype not in given:
            for o in objs:
                run.note("events", _ref(o.get("id")), "ignored", f"object {otype!r} not read")
            continue
        have = {_ref(o.get("id")) for o in given[otype] if isinstance(o, Mapping)}
        given[otype].extend(o for o in objs if _ref(o.get("id")) not in have)

    prices, items = metered_from_subscriptions(
        s for s in given["subscription"] if isinstance(s, Mapping)
    )
    run.metered_prices = prices | set(metered_prices or ())
    run.metered_items = items | set(metered_items or ())
    run.invoice_info.update(invoice_info or {})

    for c in given["customer"]:
        _guard(run, "customers", c, lambda c=c: run.customer(c))
    for s in given["subscription"]:
        _guard(run, "subscription_contracts", s, lambda s=s: run.subscription(s))
    for inv in given["invoice"]:
        _guard(run, "invoices", inv, lambda inv=inv: run.invoice(inv))
    for cn in given["credit_note"]:
        _guard(run, "credit_notes", cn, lambda cn=cn: run.credit_note(cn))
    pays = run.payments = Payments(run, _HELPERS, payment_info, succeeded_times(events))
    pays.link(given["charge"], given["payment_intent"])
    for kind in ("charge", "payment_intent", "invoice_payment"):
        for o in given[kind]:
            _guard(run, "payments", o, lambda o=o, kind=kind: pays.add(kind, o))
    pays.known_links()
    for sid in list(pays.settlements):
        _guard(run, "payments", {"id": sid}, lambda sid=sid: pays.emit(sid))
    for rf in given["refund"]:
        _guard(run, "payments", rf, lambda rf=rf: pays.refund(rf))
    closed = closed_at_from_events(events)
    for d in given["dispute"]:
        _guard(run, "disputes", d, lambda d=d: run.dispute(d, closed))
    if given["billing.meter_event"]:
        by_customer: dict[str, list[tuple]] = {}
        for s in given["subscription"]:
            if not isinstance(s, Mapping):
                continue
            try:
                ent = run.entity(s)
            except _Bad:
                ent = None
            for it in _dig(s, "items.data") or []:
                if _ref(_dig(it, "id")) in run.metered_items and ent:
                    by_customer.setdefault(_ref(s.get("customer")), []).append(
                        (ent, _ref(s.get("id")), _ref(it["id"]))
                    )
        for ev in given["billing.meter_event"]:
            _guard(run, "usage_events", ev, lambda ev=ev: run.meter_event(ev, by_customer))
    return run.result()


__all__ = [
    "NOTE_COLUMNS",
    "RULE_REQUIRED",
    "RULE_UNSUPPORTED",
    "Normalized",
    "metadata_entity",
    "metered_from_subscriptions",
    "normalize_all",
    "normalize_credit_notes",
    "normalize_customers",
    "normalize_invoices",
    "normalize_meter_events",
    "normalize_payments",
    "normalize_subscriptions",
    "objects_from_events",
    "same_currency_rate",
]
