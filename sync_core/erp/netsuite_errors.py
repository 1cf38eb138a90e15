"""NetSuite REST errors: the error body, and what a refusal means for the exception queue.

NetSuite answers a failed request with a 4xx / 5xx and ``{"type", "title", "status",
"o:errorDetails": [{"detail", "o:errorPath", "o:errorCode"}]}`` (docs/netsuite-rest.md,
"Errors"). :func:`parse_error` reads that body; :func:`classify` turns the status, codes and
detail texts into a :class:`Verdict`: a reason code for the exception queue, the owner who can
fix it, and whether a retry can help. The same code means different things by its detail (a
closed period and an unbalanced journal are both ``USER_ERROR``), so the detail text decides
within a code:

| what the ERP says | reason | owner | retried |
|---|---|---|---|
| 429, ``CONCURRENCY_LIMIT_EXCEEDED``, ``REQUEST_LIMIT_EXCEEDED``, ``RCRD_HAS_BEEN_CHANGED``, 5xx, ``UNEXPECTED_ERROR`` | ``erp_unavailable`` (once retries are exhausted) | integration | yes |
| a detail naming a locked period | ``period_locked`` | finance | no |
| a detail naming a closed period | ``period_closed`` | finance | no |
| ``INVALID_KEY_OR_REF``, ``NONEXISTENT_ID``, a detail on an invalid reference or field value | ``invalid_reference`` | master_data | no |
| 401, ``INVALID_LOGIN`` | ``invalid_login`` | integration | no |
| 403, ``INSUFFICIENT_PERMISSION`` | ``insufficient_permission`` | integration | no |
| "The debit and credit totals must be equal." | ``unbalanced`` | integration | no |
| ``INVALID_CONTENT`` (a body NetSuite cannot read, an unknown field) | ``invalid_content`` | integration | no |
| ``INVALID_ID`` | ``invalid_id`` | integration | no |
| any other refusal | ``erp_rejected`` | integration | no |

The message keeps NetSuite's code, detail and ``o:errorPath`` verbatim, so whoever owns the
row reads what the ERP said. No Dagster imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRANSIENT_CODES = frozenset({"CONCURRENCY_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED",
                             "RCRD_HAS_BEEN_CHANGED", "UNEXPECTED_ERROR"})  # fmt: skip
REFERENCE_CODES = frozenset({"INVALID_KEY_OR_REF", "NONEXISTENT_ID"})
OWNERS = ("finance", "master_data", "integration")
UNAVAILABLE = "erp_unavailable"  # a transient failure whose retries ran out

_LOCKED = re.compile(r"\bperiod\b.*\blocked\b|\blocked\b.*\bperiod\b", re.IGNORECASE)
_CLOSED = re.compile(r"\bperiod\b.*\bclosed\b|\bclosed\b.*\bperiod\b", re.IGNORECASE)
_REFERENCE = re.compile(
    r"invalid .*reference|reference key|invalid field value|does not exist|not found",
    re.IGNORECASE,
)
_UNBALANCED = re.compile(r"debit and credit totals must be equal|not in balance", re.IGNORECASE)


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of ``o:errorDetails``."""

    code: str | None
    detail: str
    path: str | None = None

    def text(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code or 'ERROR'}{where}: {self.detail}"


@dataclass(frozen=True)
class Verdict:
    """What a refusal means: ``reason`` and ``owner`` for the queue, ``transient`` when a retry
    can fix it, ``code`` NetSuite's first error code, ``message`` every detail with its path."""

    reason: str
    owner: str
    transient: bool
    code: str | None
    message: str


def parse_error(status: int, body) -> list[ErrorDetail]:
    """The details of a NetSuite error body (already decoded JSON): its ``o:errorDetails``, or
    the token endpoint's ``error`` / ``error_description``, or else one detail with the
    ``title`` or the status."""
    details = []
    if isinstance(body, dict):
        for d in body.get("o:errorDetails") or []:
            if isinstance(d, dict):
                details.append(ErrorDetail(
                    d.get("o:errorCode"), str(d.get("detail") or "").strip(),
                    d.get("o:errorPath"),
                ))  # fmt: skip
        if not details and body.get("error"):  # the OAuth 2.0 token endpoint's (RFC 6749)
            details.append(ErrorDetail(str(body["error"]),
                                       str(body.get("error_description") or "").strip()))  # fmt: skip
        if not details and body.get("title"):
            details.append(ErrorDetail(None, str(body["title"])))
    return details or [ErrorDetail(None, f"HTTP {status}")]


def _refusal(reason: str, owner: str, code, message) -> Verdict:
    return Verdict(reason, owner, False, code, message)


def classify(status: int | None, details: list[ErrorDetail]) -> Verdict:
    """The :class:`Verdict` of an answer with HTTP ``status`` and these error details
    (module docstring); ``status`` None is a request that never got an answer."""
    codes = {d.code for d in details if d.code}
    code = next((d.code for d in details if d.code), None)
    text = " ".join(d.detail for d in details)
    message = "; ".join(d.text() for d in details)
    if status is None or status == 429 or status >= 500 or codes & TRANSIENT_CODES:
        return Verdict(UNAVAILABLE, "integration", True, code, message)
    if status == 401 or "INVALID_LOGIN" in codes:
        return _refusal("invalid_login", "integration", code, message)
    if status == 403 or "INSUFFICIENT_PERMISSION" in codes:
        return _refusal("insufficient_permission", "integration", code, message)
    if _LOCKED.search(text):
        return _refusal("period_locked", "finance", code, message)
    if _CLOSED.search(text):
        return _refusal("period_closed", "finance", code, message)
    if codes & REFERENCE_CODES or _REFERENCE.search(text):
        return _refusal("invalid_reference", "master_data", code, message)
    if _UNBALANCED.search(text):
        return _refusal("unbalanced", "integration", code, message)
    if "INVALID_CONTENT" in codes:
        return _refusal("invalid_content", "integration", code, message)
    if "INVALID_ID" in codes:
        return _refusal("invalid_id", "integration", code, message)
    return _refusal("erp_rejected", "integration", code, message)


def no_answer(kind: str, message: str) -> Verdict:
    """The verdict of a request without an answer (``TIMEOUT``, ``CONNECTION_ERROR``): the
    ERP may or may not have written it, a retry (after a look) is safe."""
    return Verdict(UNAVAILABLE, "integration", True, kind, message)
