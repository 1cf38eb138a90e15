"""The sandbox ERP's read side: SuiteQL over REST, the way NetSuite exposes its records.

``POST /services/rest/query/v1/suiteql?limit=N&offset=M`` with header ``Prefer: transient``
and body ``{"q": "SELECT ..."}`` runs one read-only query and answers a page::

    {"links": [{"rel": "first", ...}, {"rel": "next", ...}, {"rel": "last", ...},
               {"rel": "self", ...}],
     "count": 2, "hasMore": true, "offset": 0, "totalResults": 5,
     "items": [{"links": [], "id": "1", "externalid": "US01-INV-in_1-v1", ...}, ...]}

As in NetSuite, values come back as strings, null fields are left out, booleans are ``T`` /
``F``, amounts are in currency units (``"100.25"``); ``limit`` is 1 to 1000 (default 1000),
``offset`` >= 0.

Tables (a NetSuite-shaped subset, NetSuite's column names; references are internal ids):

| table | columns |
|---|---|
| ``account`` | id, acctnumber, acctname, fullname, accttype, issummary, isinactive |
| ``currency`` | id, name, symbol (ISO code), currencyprecision, isbasecurrency, isinactive |
| ``subsidiary`` | id, name, fullname, currency, country, parent, iselimination, isinactive |
| ``accountingperiod`` | id, periodname (``Mar 2025``, ``Q1 2025``, ``FY 2025``), startdate, enddate, isposting, isquarter, isyear, isadjust, isinactive, parent, closed, alllocked, arlocked, aplocked |
| ``customer`` | id, entityid, externalid, companyname, subsidiary, currency, isinactive |
| ``department``, ``classification``, ``location`` | id, name, isinactive |
| ``transaction`` | id, tranid, externalid, type (``Journal``), recordtype (``journalentry``), trandate, postingperiod, currency, exchangerate, memo, posting (``T``), createddate, lastmodifieddate |
| ``transactionline`` | transaction, id (the line, from 0), linesequencenumber, subsidiary, entity, memo, department, class, location, foreignamount (debit - credit), debitforeignamount, creditforeignamount, netamount (subsidiary currency), the custom line fields |
| ``transactionaccountingline`` | transaction, transactionline, accountingbook (``1``), account, debit, credit, amount, netamount (subsidiary currency: null for a foreign-currency journal without exchangeRate), posting (``T``) |

Dates come back ``YYYY-MM-DD`` (NetSuite formats them by the user's date preference: select
``TO_CHAR(trandate, 'YYYY-MM-DD')``, which the sandbox also runs, to be independent of it);
``TO_DATE(text, 'YYYY-MM-DD')`` and ``NVL`` work too. Amounts are numbers to SQLite, so an
aggregate is computed in floating point and printed back to at most 3 decimals when it is
that close to a decimal; NetSuite computes exactly.

**Safety.** The query runs on the store's connection under a SQLite authorizer that allows a
SELECT reading these views and nothing else: no other table, no PRAGMA, ATTACH, write, or
recursive CTE; it must start with ``SELECT``, is one statement, and is interrupted after
``QUERY_BUDGET_S`` seconds. A refused query answers 400 ``INVALID_PARAMETER`` like NetSuite,
never a 500.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from decimal import Decimal
from urllib.parse import parse_qs

from sandboxes.erp_server.master import TABLES
from sandboxes.erp_server.records import _page_links
from sandboxes.erp_server.store import MASTER_COLS
from sandboxes.erp_server.wire import Response, json_response, one

QUERY_PATH = "/query/v1/suiteql"
MAX_LIMIT = 1000
QUERY_BUDGET_S = 5.0
_JOURNAL_VIEWS = {
    "transaction": """SELECT internal_id AS id, coalesce(tran_id, internal_id) AS tranid,
        external_id AS externalid, 'Journal' AS type, 'journalentry' AS recordtype, trandate,
        postingperiod, currency, CAST(coalesce(exchangerate, 1) AS REAL) AS exchangerate, memo,
        'T' AS posting, created_at AS createddate, updated_at AS lastmodifieddate
        FROM journal_entry""",
    "transactionline": """SELECT l.journal AS "transaction", l.line AS id,
        l.line + 1 AS linesequencenumber, j.subsidiary, l.entity, l.memo, l.department,
        l.class, l.location,
        coalesce(CAST(l.debit AS REAL), 0) - coalesce(CAST(l.credit AS REAL), 0) AS foreignamount,
        CAST(l.debit AS REAL) AS debitforeignamount, CAST(l.credit AS REAL) AS creditforeignamount,
        CASE WHEN coalesce(l.base_debit, l.base_credit) IS NULL THEN NULL ELSE
             coalesce(CAST(l.base_debit AS REAL), 0) - coalesce(CAST(l.base_credit AS REAL), 0)
        END AS netamount{custom}
        FROM journal_line l JOIN journal_entry j ON j.internal_id = l.journal""",
    "transactionaccountingline": """SELECT l.journal AS "transaction", l.line AS transactionline,
        1 AS accountingbook, l.account, CAST(l.base_debit AS REAL) AS debit,
        CAST(l.base_credit AS REAL) AS credit,
        CASE WHEN coalesce(l.base_debit, l.base_credit) IS NULL THEN NULL ELSE
             coalesce(CAST(l.base_debit AS REAL), 0) - coalesce(CAST(l.base_credit AS REAL), 0)
        END AS amount,
        CASE WHEN coalesce(l.base_debit, l.base_credit) IS NULL THEN NULL ELSE
             coalesce(CAST(l.base_debit AS REAL), 0) - coalesce(CAST(l.base_credit AS REAL), 0)
        END AS netamount, 'T' AS posting
        FROM journal_line l""",
}
VIEWS = (*TABLES, *_JOURNAL_VIEWS)
_STRING = re.compile(r"('(?:[^']|'')*')")
_BARE_TRANSACTION = re.compile(r'(?<![\w"])transaction(?![\w"])', re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_FORMATS = {"YYYY-MM-DD": "%Y-%m-%d", "YYYY-MM": "%Y-%m", "YYYY": "%Y", "MM": "%m", "DD": "%d",
            "MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y"}  # fmt: skip


class QueryRefused(ValueError):
    """A query the sandbox does not run (not a single read-only SELECT of its tables)."""


def normalize(q) -> str:
    """The query as SQLite runs it: one SELECT, ``transaction`` quoted (a SQLite keyword)."""
    if not isinstance(q, str) or not q.strip():
        raise QueryRefused("The q parameter must be a non-empty SuiteQL string.")
    parts = _STRING.split(q)  # odd parts are string literals, left as they are
    parts = [p if i % 2 else _COMMENT.sub(" ", p) for i, p in enumerate(parts)]
    parts[-1] = parts[-1].rstrip().rstrip(";")
    if ";" in " ".join(p for i, p in enumerate(parts) if i % 2 == 0):
        raise QueryRefused("Only one statement is allowed.")
    if not re.match(r"(?i)\s*select\b", parts[0]):
        raise QueryRefused("Only SELECT queries are allowed.")
    return "".join(
        p if i % 2 else _BARE_TRANSACTION.sub('"transaction"', p) for i, p in enumerate(parts)
    )


def _to_char(value, fmt):
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return day.strftime(_FORMATS.get(str(fmt).upper(), "%Y-%m-%d"))


def _to_date(value, fmt="YYYY-MM-DD"):
    if value is None:
        return None
    try:
        return (
            dt.datetime.strptime(str(value), _FORMATS.get(str(fmt).upper(), "%Y-%m-%d"))
            .date()
            .isoformat()
        )
    except ValueError:
        return None


def _authorizer(action, arg1, arg2, db, source):
    if action == sqlite3.SQLITE_SELECT:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ:
        # a view's own columns, what a view reads, or no column at all (SQLite's probe
        # when it expands a view's ``*``)
        if (arg1 in VIEWS and db == "temp") or source in VIEWS or arg2 == "":
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and arg2 != "load_extension":
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def ensure_views(conn: sqlite3.Connection, custom_fields: tuple) -> None:
    """(Re)create the temporary views named as NetSuite's tables (module docstring)."""
    for name in VIEWS:
        conn.execute(f'DROP VIEW IF EXISTS temp."{name}"')
    for table in TABLES:
        cols = ", ".join(MASTER_COLS[table])
        conn.execute(f'CREATE TEMP VIEW "{table}" AS SELECT {cols} FROM ns_{table}')
    custom = "".join(f", json_extract(l.custom, '$.{f}') AS {f}" for f in custom_fields)
    for name, sql in _JOURNAL_VIEWS.items():
        conn.execute(f'CREATE TEMP VIEW "{name}" AS {sql.format(custom=custom)}')
    conn.create_function("to_char", 2, _to_char, deterministic=True)
    conn.create_function("to_date", 2, _to_date, deterministic=True)
    conn.create_function("to_date", 1, _to_date, deterministic=True)
    conn.create_function("nvl", 2, lambda a, b: b if a is None else a, deterministic=True)


