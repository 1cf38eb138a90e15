"""The NetSuite ``journalEntry`` body of a journal, exact to the minor unit.

:func:`journal_body` turns one journal's lines (the posting log's columns: ``external_id``,
``period``, ``erp_subsidiary_id``, ``currency``, ``erp_account``, ``debit``, ``credit`` in
integer minor units, ``erp_customer_id``, ``correlation_id``, ``event``, ``document_id``,
``memo``, ``transaction_date``, ``line_no``; optionally ``department``, ``class``,
``location``) into the body docs/netsuite-rest.md describes:

- **amounts** are currency units, exact from the integer minor units with the currency's
  ISO 4217 exponent (10025 USD -> ``100.25``, 500 JPY -> ``500``, 1234 KWD -> ``1.234``),
  held as ``Decimal`` and written by :func:`dumps` as JSON numbers from the Decimal's digits,
  never through a float. Each line carries one side; a line with no amount in the
  transaction currency (an FX line, functional amounts only) is not sent, as NetSuite takes
  no zero line and computes base amounts itself;
- **references** are ``{"id": <internalId>}``: ``subsidiary``, ``currency``,
  ``postingPeriod`` and each line's ``account``, ``entity`` (customer) and ``department`` /
  ``class`` / ``location``, resolved through :class:`~sync_core.erp.internal_ids.InternalIds`;
- ``tranDate`` (the header's transaction date when it lies in the posting month, else the
  month's last day) and
  ``postingPeriod`` (the accounting period starting on the posting month's first day);
- ``memo`` on the journal and on every line; the correlation id in the entity's custom line
  field (``correlation_field`` in config/erp.yaml), or appended to the line memo as
  ``[corr <id>]`` when none is configured.

A journal whose references cannot all be resolved is not sent: :func:`journal_body` returns
an :class:`Unresolved` naming every missing reference (reason ``invalid_reference``, owner
``master_data``), or, for a posting period NetSuite reports closed, ``period_closed`` (owner
``finance``). No Dagster imports.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from sync_core.erp.internal_ids import InternalIds
from sync_core.money import exponent

CORRELATION_MEMO = "{memo} [corr {id}]"
LINE_DIMENSIONS = {"department": "departments", "class": "classes", "location": "locations"}


# --------------------------------------------------------------------------------------------
# exact amounts and their JSON


def to_amount(minor, currency: str) -> Decimal:
    """Integer minor units -> the currency's units, exactly (``10025, "USD"`` -> 100.25)."""
    if isinstance(minor, bool) or int(minor) != minor:
        raise ValueError(f"{minor!r} is not a whole number of {currency} minor units")
    return Decimal(int(minor)).scaleb(-exponent(currency))


def to_minor_units(amount, currency: str) -> int:
    """The currency's units (a Decimal, or the string or integer NetSuite answers) -> integer
    minor units, exactly; more digits than the currency has is an error, not a rounding."""
    if isinstance(amount, float):
        raise TypeError(f"amount {amount!r} is a float: parse ERP answers with Decimal")
    scaled = Decimal(str(amount).strip()).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {amount} has more decimals than {currency} allows")
    return int(scaled)


def _encode(obj) -> str:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"{obj} is not an amount")
        return format(obj, "f")
    if isinstance(obj, float):
        raise TypeError("a float in a journal body: amounts are Decimal")
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(_encode(v) for v in obj) + "]"
    return json.dumps(obj)


def dumps(body) -> bytes:
    """Compact JSON of a body whose amounts are ``Decimal``: written as numbers from their
    digits (``Decimal("100.25")`` -> ``100.25``); a float is refused."""
    return _encode(body).encode()


def loads(data):
    """JSON with every fractional number parsed as ``Decimal`` (an answer's amounts stay
    exact)."""
    return json.loads(data, parse_float=Decimal)


# --------------------------------------------------------------------------------------------
# the body


@dataclass(frozen=True)
class Unresolved:
    """A journal not sent: ``missing`` names each reference that could not be resolved (or
    why the lookups failed: ``transient`` when a later run may succeed; ``code`` NetSuite's)."""

    external_id: str
    reason: str
    owner: str
    missing: tuple[str, ...]
    code: str = "UNRESOLVED"
    transient: bool = False

    @property
    def message(self) -> str:
        return "not sent to the ERP: " + "; ".join(self.missing)


def _null(v) -> bool:
    return v is None or (not isinstance(v, str | bytes) and bool(pd.isna(v)))


def _one(records: list[dict], col: str):
    values = {None if _null(r.get(col)) else r.get(col) for r in records}
    if len(values) != 1:
        raise ValueError(f"one journal must have one {col}, got {sorted(map(str, values))}")
    return values.pop()


def journal_records(lines) -> list[list[dict]]:
    """The journals of ``lines`` (a DataFrame or dict rows) as lists of line dicts, in
    external-id order, each in ``line_no`` order when there is one."""
    if isinstance(lines, pd.DataFrame):
        if "line_no" in lines.columns:
            lines = lines.sort_values(["external_id", "line_no"], kind="stable")
        rows = lines.to_dict("records")
    else:
        rows = sorted(lines, key=lambda r: (str(r["external_id"]), r.get("line_no") or 0))
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(str(r["external_id"]), []).append(r)
    return [by_id[k] for k in sorted(by_id)]


