"""``expand``: the fields whose ids the sandbox replaces by the objects they name, and the
includable fields that appear only when expanded (invoice ``payments``, price ``tiers``).

:data:`FIELDS` is the registry, per Stripe ``object``: a field path (dotted through plain
hashes, e.g. ``parent.subscription_details.subscription``) -> what it holds. A reference names
collections by URL segment and counts only when one of them is served, so collections added
to :data:`sandboxes.billing_api.catalog.COLLECTIONS` later are expanded once they are loaded.
Paths are checked before any object is read, as Stripe does: at most 4 levels
(``data.customer`` is 2), ``data`` first on a list, every last segment expandable; anything
else is ``400 This property cannot be expanded (<path>).`` with ``param: expand``. A null
field stays null, an id whose object is not in the sandbox becomes Stripe's deleted form
``{"id", "object", "deleted": true}`` (what Stripe answers for a deleted customer), and an
already embedded object is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandboxes.billing_api.catalog import COLLECTIONS
from sandboxes.billing_api.collections import EMBEDDED_LINES, ApiError

MAX_DEPTH = 4


@dataclass(frozen=True)
class Ref:
    """An id (or null) naming an object of one of ``collections`` (the first served holding
    the id); more than one is a polymorphic field, which cannot be expanded further."""

    collections: tuple[str, ...]


@dataclass(frozen=True)
class Embedded:
    """An object (or a list object, ``listed``) of ``object`` always present: not expandable
    itself, but paths go through it (``items.data.price.tiers``)."""

    object: str
    listed: bool = False


@dataclass(frozen=True)
class Related:
    """Includable list: the ``collection`` objects whose ``field`` is this object's id."""

    collection: str
    field: str


@dataclass(frozen=True)
class Tiers:
    """Includable ``tiers`` of a price, from the stored price."""


def _ref(*collections: str) -> Ref:
    return Ref(collections)


_CUSTOMER, _INVOICE, _CHARGE = _ref("customers"), _ref("invoices"), _ref("charges")
_BALANCE, _INTENT = _ref("balance_transactions"), _ref("payment_intents")
_SUB = _ref("subscriptions")

# as the SDK's types mark them ExpandableField (16.1.0); ids under ``parent`` hashes of lines
# and invoice items are plain strings there, so not here either
FIELDS: dict[str, dict[str, object]] = {
    "invoice": {
        "customer": _CUSTOMER,
        "parent.subscription_details.subscription": _SUB,
        "payments": Related("invoice_payments", "invoice"),
        "lines": Embedded("line_item", listed=True),
    },
    "line_item": {"pricing.price_details.price": _ref("prices"), "subscription": _SUB},
    "subscription": {
        "customer": _CUSTOMER,
        "latest_invoice": _INVOICE,
        "items": Embedded("subscription_item", listed=True),
    },
    "subscription_item": {"price": Embedded("price")},
    "price": {"tiers": Tiers()},
    "credit_note": {
        "customer": _CUSTOMER,
        "invoice": _INVOICE,
        "lines": Embedded("credit_note_line_item", listed=True),
    },
    "charge": {"balance_transaction": _BALANCE, "customer": _CUSTOMER, "payment_intent": _INTENT},
    "refund": {"balance_transaction": _BALANCE, "charge": _CHARGE, "payment_intent": _INTENT},
    "payment_intent": {"customer": _CUSTOMER, "latest_charge": _CHARGE},
    "invoice_payment": {
        "invoice": _INVOICE,
        "payment.charge": _CHARGE,
        "payment.payment_intent": _INTENT,
    },
    "invoiceitem": {
        "customer": _CUSTOMER,
        "invoice": _INVOICE,
        "pricing.price_details.price": _ref("prices"),
    },
    "balance_transaction": {"source": _ref("charges", "refunds", "payouts")},
    "payout": {"balance_transaction": _BALANCE},
}


def object_of(collection: str) -> str:
    """The Stripe ``object`` of a collection, also of one the catalog does not list yet
    (``prices`` live in ``BillingState.prices`` until they are a served collection)."""
    return COLLECTIONS.get(collection) or collection.removesuffix("s")


def _served(state, collection: str) -> bool:
    return collection in state.collections or (collection == "prices" and bool(state.prices))


def stored(state, collection: str, oid: str) -> dict | None:
    """The object as loaded (not rendered), or None."""
    coll = state.collections.get(collection)
    if coll is not None:
        return coll.objs.get(oid)
    return state.prices.get(oid) if collection == "prices" else None


