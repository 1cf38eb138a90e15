"""Validation of a journalEntry body the way NetSuite validates it.

:func:`validate_journal` reads a request body (create, or update of a stored journal) and
returns the journal to store or the problems, each ``(o:errorCode, detail, o:errorPath)``:

- **shape** (``INVALID_CONTENT``): the body is an object; a reference is an object
  ``{"id": "<internal id>"}`` (a plain string or number is refused, with the field's path);
  an amount is a JSON number; ``tranDate`` an ISO date; ``line`` an object with ``items``;
- **references** (``INVALID_CONTENT``, NetSuite's documented wording "Error while accessing
  resource: You have entered an Invalid Field Value 9999 for the following field: account"):
  an id that names no record of the field's type, a period that is not a posting (monthly)
  period, a customer of another subsidiary;
- **unknown fields**: refused (``INVALID_CONTENT``) under ``X-NetSuite-PropertyNameValidation:
  Error``, else dropped; known are the journalEntry fields of ``KNOWN_BODY`` / ``KNOWN_LINE``
  and the account's custom line fields;
- **business rules** (``USER_ERROR``): subsidiary and at least one line present ("Please enter
  value(s) for: Subsidiary", "You must enter at least one line item for this transaction."),
  amounts positive with at most the currency's decimals, a debit or a credit per line and not
  both, debits equal to credits ("The debit and credit totals must be equal."), the posting
  period neither closed nor locked for the subsidiary (the detail names the period, and a
  stored journal in such a period cannot be changed either) and, when the account disallows
  it, ``tranDate`` inside the posting period.

Defaults as NetSuite's: ``currency`` the subsidiary's, ``tranDate`` today, ``postingPeriod``
the month of ``tranDate``. On an update the body's fields replace the stored ones; its lines
are **appended** to the stored lines unless ``replace_lines`` (``?replace=line``); the merged
journal must balance. Amounts are kept as exact ``Decimal``; the subsidiary-currency amounts
are the same when the journal is in the subsidiary's currency, ``amount x exchangeRate``
(half up to the subsidiary currency's decimals) when the body gives a rate, else unknown.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

from sandboxes.erp_server.config import FaultConfig
from sandboxes.erp_server.master import MasterData
from sandboxes.erp_server.wire import Problem

EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
KNOWN_BODY = frozenset({"externalId", "tranId", "tranDate", "postingPeriod", "subsidiary",
                        "currency", "exchangeRate", "memo", "approved", "reversalDate",
                        "reversalDefer", "customForm", "department", "class", "location",
                        "line"})  # fmt: skip
KNOWN_LINE = frozenset({"line", "account", "debit", "credit", "memo", "entity", "department",
                        "class", "location"})  # fmt: skip
HEAD_REFS = {"department": "department", "class": "classification", "location": "location"}
LINE_REFS = {"entity": "customer", **HEAD_REFS}
REF_KEYS = frozenset({"id", "refName", "links"})


def _kind(v) -> str:
    return "null" if v is None else {bool: "a boolean", str: "a string", list: "a list",
                                     dict: "an object"}.get(type(v), "a number")  # fmt: skip


class _Check:
    def __init__(self, master: MasterData, strict: bool):
        self.master, self.strict = master, strict
        self.problems: list[Problem] = []

    def add(self, code: str, detail: str, path: str | None = None) -> None:
        self.problems.append((code, detail, path))

    def unknown(self, obj: dict, known, prefix: str) -> None:
        for key in obj:
            if key not in known and self.strict:
                self.add("INVALID_CONTENT", f"Invalid field name '{key}': journalEntry has no "
                         "such field (X-NetSuite-PropertyNameValidation is Error).",
                         f"{prefix}{key}")  # fmt: skip

    def ref(self, value, table: str, path: str, field: str) -> str | None:
        """The internal id of a reference ``{"id": ...}`` to a ``table`` record, or None."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add("INVALID_CONTENT", f"Error while processing the request body: the field "
                     f"{field} is a reference, an object like {{\"id\": \"<internal id>\"}}, "
                     f"not {_kind(value)}.", path)  # fmt: skip
            return None
        rid = value.get("id")
        if isinstance(rid, bool) or not isinstance(rid, str | int) or not str(rid).strip():
            self.add("INVALID_CONTENT", f"Error while processing the request body: the "
                     f"reference in field {field} needs an id.", path)  # fmt: skip
            return None
        rid = str(rid).strip()
        if self.master.get(table, rid) is None:
            self.invalid_value(rid, field, path)
            return None
        return rid

    def invalid_value(self, value, field: str, path: str) -> None:
        self.add("INVALID_CONTENT", "Error while accessing resource: You have entered an "
                 f"Invalid Field Value {value} for the following field: {field}", path)  # fmt: skip

    def amount(self, v, exp: int | None, path: str, field: str, symbol: str) -> Decimal | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | Decimal) or not Decimal(v).is_finite():
            self.add("INVALID_CONTENT", f"Error while processing the request body: the field "
                     f"{field} is a number in currency units, not {_kind(v)}.", path)  # fmt: skip
            return None
        d = Decimal(v)
        if d < 0:
            self.add("USER_ERROR", f"The {field} amount {d} is negative: a journal line "
                     "carries a positive debit or a positive credit.", path)  # fmt: skip
            return None
        if exp is not None:
            decimals = max(0, -d.normalize().as_tuple().exponent)
            if decimals > exp:
                self.add("USER_ERROR", f"The {field} amount {d} has {decimals} decimal places; "
                         f"the currency {symbol} has {exp}.", path)  # fmt: skip
                return None
            d = d.quantize(Decimal(1).scaleb(-exp))
        return d

    @staticmethod
    def date(v) -> dt.date | None:
        try:
            return dt.date.fromisoformat(v) if isinstance(v, str) and len(v) == 10 else None
        except ValueError:
            return None

    def text(self, v, path: str, field: str) -> str | None:
        if v is not None and not isinstance(v, str):
            self.add("INVALID_CONTENT", f"Error while processing the request body: the field "
                     f"{field} is a string, not {_kind(v)}.", path)  # fmt: skip
            return None
        return v


