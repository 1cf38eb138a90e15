"""The sandbox ERP's read side: SuiteQL over REST, the way NetSuite exposes its GL.

``POST {base}/query/v1/suiteql?limit=N&offset=M`` (NetSuite: ``/services/rest/query/v1/suiteql``) with header ``Prefer: transient``
and body ``{"q": "SELECT ..."}`` runs one read-only query and answers a page::

    {"links": [{"rel": "self", "href": ...}, {"rel": "next", ...}], "count": 2,
     "hasMore": true, "offset": 0, "totalResults": 5,
     "items": [{"links": [], "id": "1", "externalid": "US01-INV-in_1-v1", ...}, ...]}

As in NetSuite, values come back as strings and null fields are left out; ``limit`` is 1 to
1000 (default 1000), ``offset`` a multiple of nothing in particular (0 by default).

Tables (a small, NetSuite-shaped subset; amounts are the sandbox's integer minor units):

| table | columns |
|---|---|
| ``transaction`` | id, externalid, tranid, type (``Journal``), trandate, postingperiod (``YYYY-MM``), subsidiary, currency, memo, createddate, lastmodifieddate |
| ``transactionline`` | transaction, id (line number), subsidiary, entity, memo, foreignamount (debit - credit), debitforeignamount, creditforeignamount, custcol_correlation_id |
| ``transactionaccountingline`` | transaction, transactionline, account (account number), debit, credit, amount (base currency: always null here, the payload carries no exchange rate), posting (``T``) |

**Safety.** The query runs on the store's connection under a SQLite authorizer that allows a
SELECT reading these three views and nothing else: no other table, no PRAGMA, ATTACH, write,
or recursive CTE; it must start with ``SELECT``, is one statement, and is interrupted after
``QUERY_BUDGET_S`` seconds. A refused query answers 400 ``INVALID_PARAMETER`` /
``USER_ERROR`` like NetSuite, never a 500.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from urllib.parse import parse_qs

QUERY_PATH = "/query/v1/suiteql"  # under the REST base, as /record/v1/journalEntry/ is
# NetSuite's full path, for a client whose base URL is the host only
QUERY_PATHS = (QUERY_PATH, "/services/rest" + QUERY_PATH)
MAX_LIMIT = 1000
QUERY_BUDGET_S = 5.0
VIEWS = ("transaction", "transactionline", "transactionaccountingline")

_VIEW_SQL = {
    "transaction": """SELECT internal_id AS id, external_id AS externalid,
        external_id AS tranid, 'Journal' AS type, json_extract(record, '$.tranDate') AS trandate,
        json_extract(record, '$.period') AS postingperiod,
        json_extract(record, '$.subsidiary') AS subsidiary,
        json_extract(record, '$.currency') AS currency, json_extract(record, '$.memo') AS memo,
        created_at AS createddate, updated_at AS lastmodifieddate FROM journal_entry""",
    "transactionline": """SELECT je.internal_id AS "transaction",
        json_extract(li.value, '$.line') AS id,
        json_extract(je.record, '$.subsidiary') AS subsidiary,
        json_extract(li.value, '$.entity') AS entity, json_extract(li.value, '$.memo') AS memo,
        json_extract(li.value, '$.debit') - json_extract(li.value, '$.credit') AS foreignamount,
        json_extract(li.value, '$.debit') AS debitforeignamount,
        json_extract(li.value, '$.credit') AS creditforeignamount,
        json_extract(li.value, '$.custcol_correlation_id') AS custcol_correlation_id
        FROM journal_entry je, json_each(je.record, '$.line.items') li""",
    "transactionaccountingline": """SELECT je.internal_id AS "transaction",
        json_extract(li.value, '$.line') AS transactionline,
        json_extract(li.value, '$.account') AS account, NULL AS debit, NULL AS credit,
        NULL AS amount, 'T' AS posting
        FROM journal_entry je, json_each(je.record, '$.line.items') li""",
}
_STRING = re.compile(r"('(?:[^']|'')*')")
_BARE_TRANSACTION = re.compile(r'(?<![\w"])transaction(?![\w"])', re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


class QueryRefused(ValueError):
    """A query the sandbox does not run (not a single read-only SELECT of its tables)."""


def _error(status: int, code: str, detail: str):
    body = {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
            "title": "Bad Request" if status == 400 else "Error", "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code}]}  # fmt: skip
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def normalize(q: str) -> str:
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


def _ensure_views(conn: sqlite3.Connection) -> None:
    for name, sql in _VIEW_SQL.items():
        conn.execute(f'CREATE TEMP VIEW IF NOT EXISTS "{name}" AS {sql}')


def run_query(store, q: str, limit: int, offset: int) -> tuple[list[dict], int]:
    """(rows of the page, total rows) of a read-only query on the sandbox's journal store."""
    sql = normalize(q)
    deadline = time.monotonic() + QUERY_BUDGET_S
    with store._lock:  # the store's one connection; the sandbox owns both modules
        conn = store._conn
        _ensure_views(conn)
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
    return [{c: str(v) for c, v in zip(cols, r, strict=True) if v is not None} for r in rows], total


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


def suiteql(state, headers, query_string: str, body: bytes, host: str):
    """Answer ``POST /services/rest/query/v1/suiteql`` (module docstring)."""
    token = state.config.token
    if token is not None and headers.get("Authorization") != f"Bearer {token}":
        return _error(401, "INVALID_LOGIN", "Invalid or missing bearer token.")
    if "transient" not in (headers.get("Prefer") or "").lower():
        return _error(400, "INVALID_HEADER", "A SuiteQL query needs the header Prefer: transient.")
    try:
        limit, offset = _page_args(query_string)
        payload = json.loads(body or b"{}")
        q = payload.get("q") if isinstance(payload, dict) else None
        items, total = run_query(state.store, q, limit, offset)
    except ValueError as exc:  # QueryRefused and malformed JSON
        return _error(400, "INVALID_PARAMETER", str(exc))
    more = offset + len(items) < total
    base = f"http://{host}{QUERY_PATH}"
    links = [{"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"}]
    if more:
        links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
    page = {"links": links, "count": len(items), "hasMore": more, "offset": offset,
            "totalResults": total, "items": [{"links": [], **i} for i in items]}  # fmt: skip
    return 200, {"Content-Type": "application/json"}, json.dumps(page).encode()