def lookup(state, collection: str, oid: str) -> dict | None:
    """The object as served (a fresh copy, includable fields left out), or None."""
    coll = state.collections.get(collection)
    if coll is not None:
        obj = coll.rendered(oid) if oid in coll.objs else None
    else:
        obj = stored(state, collection, oid)
        obj = None if obj is None else dict(obj)
    if obj is not None and obj.get("object") == "price":
        obj.pop("tiers", None)
    return obj


def _cannot(path: str) -> ApiError:
    return ApiError(400, f"This property cannot be expanded ({path}).", param="expand")


def compile_paths(state, root: str, paths: list[str], listed: bool = False) -> dict:
    """Check ``paths`` for an object of type ``root`` (a list of them when ``listed``) and
    return them as a tree: segment -> (step, subtree)."""
    tree: dict = {}
    for path in dict.fromkeys(paths):
        segs = path.split(".")
        if len(segs) > MAX_DEPTH:
            raise ApiError(
                400, "You cannot expand more than 4 levels of a property.", param="expand"
            )
        node, kind, prefix = tree, ("list", root) if listed else root, ""
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if isinstance(kind, tuple):  # a list object: only its data go further
                if seg != "data" or last:
                    raise _cannot(path)
                step, kind = ("data",), kind[1]
            else:
                fields = FIELDS.get(kind, {}) if kind else {}
                key = prefix + seg
                spec = fields.get(key)
                prefix = ""
                if spec is None:
                    if last or not any(k.startswith(key + ".") for k in fields):
                        raise _cannot(path)
                    step, prefix = ("hash",), key + "."
                elif isinstance(spec, Ref):
                    served = [c for c in spec.collections if _served(state, c)]
                    if not served:
                        raise _cannot(path)
                    step = ("ref", tuple(served))
                    kind = object_of(served[0]) if len(spec.collections) == 1 else None
                elif isinstance(spec, Embedded):
                    if last:
                        raise _cannot(path)
                    step = ("hash",)
                    kind = ("list", spec.object) if spec.listed else spec.object
                elif isinstance(spec, Related):
                    if not _served(state, spec.collection):
                        raise _cannot(path)
                    step, kind = ("related", spec), ("list", object_of(spec.collection))
                else:  # Tiers: a plain array
                    if not last:
                        raise _cannot(path)
                    step, kind = ("tiers",), None
            node = node.setdefault(seg, (step, {}))[1]
    return tree


def _resolve(state, collections: tuple[str, ...], oid: str) -> dict:
    for name in collections:
        obj = lookup(state, name, oid)
        if obj is not None:
            return obj
    return {"id": oid, "object": object_of(collections[0]), "deleted": True}


def _related(state, obj: dict, spec: Related) -> dict:
    coll = state.collections[spec.collection]
    ids = coll.related(spec.field, str(obj.get("id")))[::-1]  # newest first
    return {
        "object": "list",
        "data": [coll.rendered(i) for i in ids[:EMBEDDED_LINES]],
        "has_more": len(ids) > EMBEDDED_LINES,
        "total_count": len(ids),
        "url": f"/v1/{spec.collection}?{spec.field}={obj.get('id')}",
    }


def apply(state, obj: dict, tree: dict) -> dict:
    """Expand ``obj`` (a fresh copy, edited in place) along a :func:`compile_paths` tree."""
    for seg, (step, sub) in tree.items():
        kind = step[0]
        if kind == "data":
            for item in obj.get("data") or []:
                if isinstance(item, dict):
                    apply(state, item, sub)
            continue
        if kind == "ref":
            value = obj.get(seg)
            if isinstance(value, str):
                value = obj[seg] = _resolve(state, step[1], value)
        elif kind == "related":
            value = obj[seg] = _related(state, obj, step[1])
        elif kind == "tiers":
            price = stored(state, "prices", str(obj.get("id"))) or {}
            if "tiers" in price:
                obj["tiers"] = price["tiers"]
            continue
        else:  # a plain hash or an embedded object
            value = obj.get(seg)
        if sub and isinstance(value, dict):
            apply(state, value, sub)
    return obj


def strip_includable(obj: dict) -> dict:
    """An object served at the top level without its includable fields (price ``tiers``)."""
    if obj.get("object") == "price" and "tiers" in obj:
        obj = {k: v for k, v in obj.items() if k != "tiers"}
    return obj
