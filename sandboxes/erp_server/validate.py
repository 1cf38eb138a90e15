"""Validation of a journal body and NetSuite-shaped error answers."""

from __future__ import annotations

import datetime as dt
import json
import re

from sandboxes.erp_server.config import PERIOD, FaultConfig

EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
ERROR_TYPE = "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Response = tuple[int, dict[str, str], bytes | None]


def _error(status: int, details: list[tuple[str, str]], headers: dict | None = None) -> Response:
    body = {
        "type": ERROR_TYPE,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [{"detail": d, "o:errorCode": c} for c, d in details],
    }
    return status, {"Content-Type": "application/json", **(headers or {})}, _dumps(body)


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _is_amount(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_journal(
    external_id: str, body, cfg: FaultConfig
) -> tuple[dict | None, list[tuple[str, str]]]:
    """(normalized record, []) when valid, else (None, [(error code, detail), ...])."""
    if not EXTERNAL_ID.fullmatch(external_id):
        return None, [
            ("INVALID_ID", f"Invalid external id {external_id!r}: use letters, digits, _ and -.")
        ]
    if not isinstance(body, dict):
        return None, [("INVALID_CONTENT", "The request body must be a JSON object.")]
    errors: list[tuple[str, str]] = []
    if body.get("externalId") not in (None, external_id):
        errors.append(("INVALID_ID", f"externalId {body['externalId']!r} differs from the URL."))
    fields = {}
    for name in ("subsidiary", "currency", "tranDate"):
        v = body.get(name)
        if v is None or isinstance(v, bool | dict | list) or str(v).strip() == "":
            errors.append(("INVALID_CONTENT", f"Missing value for field {name}."))
        fields[name] = None if v is None else str(v)
    if fields["tranDate"]:
        try:
            dt.date.fromisoformat(fields["tranDate"])
        except ValueError:
            errors.append(("INVALID_CONTENT", f"Invalid tranDate {fields['tranDate']!r}."))
    period = body.get("period") or (fields["tranDate"] or "")[:7]
    if not isinstance(period, str) or not PERIOD.fullmatch(period):
        errors.append(("INVALID_CONTENT", f"Invalid period {period!r}: use YYYY-MM."))
    memo = body.get("memo")
    line = body.get("line")
    items = line.get("items") if isinstance(line, dict) else None
    if not isinstance(items, list) or not items:
        errors.append(
            ("MISSING_LINES", "You must enter at least one line item for this transaction.")
        )
        items = []
    lines, debits, credits = [], 0, 0
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            errors.append(("INVALID_CONTENT", f"Line {i} must be an object."))
            continue
        account = item.get("account")
        account = account.get("id") if isinstance(account, dict) else account
        if account is None or str(account) not in cfg.accounts:
            errors.append(
                ("INVALID_KEY_OR_REF", f"Invalid account reference key {account} on line {i}.")
            )
        debit, credit = item.get("debit", 0) or 0, item.get("credit", 0) or 0
        if not (_is_amount(debit) and _is_amount(credit)):
            errors.append(
                ("INVALID_CONTENT", f"Line {i}: debit and credit must be non-negative integers.")
            )
            continue
        debits, credits = debits + debit, credits + credit
        lines.append({**item, "line": i, "account": str(account), "debit": debit, "credit": credit})
    if items and debits != credits:
        errors.append(
            (
                "UNBALANCED",
                f"The transaction is not in balance: debits {debits} != credits {credits}.",
            )
        )
    if fields["subsidiary"] and isinstance(period, str) and PERIOD.fullmatch(period):
        sub = fields["subsidiary"]
        if (sub, period) in cfg.closed_periods or ("*", period) in cfg.closed_periods:
            errors.append(
                ("PERIOD_CLOSED", f"The accounting period {period} is closed for subsidiary {sub}.")
            )
        elif (sub, period) in cfg.locked_periods or ("*", period) in cfg.locked_periods:
            errors.append(
                ("PERIOD_LOCKED", f"The accounting period {period} is locked for subsidiary {sub}.")
            )
    if errors:
        return None, errors
    record = {
        "externalId": external_id,
        "subsidiary": fields["subsidiary"],
        "tranDate": fields["tranDate"],
        "period": period,
        "currency": fields["currency"],
        "memo": memo,
        "line": {"items": lines},
    }
    return record, []