def _text(v) -> str:
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        near = round(v, 3) + 0.0  # + 0.0: no "-0"
        if abs(near - v) <= 1e-9 * max(1.0, abs(v)):
            return format(Decimal(repr(near)).normalize(), "f")
        return repr(v)
    return str(v)


def run_query(state, q: str, limit: int, offset: int) -> tuple[list[dict], int]:
    """(rows of the page, total rows) of a read-only query over the sandbox's records."""
    sql = normalize(q)
    store, cfg = state.store, state.config
    store.mirror(state.master, *state.global_period_status())
    deadline = time.monotonic() + QUERY_BUDGET_S
    with store.lock:  # the store's one connection; the sandbox owns both modules
        conn = store.conn
        _views(store, cfg.custom_line_fields)
        conn.set_authorizer(_authorizer)
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)
        try:
            total = conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
            cur = conn.execute(f"SELECT * FROM ({sql}) LIMIT ? OFFSET ?", (limit, offset))
            cols = [d[0].lower() for d in cur.description]
            rows = cur.fetchall()
        except sqlite3.DatabaseError as exc:
            raise QueryRefused(f"Invalid search query: {exc}") from None
        finally:
            conn.set_authorizer(None)
            conn.set_progress_handler(None, 0)
    return [
        {c: _text(v) for c, v in zip(cols, r, strict=True) if v is not None} for r in rows
    ], total


