"""Stripe's form encoding read back, and the checks every endpoint applies to its parameters.

:func:`parse_form` turns ``a=1``, ``a[b]=2`` (nested hashes such as ``created[gte]``),
``a[]=x`` (appended arrays, the form curl users and the project's client send) and
``a[0]=x&a[1]=y`` (indexed arrays, the form the official SDKs send) into nested dicts and lists,
from a query string or a form body. A repeated plain key keeps its last value (Rack's rule,
which Stripe's parser follows); a hash whose keys are all indexes becomes a list in index
order. :class:`Params` reads the result against an endpoint's schema (name -> kind) and answers
as Stripe does: ``Received unknown parameter: <name>`` (``parameter_unknown``), ``Invalid
integer: <value>``, ``Invalid array``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from sandboxes.billing_api.collections import ApiError

# parameter kinds of an endpoint schema
STRING, INTEGER, ARRAY, RANGE = "string", "integer", "array", "range"
RANGE_OPS = ("gt", "gte", "lt", "lte")

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEG = re.compile(r"\[([^\[\]]*)\]")


def _split(key: str) -> list[str]:
    """``a[b][0][]`` -> ``["a", "b", "0", ""]``; a malformed key is one plain name."""
    m = _KEY.match(key)
    if m is None:
        return [key]
    return [m.group(1), *_SEG.findall(m.group(2))]


def _display(path: list[str]) -> str:
    return path[0] + "".join(f"[{s}]" for s in path[1:])


def _has(node, path: list[str]) -> bool:
    """Does the hash ``node`` already hold ``path`` (up to its first ``[]``)?"""
    for seg in path:
        if seg == "" or not isinstance(node, dict):
            return True
        if seg not in node:
            return False
        node = node[seg]
    return True


def _insert(root: dict, path: list[str], value: str) -> None:
    cur = root
    for i, seg in enumerate(path):
        last, rest = i == len(path) - 1, path[i + 1 :]
        if isinstance(cur, list):  # reached through "[]": append, or fill the last hash
            if last:
                cur.append(value)
            elif rest[0] == "":
                cur.append([])
                cur = cur[-1]
            else:
                if not (cur and isinstance(cur[-1], dict) and not _has(cur[-1], rest)):
                    cur.append({})
                cur = cur[-1]
            continue
        if last:
            if isinstance(cur.get(seg), (dict, list)):
                raise ApiError(400, "Invalid hash", param=_display(path))
            cur[seg] = value
            continue
        kind = list if rest[0] == "" else dict
        nxt = cur.get(seg)
        if nxt is None:
            nxt = cur[seg] = kind()
        elif not isinstance(nxt, kind):
            what = "array" if kind is list else "hash"
            raise ApiError(400, f"Invalid {what}", param=_display(path[: i + 1]))
        cur = nxt


def _arrays(node):
    """Hashes keyed by indexes only (``a[0]``, ``a[1]``) -> lists in index order."""
    if isinstance(node, list):
        return [_arrays(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _arrays(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict:
    """Decoded ``(key, value)`` pairs in request order -> nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        _insert(root, _split(key), value)
    return _arrays(root)


def parse_form(data: str | bytes) -> dict:
    """A query string or an ``application/x-www-form-urlencoded`` body -> nested params."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    return parse_pairs(parse_qsl(data, keep_blank_values=True))


def names(value, prefix: str) -> list[str]:
    """Every leaf name under ``prefix`` as a client would have written it (``created[gte]``)."""
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in names(v, f"{prefix}[{k}]")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in names(v, f"{prefix}[{i}]")]
    return [prefix]


def _unknown(name: str) -> ApiError:
    return ApiError(400, f"Received unknown parameter: {name}", "parameter_unknown", name)


def _int(raw, name: str) -> int:
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            pass
    raise ApiError(400, f"Invalid integer: {raw}", "parameter_invalid_integer", name)


class Params:
    """An endpoint's parameters, read and checked against its schema (name -> kind)."""

    def __init__(self, data: Mapping | None = None):
        self.data = dict(data or {})

    @classmethod
    def from_query(cls, query: str) -> Params:
        return cls(parse_form(query))

    def merged(self, body: Mapping) -> Params:
        """These (query string) parameters with a form body's; the body wins on a clash."""
        return Params({**self.data, **body})

    def check(self, schema: Mapping[str, str]) -> Params:
        """400 on the first parameter the endpoint does not take, or of the wrong shape."""
        for name, value in self.data.items():
            kind = schema.get(name)
            if kind is None:
                raise _unknown(names(value, name)[0])
            if kind in (STRING, INTEGER) and not isinstance(value, str):
                if isinstance(value, dict):
                    raise _unknown(names(value, name)[0])
                code = "parameter_invalid_integer" if kind == INTEGER else None
                raise ApiError(400, f"Invalid {kind}: {value}", code, name)
            if kind == INTEGER:
                _int(value, name)
            elif kind == ARRAY:
                self.array(name)
            elif kind == RANGE:
                self.range(name)
        return self

    def string(self, name: str) -> str | None:
        """A string parameter; an empty value counts as absent (as a cleared filter)."""
        v = self.data.get(name)
        return v if isinstance(v, str) and v != "" else None

    def integer(self, name: str) -> int | None:
        v = self.data.get(name)
        return None if v is None else _int(v, name)

    def array(self, name: str) -> list[str]:
        v = self.data.get(name)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ApiError(400, "Invalid array", param=name)
        return v

    def range(self, name: str) -> dict[str, int]:
        """``created=5`` -> ``{"gte": 5, "lte": 5}``; ``created[gt]=1`` -> ``{"gt": 1}``."""
        v = self.data.get(name)
        if v is None:
            return {}
        if isinstance(v, str):
            n = _int(v, name)
            return {"gte": n, "lte": n}
        if not isinstance(v, dict):
            raise ApiError(400, "Invalid hash", param=name)
        out = {}
        for op, raw in v.items():
            if op not in RANGE_OPS:
                raise _unknown(names(raw, f"{name}[{op}]")[0])
            out[op] = _int(raw, f"{name}[{op}]")
        return out