def validate_journal(body, *, master: MasterData, cfg: FaultConfig, existing=None,
                     replace_lines: bool = False, strict: bool = False,
                     url_external_id: str | None = None, today: dt.date | None = None):  # fmt: skip
    """``(head, lines, problems)``: the journal to store (``problems`` empty) or why not.

    ``existing`` is the stored ``(head, lines)`` of an update, ``strict`` the property-name
    validation header, ``url_external_id`` the ``eid:`` of the URL (module docstring)."""
    c = _Check(master, strict)
    if not isinstance(body, dict):
        c.add("INVALID_CONTENT", "The request body must be a JSON object.")
        return None, None, c.problems
    c.unknown(body, KNOWN_BODY, "")
    old, old_lines = existing if existing else (None, [])
    head = dict(old) if old else {"extra": {}}
    head["extra"] = dict(head.get("extra") or {})

    eid = body.get("externalId")
    if eid is not None:
        if not isinstance(eid, str) or not EXTERNAL_ID.fullmatch(eid):
            c.add("INVALID_ID", f"Invalid external id {eid!r}: an external ID can contain "
                  "letters, numbers, underscore (_) and hyphen (-).", "externalId")  # fmt: skip
        elif url_external_id is not None and eid != url_external_id:
            c.add("INVALID_ID", f"The externalId {eid} differs from the eid:{url_external_id} "
                  "of the URL.", "externalId")  # fmt: skip
        else:
            head["external_id"] = eid
    if url_external_id is not None:
        head["external_id"] = url_external_id
    if "tranId" in body:
        head["tran_id"] = c.text(body["tranId"], "tranId", "tranId")

    if "subsidiary" in body:
        head["subsidiary"] = c.ref(body["subsidiary"], "subsidiary", "subsidiary", "subsidiary")
    elif old is None:
        c.add("USER_ERROR", "Please enter value(s) for: Subsidiary", "subsidiary")
    sub = master.get("subsidiary", head.get("subsidiary")) if head.get("subsidiary") else None

    if "currency" in body:
        head["currency"] = c.ref(body["currency"], "currency", "currency", "currency")
    elif old is None and sub is not None:
        head["currency"] = sub["currency"]
    ccy = master.get("currency", head.get("currency")) if head.get("currency") else None
    exp, symbol = (int(ccy["currencyprecision"]), ccy["symbol"]) if ccy else (None, "?")

    if "tranDate" in body:
        day = c.date(body["tranDate"])
        if day is None:
            c.add("INVALID_CONTENT", f"Invalid date {body['tranDate']!r} for field tranDate: "
                  "use YYYY-MM-DD.", "tranDate")  # fmt: skip
        head["trandate"] = day.isoformat() if day else None
    elif old is None:
        head["trandate"] = (today or dt.datetime.now(dt.UTC).date()).isoformat()

    if "postingPeriod" in body:
        pid = c.ref(body["postingPeriod"], "accountingperiod", "postingPeriod", "postingperiod")
        if pid and master.get("accountingperiod", pid)["isposting"] != "T":
            c.invalid_value(pid, "postingperiod", "postingPeriod")
            pid = None
        head["postingperiod"] = pid
    elif old is None and head.get("trandate"):
        period = master.period_of(dt.date.fromisoformat(head["trandate"]))
        head["postingperiod"] = period["id"] if period else None
        if period is None:
            c.add("USER_ERROR", "Please enter value(s) for: Posting Period", "postingPeriod")

    if "memo" in body:
        head["memo"] = c.text(body["memo"], "memo", "memo")
    if "exchangeRate" in body:
        rate = body["exchangeRate"]
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | Decimal)
                                 or rate <= 0):  # fmt: skip
            c.add("INVALID_CONTENT", "The field exchangeRate is a positive number.",
                  "exchangeRate")  # fmt: skip
        else:
            head["exchangerate"] = None if rate is None else format(Decimal(rate), "f")
    for name, table in HEAD_REFS.items():
        if name in body:
            rid = c.ref(body[name], table, name, name)
            head["extra"][name] = None if rid is None else {"id": rid}
    for name in ("approved", "reversalDefer"):
        if name in body and not isinstance(body[name], bool | None):
            c.add("INVALID_CONTENT", f"The field {name} is a boolean.", name)
        elif name in body:
            head["extra"][name] = body[name]
    if "reversalDate" in body:
        v = body["reversalDate"]
        if v is not None and c.date(v) is None:
            c.add("INVALID_CONTENT", "Invalid date for field reversalDate.", "reversalDate")
        head["extra"]["reversalDate"] = v
    if "customForm" in body:
        form = body["customForm"]
        if form is not None and not (isinstance(form, dict) and form.get("id") is not None):
            c.add("INVALID_CONTENT", "The field customForm is a reference {\"id\": ...}.",
                  "customForm")  # fmt: skip
        head["extra"]["customForm"] = None if form is None else {"id": str(form.get("id"))}

    new_lines = _request_lines(c, body, head, exp, symbol, cfg)
    if new_lines is None:
        lines = [dict(x) for x in old_lines]
    elif old is not None and not replace_lines:
        lines = [dict(x) for x in old_lines] + new_lines  # NetSuite appends to a non-keyed list
    else:
        lines = new_lines
    if not lines:
        c.add("USER_ERROR", "You must enter at least one line item for this transaction.",
              "line")  # fmt: skip
    _check_amounts(c, lines, exp, symbol)
    _check_period(c, master, cfg, head, old)
    if c.problems:
        return None, None, c.problems
    _base_amounts(master, head, lines)
    for i, line in enumerate(lines):
        line["line"] = i
    return head, lines, []