def _views(store, custom_fields: tuple) -> None:
    if getattr(store, "_views_key", None) != custom_fields:
        ensure_views(store.conn, custom_fields)
        store._views_key = custom_fields


def _page_args(query_string: str) -> tuple[int, int]:
    args = parse_qs(query_string or "")
    try:
        limit = int(args.get("limit", [MAX_LIMIT])[0])
        offset = int(args.get("offset", [0])[0])
    except ValueError:
        raise QueryRefused("limit and offset must be integers.") from None
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise QueryRefused(f"limit must be 1 to {MAX_LIMIT} and offset >= 0.")
    return limit, offset


def suiteql(state, headers, query_string: str, body: bytes, base: str) -> Response:
    """Answer ``POST /services/rest/query/v1/suiteql`` (module docstring)."""
    if "transient" not in (headers.get("Prefer") or "").lower():
        return one(400, "INVALID_HEADER", "A SuiteQL query needs the header Prefer: transient.")
    try:
        limit, offset = _page_args(query_string)
        payload = json.loads(body or b"{}")
        q = payload.get("q") if isinstance(payload, dict) else None
        items, total = run_query(state, q, limit, offset)
    except ValueError as exc:  # QueryRefused and malformed JSON
        return one(400, "INVALID_PARAMETER", str(exc))
    return json_response(200, {"links": _page_links(f"{base}{QUERY_PATH}", limit, offset, total),
                               "count": len(items), "hasMore": offset + len(items) < total,
                               "items": [{"links": [], **i} for i in items], "offset": offset,
                               "totalResults": total})  # fmt: skip