def wanted_references(journals: list[list[dict]]) -> dict[str, set[str]]:
    """Kind -> keys the journals reference, for one batched lookup
    (:meth:`InternalIds.prefetch`)."""
    out: dict[str, set[str]] = {"accounts": set(), "currencies": set(), "subsidiaries": set(),
                                "customers": set()}  # fmt: skip
    for records in journals:
        for r in records:
            for kind, col in (("accounts", "erp_account"), ("currencies", "currency"),
                              ("subsidiaries", "erp_subsidiary_id"),
                              ("customers", "erp_customer_id")):  # fmt: skip
                if not _null(r.get(col)):
                    out[kind].add(str(r[col]))
    return out


def _minor(v, what: str) -> int:
    if _null(v):
        return 0
    if isinstance(v, float) and v != int(v):
        raise ValueError(f"{what} {v!r} is not in integer minor units")
    return int(v)


def _dates(records: list[dict]) -> tuple[dt.date, dt.date]:
    """(first day of the posting month, transaction date): the header's date when it lies in
    the posting month, else the month's last day (NetSuite refuses a ``tranDate`` outside its
    ``postingPeriod`` unless the account allows it)."""
    period = pd.Timestamp(_one(records, "period"))
    month = dt.date(period.year, period.month, 1)
    end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    tran = records[0].get("transaction_date")
    day = None if _null(tran) else pd.Timestamp(tran).date()
    return month, day if day is not None and month <= day <= end else end


def _lines_text(lines: list[int]) -> str:
    if not lines:
        return ""
    return f" (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})"


def journal_body(records: list[dict], ids: InternalIds, entity_id: str) -> dict | Unresolved:
    """The journalEntry body of one journal's lines, or what keeps it from being sent
    (module docstring). ``ids`` resolves the references for ``entity_id``; its configuration
    gives the entity's correlation field and line dimensions."""
    if not records:
        raise ValueError("a journal needs at least one line")
    eid = str(_one(records, "external_id"))
    currency = str(_one(records, "currency"))
    sub_key = _one(records, "erp_subsidiary_id")
    month, tran_date = _dates(records)
    config = ids.config
    field = config.correlation_field(entity_id)
    unknown: dict[tuple[str, str], list[int]] = {}  # (what, key) -> the lines naming it

    def ref(kind: str, key, what: str, line: int | None = None) -> dict | None:
        iid = ids.ref(entity_id, kind, key)
        if iid is None:
            unknown.setdefault((what, repr(key)), []).extend([] if line is None else [line])
            return None
        return {"id": iid}

    first = records[0]
    memo = first.get("memo")
    memo = f"{first.get('event')} {first.get('document_id')}" if _null(memo) else str(memo)
    subsidiary = ref("subsidiaries", sub_key, "subsidiary")
    cur = ref("currencies", currency, "currency")
    period = ids.period(entity_id, month)
    dims = {d: {"id": iid} for d, iid in config.dimensions(entity_id).items()}
    items = []
    for n, r in enumerate(records, 1):
        net = _minor(r.get("debit"), "debit") - _minor(r.get("credit"), "credit")
        if net == 0:
            continue  # functional amounts only (FX): NetSuite takes no zero line
        item: dict = {"account": ref("accounts", r.get("erp_account"), "account", n)}
        item["debit" if net > 0 else "credit"] = to_amount(abs(net), currency)
        corr = None if _null(r.get("correlation_id")) else str(r["correlation_id"])
        item["memo"] = CORRELATION_MEMO.format(memo=memo, id=corr) if corr and not field else memo
        if not _null(r.get("erp_customer_id")):
            item["entity"] = ref("customers", r["erp_customer_id"], "customer", n)
        line_dims = dict(dims)
        for d, kind in LINE_DIMENSIONS.items():
            if not _null(r.get(d)):
                line_dims[d] = ref(kind, r[d], d, n)
        item.update(line_dims)
        if corr and field:
            item[field] = corr
        items.append(item)
    missing = [f"{what} {key}{_lines_text(at)} has no NetSuite internal id"
               for (what, key), at in unknown.items()]  # fmt: skip
    if period is None:
        missing.append(f"no NetSuite accounting period starts on {month.isoformat()}")
    if not items:  # a posting-rule problem (e.g. a functional-only FX journal), not master data
        return Unresolved(eid, "invalid_content", "integration",
                          ("no line has an amount in the transaction currency",))  # fmt: skip
    if missing:
        return Unresolved(eid, "invalid_reference", "master_data", tuple(missing))
    if period.closed:
        return Unresolved(eid, "period_closed", "finance",
                          (f"NetSuite accounting period {period.name or period.id} "
                           f"({month:%Y-%m}) is closed",))  # fmt: skip
    return {
        "externalId": eid,
        "subsidiary": subsidiary,
        "currency": cur,
        "tranDate": tran_date.isoformat(),
        "postingPeriod": {"id": period.id},
        "memo": memo,
        "line": {"items": items},
    }


def journal_bodies(lines, ids: InternalIds, entity_id: str) -> list[dict | Unresolved]:
    """:func:`journal_body` of every journal of ``lines``, in external-id order, the
    references looked up in batches first."""
    journals = journal_records(lines)
    ids.prefetch(entity_id, wanted_references(journals))
    return [journal_body(j, ids, entity_id) for j in journals]


def line_signature(items) -> list[tuple[str, str, Decimal]]:
    """The lines of a body or of a record NetSuite returned (``line.items``), as sorted
    (account id, side, amount): two journals with the same signature post the same amounts
    to the same accounts."""
    out = []
    for i in items or []:
        account = i.get("account")
        account = str(account.get("id")) if isinstance(account, dict) else str(account)
        for side in ("debit", "credit"):
            v = i.get(side)
            if v is not None and Decimal(str(v)) != 0:
                out.append((account, side, Decimal(str(v)).normalize()))
    return sorted(out)