def _request_lines(c: _Check, body: dict, head: dict, exp, symbol, cfg) -> list[dict] | None:
    """The request's lines, validated (None when the body has no ``line``)."""
    if "line" not in body:
        return None
    sublist = body["line"]
    if not isinstance(sublist, dict) or not isinstance(sublist.get("items"), list):
        c.add("INVALID_CONTENT", "The sublist line is an object whose items is a list of "
              "lines.", "line")  # fmt: skip
        return []
    c.unknown(sublist, {"items"}, "line.")
    known = KNOWN_LINE | set(cfg.custom_line_fields)
    lines = []
    for i, item in enumerate(sublist["items"]):
        at = f"line.items[{i}]"
        if not isinstance(item, dict):
            c.add("INVALID_CONTENT", f"A line is an object, not {_kind(item)}.", at)
            continue
        c.unknown(item, known, f"{at}.")
        line = {"custom": {}}
        if item.get("account") is None:
            c.add("USER_ERROR", "Please enter value(s) for: Account", f"{at}.account")
        line["account"] = c.ref(item.get("account"), "account", f"{at}.account", "account")
        for side in ("debit", "credit"):
            line[side] = c.amount(item.get(side), exp, f"{at}.{side}", side, symbol)
        line["memo"] = c.text(item.get("memo"), f"{at}.memo", "memo")
        for name, table in LINE_REFS.items():
            line[name] = c.ref(item.get(name), table, f"{at}.{name}", name)
        customer = c.master.get("customer", line["entity"]) if line["entity"] else None
        if customer and customer["subsidiary"] and head.get("subsidiary") and (
                customer["subsidiary"] != head["subsidiary"]):  # fmt: skip
            c.invalid_value(line["entity"], "entity", f"{at}.entity")
        for name in cfg.custom_line_fields:
            v = item.get(name)
            if isinstance(v, dict | list):
                c.add("INVALID_CONTENT", f"The field {name} is a text, number or boolean.",
                      f"{at}.{name}")  # fmt: skip
            elif v is not None:
                line["custom"][name] = format(v, "f") if isinstance(v, Decimal) else v
        line["_at"] = at
        lines.append(line)
    return lines


