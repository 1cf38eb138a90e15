"""What goes over the wire: JSON with exact decimals, and NetSuite's error body.

Request bodies are read with every JSON number that has a fraction or exponent as a
``Decimal`` (``100.25`` is ``Decimal("100.25")``, never a float); answers write a ``Decimal`` as
a JSON number with its digits as they are. An error answer is NetSuite's body::

    {"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1",
     "title": "Bad Request", "status": 400,
     "o:errorDetails": [{"detail": "...", "o:errorPath": "line.items[0].account",
                         "o:errorCode": "INVALID_CONTENT"}]}
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

Response = tuple[int, dict[str, str], bytes | None]
Problem = tuple[str, str, str | None]  # (o:errorCode, detail, o:errorPath)

RFC2616 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
TYPES = {400: "#sec10.4.1", 403: "#sec10.4.4", 404: "#sec10.4.5", 405: "#sec10.4.6",
         413: "#sec10.4.14", 500: "#sec10.5.1", 503: "#sec10.5.4", 504: "#sec10.5.5"}  # fmt: skip
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 413: "Content Too Large", 429: "Too Many Requests",
          500: "Internal Server Error", 503: "Service Unavailable",
          504: "Gateway Timeout"}  # fmt: skip
JSON = {"Content-Type": "application/json"}
_MARK = "\x00#"
_DECIMAL = re.compile(r'"\\u0000#(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"')


def loads(body: bytes):
    """A request body as JSON, fractions as ``Decimal``; ``ValueError`` when it is not JSON."""

    def constant(name):
        raise ValueError(f"{name} is not a JSON number")

    return json.loads(body, parse_float=Decimal, parse_constant=constant)


def _marked(obj):
    if isinstance(obj, Decimal):
        return _MARK + format(obj, "f")
    if isinstance(obj, dict):
        return {k: _marked(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_marked(v) for v in obj]
    return obj


def dumps(obj) -> bytes:
    """``obj`` as compact JSON, a ``Decimal`` as the number it is."""
    text = json.dumps(_marked(obj), separators=(",", ":"), ensure_ascii=True)
    return _DECIMAL.sub(r"\1", text).encode()


def json_response(status: int, obj, headers: dict | None = None) -> Response:
    return status, {**JSON, **(headers or {})}, dumps(obj)


def error(status: int, problems: list[Problem], headers: dict | None = None) -> Response:
    """NetSuite's error answer with one ``o:errorDetails`` entry per problem."""
    details = []
    for code, detail, path in problems:
        d = {"detail": detail}
        if path:
            d["o:errorPath"] = path
        d["o:errorCode"] = code
        details.append(d)
    body = {"type": RFC2616 + TYPES.get(status, ""), "title": TITLES.get(status, "Error"),
            "status": status, "o:errorDetails": details}  # fmt: skip
    return json_response(status, body, headers)


def one(status: int, code: str, detail: str, path: str | None = None, headers=None) -> Response:
    return error(status, [(code, detail, path)], headers)
