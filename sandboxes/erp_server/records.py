"""The journalEntry record endpoints under ``/services/rest/record/v1/journalEntry``.

- ``PUT /{eid:X}[?replace=line]``: upsert by external id; ``POST`` create (a taken
  ``externalId`` is refused); ``PATCH /{id | eid:X}[?replace=line]`` update. Writes answer
  ``204 No Content`` (``PUT`` / ``POST`` with ``Location: {base}/record/v1/journalEntry/{id}``);
  an update appends the request's lines unless ``replace=line``
  (:mod:`~sandboxes.erp_server.validate`).
- ``GET /{id | eid:X}[?expandSubResources=true]``: the record, references as
  ``{"links", "id", "refName"}``, amounts as JSON numbers in currency units; ``line`` is a link
  unless expanded (``{"links", "items", "count", "hasMore", "offset", "totalResults"}``);
  ``GET /{id}/line`` the sublist alone.
- ``GET ?limit=&offset=``: the collection, ``items`` of ``{"links", "id"}`` by internal id,
  ``limit`` 1-1000 (default 1000), ``hasMore``, ``count``, ``offset``, ``totalResults`` and
  ``first`` / ``prev`` / ``next`` / ``last`` / ``self`` links.

:func:`render` is the shape of a stored journal, used by GET (with links) and by
``ErpSandbox.journals()`` (without links; amounts as ``Decimal``).
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, unquote

from sandboxes.erp_server.master import MasterData
from sandboxes.erp_server.validate import EXTERNAL_ID, validate_journal
from sandboxes.erp_server.wire import Response, error, json_response, loads, one

RECORD = "/record/v1/journalEntry"
MAX_LIMIT = 1000
REF_TYPES = {"account": "account", "subsidiary": "subsidiary", "currency": "currency",
             "accountingperiod": "accountingPeriod", "customer": "customer",
             "department": "department", "classification": "classification",
             "location": "location"}  # fmt: skip
LINE_REF_TABLES = {"account": "account", "entity": "customer", "department": "department",
                   "class": "classification", "location": "location"}  # fmt: skip


def _ref_name(row: dict, table: str) -> str:
    if table == "account":
        return row["fullname"]
    if table == "accountingperiod":
        return row["periodname"]
    if table == "customer":
        return f"{row['entityid']} {row['companyname']}"
    return row.get("name") or row.get("symbol") or row["id"]


def ref(master: MasterData, table: str, rid, base: str | None) -> dict | None:
    if rid is None:
        return None
    row = master.get(table, rid)
    out = {"links": [{"rel": "self", "href": f"{base}/record/v1/{REF_TYPES[table]}/{rid}"}]} if (
        base) else {}  # fmt: skip
    out["id"] = str(rid)
    if row is not None:
        out["refName"] = _ref_name(row, table)
    return out


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def render(head: dict, lines: list[dict], master: MasterData, base: str | None = None,
           expand: bool = True) -> dict:  # fmt: skip
    """A stored journal as NetSuite shows it (module docstring)."""
    jid = head["internal_id"]
    self_href = f"{base}{RECORD}/{jid}"
    items = []
    for ln in lines:
        item = {"links": []} if base else {}
        item["line"] = ln["line"]
        for name, table in LINE_REF_TABLES.items():
            item[name] = ref(master, table, ln[name], base)
        item["debit"] = None if ln["debit"] is None else Decimal(ln["debit"])
        item["credit"] = None if ln["credit"] is None else Decimal(ln["credit"])
        item["memo"] = ln["memo"]
        items.append(_prune({**item, **ln["custom"]}))
    sublist = {"items": items, "count": len(items), "hasMore": False, "offset": 0,
               "totalResults": len(items)}  # fmt: skip
    if base:
        sublist = {"links": [{"rel": "self", "href": f"{self_href}/line"}], **sublist}
    record = {
        "links": [{"rel": "self", "href": self_href}] if base else None,
        "id": str(jid),
        "externalId": head["external_id"],
        "tranId": head["tran_id"] or str(jid),
        "tranDate": head["trandate"],
        "postingPeriod": ref(master, "accountingperiod", head["postingperiod"], base),
        "subsidiary": ref(master, "subsidiary", head["subsidiary"], base),
        "currency": ref(master, "currency", head["currency"], base),
        "exchangeRate": Decimal(head["exchangerate"] or 1),
        "memo": head["memo"],
        **{
            k: (
                ref(master, LINE_REF_TABLES[k], v["id"], base)
                if isinstance(v, dict) and k in LINE_REF_TABLES
                else v
            )
            for k, v in head["extra"].items()
        },  # fmt: skip
        "createdDate": head["created_at"],
        "lastModifiedDate": head["updated_at"],
        "line": sublist if expand else {"links": sublist["links"]},
    }
    if not base:
        record["version"] = head["version"]
    return _prune(record)


def _flag(query: dict, name: str) -> bool:
    return (query.get(name, ["false"])[0]).lower() == "true"


def _page_links(href: str, limit: int, offset: int, total: int) -> list[dict]:
    last = max(0, (total - 1) // limit * limit)
    links = [("first", 0)]
    if offset > 0:
        links.append(("prev", max(0, offset - limit)))
    if offset + limit < total:
        links.append(("next", offset + limit))
    links += [("last", last), ("self", offset)]
    return [{"rel": r, "href": f"{href}?limit={limit}&offset={o}"} for r, o in links]


class Records:
    """The endpoints of the module docstring over an ``ErpState``."""

    def __init__(self, state):
        self.state = state

    def _find(self, ref_: str):
        store = self.state.store
        if ref_.startswith("eid:"):
            return store.find(external_id=ref_[4:])
        return store.find(internal_id=int(ref_)) if ref_.isdigit() else None

    def read(self, tail: str, query: str, base: str) -> Response:
        q = parse_qs(query or "")
        if not tail:
            return self._collection(q, base)
        ref_, _, sub = unquote(tail).partition("/")
        found = self._find(ref_)
        if found is None:
            return _missing(ref_)
        if sub not in ("", "line"):
            return one(404, "NONEXISTENT_FIELD", f"journalEntry has no sublist {sub}.")
        record = render(*found, self.state.master, base, expand=bool(sub) or _flag(q, "expandSubResources"))  # fmt: skip
        return json_response(200, record["line"] if sub else record)

    def _collection(self, q: dict, base: str) -> Response:
        try:
            limit = int(q.get("limit", [MAX_LIMIT])[0])
            offset = int(q.get("offset", [0])[0])
        except ValueError:
            limit = offset = -1
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return one(400, "INVALID_PARAMETER", f"limit must be 1 to {MAX_LIMIT} and offset "
                       "a non-negative integer.")  # fmt: skip
        ids, total = self.state.store.ids(limit, offset)
        href = f"{base}{RECORD}"
        items = [{"links": [{"rel": "self", "href": f"{href}/{i}"}], "id": str(i)} for i in ids]
        return json_response(200, {"links": _page_links(href, limit, offset, total),
                                   "count": len(items), "hasMore": offset + len(items) < total,
                                   "items": items, "offset": offset, "totalResults": total})  # fmt: skip

    def write(
        self, method: str, tail: str, query: str, headers, body: bytes, base: str
    ) -> Response:
        """PUT / POST / PATCH (module docstring); the whole read-validate-write holds the store."""
        ref_ = unquote(tail)
        if method == "POST" and ref_:
            return one(405, "METHOD_NOT_ALLOWED", "POST creates a record at the collection URL.")
        if method == "PUT" and not ref_.startswith("eid:"):
            return one(405, "METHOD_NOT_ALLOWED", "PUT (upsert) needs eid:{externalId}.")
        if method in ("PUT", "PATCH") and "/" in ref_:
            return one(405, "METHOD_NOT_ALLOWED", "Sublists are written through their record.")
        url_eid = ref_[4:] if ref_.startswith("eid:") else None
        if url_eid is not None and not EXTERNAL_ID.fullmatch(url_eid):
            return one(400, "INVALID_ID", f"Invalid external id {url_eid!r}: an external ID can "
                       "contain letters, numbers, underscore (_) and hyphen (-).")  # fmt: skip
        try:
            parsed = loads(body) if body else None
        except ValueError:
            return one(400, "INVALID_CONTENT", "The request body is not valid JSON.")
        q = parse_qs(query or "")
        replace = {s.strip() for v in q.get("replace", []) for s in v.split(",")}
        strict = (headers.get("X-NetSuite-PropertyNameValidation") or "").strip().lower() == "error"
        state = self.state
        with state.store.transaction() as store:
            existing = None if method == "POST" else self._find(ref_)
            if method == "PATCH" and existing is None:
                return _missing(ref_)
            head, lines, problems = validate_journal(
                parsed, master=state.master, cfg=state.config, existing=existing,
                replace_lines="line" in replace, strict=strict, url_external_id=url_eid)  # fmt: skip
            if not problems and head.get("external_id"):
                other = store.find(external_id=head["external_id"])
                mine = existing[0]["internal_id"] if existing else None
                if other is not None and other[0]["internal_id"] != mine:
                    problems = [("USER_ERROR", "A journalEntry with the external ID "
                                 f"{head['external_id']} already exists.", "externalId")]  # fmt: skip
            if problems:
                return error(400, problems)
            jid = store.write(head, lines, existing[0]["internal_id"] if existing else None)
        headers_out = {} if method == "PATCH" else {"Location": f"{base}{RECORD}/{jid}"}
        return 204, headers_out, None


def _missing(ref_: str) -> Response:
    return one(404, "NONEXISTENT_ID", f"The record instance does not exist. Provide a valid "
               f"record instance ID ({ref_}).")  # fmt: skip