def _check_amounts(c: _Check, lines: list[dict], exp, symbol: str) -> None:
    """One positive side per line, stored lines within the currency's decimals, balance."""
    debits = credits = Decimal(0)
    for i, line in enumerate(lines):
        at = line.pop("_at", None) or f"line.items[{i}]"
        sides = {s: line.get(s) for s in ("debit", "credit")}
        for s, v in sides.items():
            if isinstance(v, str):  # a stored line (exact text): the currency may have changed
                v = sides[s] = line[s] = c.amount(Decimal(v), exp, f"{at}.{s}", s, symbol)
        given = [s for s, v in sides.items() if v is not None]
        if len(given) == 2:
            c.add("USER_ERROR", "A journal line carries either a debit or a credit amount, not "
                  "both.", at)  # fmt: skip
        elif not given or sides[given[0]] == 0:
            c.add("USER_ERROR", "Enter a debit or a credit amount greater than zero on every "
                  "line.", at)  # fmt: skip
        debits += sides["debit"] or 0
        credits += sides["credit"] or 0
    if lines and debits != credits:
        c.add("USER_ERROR", "The debit and credit totals must be equal.")


def _check_period(c: _Check, master: MasterData, cfg: FaultConfig, head: dict, old) -> None:
    pid, sub = head.get("postingperiod"), head.get("subsidiary")
    if not pid or not sub:
        return
    candidates = [("postingPeriod", pid)]
    if old is not None and old["postingperiod"] and str(old["postingperiod"]) != str(pid):
        candidates.insert(0, (None, old["postingperiod"]))
    for path, period_id in candidates:
        period = master.get("accountingperiod", period_id)
        status = cfg.period_status(sub, period["startdate"][:7])
        if status == "closed":
            c.add("USER_ERROR", f"The accounting period {period['periodname']} is closed: you "
                  "can't post to or change transactions in a closed period.", path or "postingPeriod")  # fmt: skip
        elif status == "locked":
            c.add("USER_ERROR", f"The accounting period {period['periodname']} is locked: your "
                  "role can't post to or change transactions in a locked period.", path or "postingPeriod")  # fmt: skip
    period = master.get("accountingperiod", pid)
    day = head.get("trandate")
    if cfg.date_period_mismatch == "disallow" and day and not (
            period["startdate"] <= day <= period["enddate"]):  # fmt: skip
        c.add("USER_ERROR", "The transaction date you specified is not within the date range "
              f"of your accounting period ({period['periodname']}).", "tranDate")  # fmt: skip


def _base_amounts(master: MasterData, head: dict, lines: list[dict]) -> None:
    """Subsidiary-currency amounts of the lines (module docstring); amounts to exact text."""
    sub = master.get("subsidiary", head["subsidiary"])
    base_exp = master.precision(sub["currency"])
    same = str(sub["currency"]) == str(head["currency"])
    rate = Decimal(head["exchangerate"]) if head.get("exchangerate") else None
    quantum = Decimal(1).scaleb(-base_exp)
    for line in lines:
        for side in ("debit", "credit"):
            v = line.get(side)
            base = None
            if v is not None and same:
                base = v
            elif v is not None and rate is not None:
                base = (v * rate).quantize(quantum, rounding=ROUND_HALF_UP)
            line[side] = None if v is None else format(v, "f")
            line[f"base_{side}"] = None if base is None else format(base, "f")
