"""A sandbox ERP with NetSuite REST journal-entry semantics, on the standard library only.

Endpoints (JSON; amounts are integer minor units):

- ``PUT /record/v1/journalEntry/eid:{externalId}``: upsert by external id. Creates the journal,
  or replaces the one with that external id (never a duplicate); answers ``204 No Content``
  with ``Location: http://HOST/record/v1/journalEntry/{internalId}``, the internal id staying
  the same across replaces.
- ``GET /record/v1/journalEntry/eid:{externalId}`` (or ``/{internalId}``): 200 with the journal
  (``id``, the lines, ``version`` = how many times it was written) or 404.
- ``POST /query/v1/suiteql`` (or ``/services/rest/query/v1/suiteql``): read-only SuiteQL over
  the journals, the GL read back for reconciliation (:mod:`sandboxes.erp_query`).
- ``GET /sandbox/journals``, ``GET /sandbox/stats``, ``GET /sandbox/requests`` (recent request
  log), ``POST /sandbox/reset``, ``POST /sandbox/configure`` (JSON body of faults).

Errors follow NetSuite's shape: ``{"type", "title", "status", "o:errorDetails": [{"detail",
"o:errorCode"}]}``. Validation (400): ``INVALID_CONTENT`` (malformed body or field),
``INVALID_ID`` (external id other than letters, digits, ``_`` and ``-``, or a body
``externalId`` that differs from the URL), ``MISSING_LINES``, ``INVALID_KEY_OR_REF`` (unknown
account), ``UNBALANCED`` (debits != credits), ``PERIOD_CLOSED`` / ``PERIOD_LOCKED`` for
(subsidiary, period) pairs configured as closed / locked (subsidiary ``*`` = all).

Faults (see :class:`FaultConfig`) apply to record requests: more than ``max_concurrency`` in
flight gets an immediate 429 (``CONCURRENCY_LIMIT_EXCEEDED``) with ``Retry-After`` (seconds,
fractional) and ``Retry-After-Ms``; every ``PUT`` then draws at most one injected fault from a
seeded generator, the rates being disjoint slices of one uniform draw so each holds on its
own: ``error_rate_429`` (immediate 429), ``error_rate_5xx`` (500 or 503 before writing),
``timeout_rate`` (sleep ``timeout_sleep_s`` so the client times out; no write unless
``timeout_writes``) and ``commit_then_fail_rate`` (write, then answer 500: the duplicate trap).
``latency_ms`` is the answer time of a record request (processing included), spent inside
the concurrency slot. A request leaves its slot before its
response is written, so a client with as many workers as the limit never sees a 429.

``/sandbox/stats`` counts responses per status code (``"204"``, ``"400"``, ``"429"``,
``"500"``, ...) plus the faults: ``timeouts``, ``commit_then_fail``, ``429_concurrency``,
``429_injected``, and ``max_in_flight``, ``journals`` (distinct), ``writes``.

Run: ``python -m sandboxes.erp_server --host 127.0.0.1 --port 0 --db erp.sqlite
--latency-ms 50 --max-concurrency 5 --error-rate-5xx 0.2``. In tests: ``with ErpSandbox(path,
max_concurrency=2) as erp: ... erp.url, erp.journals(), erp.stats(), erp.configure(...)``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import json
import os
import random
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from sandboxes import erp_query
from sandboxes._http import SandboxServer, check_host
from sync_core.posting import DEFAULT_CHART

# the sandbox account's chart: every account number of the platform's default mapping
DEFAULT_ACCOUNTS: frozenset[str] = frozenset(DEFAULT_CHART.values())
JOURNAL_PATH = "/record/v1/journalEntry/"
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
MAX_BODY = 10 * 2**20
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


# --------------------------------------------------------------------------------------------
# configuration


def _period_keys(values: Iterable | None) -> frozenset[tuple[str, str]]:
    """``{"1:2025-03", ("2", "2025-04"), "*:2025-05"}`` -> {(subsidiary, "YYYY-MM")}."""
    keys = set()
    for v in values or ():
        sub, period = v.split(":", 1) if isinstance(v, str) else v
        sub, period = str(sub).strip(), str(period).strip()
        if not sub or not PERIOD.fullmatch(period):
            raise ValueError(f"period key must be SUBSIDIARY:YYYY-MM (or *:YYYY-MM), got {v!r}")
        keys.add((sub, period))
    return frozenset(keys)


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """Faults and rules of the sandbox; change at run time with ``ErpSandbox.configure``."""

    latency_ms: float = 0.0
    error_rate_5xx: float = 0.0
    error_rate_429: float = 0.0
    timeout_rate: float = 0.0
    timeout_sleep_s: float = 1.0
    timeout_writes: bool = False
    commit_then_fail_rate: float = 0.0
    max_concurrency: int | None = None  # None or 0: unlimited
    retry_after_s: float = 0.05
    closed_periods: frozenset = frozenset()
    locked_periods: frozenset = frozenset()
    accounts: frozenset = DEFAULT_ACCOUNTS
    seed: int | None = None
    token: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "closed_periods", _period_keys(self.closed_periods))
        set_(self, "locked_periods", _period_keys(self.locked_periods))
        set_(self, "accounts", frozenset(str(a) for a in self.accounts))
        rates = {
            "error_rate_5xx": self.error_rate_5xx,
            "error_rate_429": self.error_rate_429,
            "timeout_rate": self.timeout_rate,
            "commit_then_fail_rate": self.commit_then_fail_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to more than 1: {rates}")
        if self.latency_ms < 0 or self.timeout_sleep_s < 0 or self.retry_after_s < 0:
            raise ValueError("latency_ms, timeout_sleep_s and retry_after_s must be >= 0")
        if self.max_concurrency is not None and self.max_concurrency < 0:
            raise ValueError("max_concurrency must be >= 0 (0 or None: unlimited)")

    def public(self) -> dict:
        """JSON-ready view (the token is never shown)."""
        d = dataclasses.asdict(self)
        d.pop("token")
        d["token_required"] = self.token is not None
        for k in ("closed_periods", "locked_periods"):
            d[k] = sorted(f"{s}:{p}" for s, p in d[k])
        d["accounts"] = sorted(d["accounts"])
        return d


# --------------------------------------------------------------------------------------------
# storage


class JournalStore:
    """Journals in SQLite (WAL), one connection guarded by a lock."""

    def __init__(self, path: str | os.PathLike):
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute(
            """CREATE TABLE IF NOT EXISTS journal_entry (
                internal_id INTEGER PRIMARY KEY AUTOINCREMENT,
                external_id TEXT NOT NULL UNIQUE,
                version INTEGER NOT NULL,
                record TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )"""
        )

    def upsert(self, external_id: str, record: dict) -> tuple[int, int]:
        """Create or replace; returns (internal id, version). The internal id never changes."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with self._lock:
            row = self._conn.execute(
                """INSERT INTO journal_entry (external_id, version, record, created_at, updated_at)
                   VALUES (?, 1, ?, ?, ?)
                   ON CONFLICT (external_id) DO UPDATE SET
                       version = journal_entry.version + 1,
                       record = excluded.record,
                       updated_at = excluded.updated_at
                   RETURNING internal_id, version""",
                (external_id, json.dumps(record, separators=(",", ":")), now, now),
            ).fetchone()
        return int(row[0]), int(row[1])

    _COLS = "internal_id, external_id, version, record, created_at, updated_at"

    @staticmethod
    def _journal(row) -> dict:
        internal_id, external_id, version, record, created, updated = row
        return {
            "id": str(internal_id),
            **json.loads(record),
            "externalId": external_id,
            "version": version,
            "createdDate": created,
            "lastModifiedDate": updated,
        }

    def get(self, external_id: str | None = None, internal_id: int | None = None) -> dict | None:
        where, arg = (
            ("external_id", external_id) if internal_id is None else ("internal_id", internal_id)
        )
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._COLS} FROM journal_entry WHERE {where} = ?", (arg,)
            ).fetchone()
        return None if row is None else self._journal(row)

    def all(self) -> list[dict]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLS} FROM journal_entry ORDER BY internal_id"
            ).fetchall()
        return [self._journal(r) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(distinct journals, total writes)."""
        with self._lock:
            n, writes = self._conn.execute(
                "SELECT count(*), coalesce(sum(version), 0) FROM journal_entry"
            ).fetchone()
        return int(n), int(writes)

    def reset(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM journal_entry")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------------------------
# validation


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


# --------------------------------------------------------------------------------------------
# the ERP


class ErpState:
    """Everything behind the HTTP handler: config, store, fault generator, counters."""

    def __init__(self, db_path, config: FaultConfig):
        self.store = JournalStore(db_path)
        self._lock = threading.Lock()
        self.config = config
        self._rng = random.Random(config.seed)
        self._stats: collections.Counter = collections.Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._log: collections.deque = collections.deque(maxlen=200_000)

    # config and counters
    def configure(self, **changes) -> FaultConfig:
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            return self.config

    def count(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._stats[k] += 1

    def stats(self) -> dict:
        journals, writes = self.store.counts()
        with self._lock:
            return {
                **dict(self._stats),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "journals": journals,
                "writes": writes,
            }

    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._log)

    def log(self, entry: dict) -> None:
        with self._lock:
            self._log.append(entry)

    def reset(self) -> None:
        self.store.reset()
        with self._lock:
            self._stats.clear()
            self._log.clear()
            self._max_in_flight = self._in_flight
            self._rng = random.Random(self.config.seed)

    # concurrency slot
    def try_acquire(self, limit: int | None) -> bool:
        with self._lock:
            if limit and self._in_flight >= limit:
                return False
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def draw_fault(self, cfg: FaultConfig) -> str | None:
        """At most one fault per write, each rate a disjoint slice of one uniform draw."""
        with self._lock:
            u, coin = self._rng.random(), self._rng.random()
        for name, rate in (
            ("429", cfg.error_rate_429),
            ("500" if coin < 0.5 else "503", cfg.error_rate_5xx),
            ("timeout", cfg.timeout_rate),
            ("commit_then_fail", cfg.commit_then_fail_rate),
        ):
            if u < rate:
                return name
            u -= rate
        return None


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": f"{seconds:g}", "Retry-After-Ms": str(round(seconds * 1000))}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ErpSandbox/1.0"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections close after this
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ----------------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        state = self.server.state
        t0 = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return self._send(
                _error(413, [("INVALID_CONTENT", "Bad or too large Content-Length.")])
            )
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self._fault = None
        state.count("requests")
        try:
            if path.startswith("/sandbox/"):
                resp = self._sandbox(method, path, body)
            elif path.startswith(JOURNAL_PATH):
                resp = self._record(method, path[len(JOURNAL_PATH) :], body)
            elif path in erp_query.QUERY_PATHS and method == "POST":  # the GL read (SuiteQL)
                host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
                resp = erp_query.suiteql(state, self.headers, urlsplit(self.path).query, body, host)
            else:
                resp = _error(404, [("NOT_FOUND", f"No resource at {path}.")])
        except Exception as exc:  # noqa: BLE001 - any bug answers 500, like a real server
            resp = _error(500, [("UNEXPECTED_ERROR", f"{type(exc).__name__}: {exc}")])
        state.count(str(resp[0]))
        if path.startswith(JOURNAL_PATH):
            ref = unquote(path[len(JOURNAL_PATH) :])
            state.log(
                {
                    "method": method,
                    "ref": ref,
                    "status": resp[0],
                    "fault": self._fault,
                    "start": t0,
                    "end": time.monotonic(),
                    "retry_after_s": float(resp[1].get("Retry-After", 0) or 0),
                }
            )
        self._send(resp)

    def _send(self, resp: Response) -> None:
        status, headers, body = resp
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if status != 204:
                self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            if body and status != 204:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up (timed out) before the answer

    def _sandbox(self, method: str, path: str, body: bytes) -> Response:
        state = self.server.state
        if method == "GET" and path == "/sandbox/journals":
            items = state.store.all()
            return (
                200,
                {"Content-Type": "application/json"},
                _dumps({"count": len(items), "items": items}),
            )
        if method == "GET" and path == "/sandbox/stats":
            return 200, {"Content-Type": "application/json"}, _dumps(state.stats())
        if method == "GET" and path == "/sandbox/requests":
            return 200, {"Content-Type": "application/json"}, _dumps(state.requests())
        if method == "POST" and path == "/sandbox/reset":
            state.reset()
            return 204, {}, None
        if method == "POST" and path == "/sandbox/configure":
            try:
                changes = json.loads(body or b"{}")
                cfg = state.configure(**changes)
            except (ValueError, TypeError) as exc:
                return _error(400, [("INVALID_CONTENT", str(exc))])
            return 200, {"Content-Type": "application/json"}, _dumps(cfg.public())
        return _error(404, [("NOT_FOUND", f"No sandbox resource {method} {path}.")])

    def _record(self, method: str, ref: str, body: bytes) -> Response:
        state = self.server.state
        cfg = state.config
        if cfg.token is not None and self.headers.get("Authorization") != f"Bearer {cfg.token}":
            return _error(401, [("INVALID_LOGIN", "Invalid or missing bearer token.")])
        if not state.try_acquire(cfg.max_concurrency):
            state.count("429_concurrency")
            self._fault = "concurrency"
            return _error(
                429,
                [
                    (
                        "CONCURRENCY_LIMIT_EXCEEDED",
                        "Concurrent request limit exceeded. Request blocked.",
                    )
                ],
                _retry_after(cfg.retry_after_s),
            )
        # latency_ms is the ERP's answer time (processing included), spent inside the slot;
        # the slot is released before the response is written
        deadline = time.monotonic() + cfg.latency_ms / 1000
        try:
            if method == "PUT":
                resp = self._put(ref, body, cfg)
            elif method == "GET":
                resp = self._get(ref)
            else:
                resp = _error(405, [("METHOD_NOT_ALLOWED", f"{method} is not supported here.")])
            if self._fault != "429":  # an injected rate-limit 429 answers at once
                _sleep_until(deadline)
            return resp
        finally:
            state.release()

    def _get(self, ref: str) -> Response:
        store = self.server.state.store
        ref = unquote(ref)
        if ref.startswith("eid:"):
            journal = store.get(external_id=ref[4:])
        elif ref.isdigit():
            journal = store.get(internal_id=int(ref))
        else:
            journal = None
        if journal is None:
            return _error(404, [("NONEXISTENT_ID", f"Record {ref} was not found.")])
        return 200, {"Content-Type": "application/json"}, _dumps(journal)

    def _put(self, ref: str, body: bytes, cfg: FaultConfig) -> Response:
        state = self.server.state
        ref = unquote(ref)
        if not ref.startswith("eid:"):
            return _error(405, [("METHOD_NOT_ALLOWED", "Upsert needs eid:{externalId}.")])
        external_id = ref[4:]
        fault = self._fault = state.draw_fault(cfg)
        if fault == "429":
            state.count("429_injected")
            return _error(
                429,
                [("REQUEST_LIMIT_EXCEEDED", "Request rate limit exceeded.")],
                _retry_after(cfg.retry_after_s),
            )
        if fault in ("500", "503"):
            return _error(int(fault), [("UNEXPECTED_ERROR", "Injected failure before the write.")])
        if fault == "timeout":
            state.count("timeouts")
            if not cfg.timeout_writes:
                time.sleep(cfg.timeout_sleep_s)
                return _error(504, [("TIMEOUT", "Injected timeout; nothing was written.")])
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return _error(400, [("INVALID_CONTENT", "The request body is not valid JSON.")])
        record, errors = validate_journal(external_id, parsed, cfg)
        if errors:
            return _error(400, errors)
        internal_id, _version = state.store.upsert(external_id, record)
        if fault == "timeout":  # timeout_writes: written, but the answer comes too late
            time.sleep(cfg.timeout_sleep_s)
        if fault == "commit_then_fail":
            state.count("commit_then_fail")
            return _error(500, [("UNEXPECTED_ERROR", "Injected failure after the write.")])
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return 204, {"Location": f"http://{host}{JOURNAL_PATH}{internal_id}"}, None


class _Server(SandboxServer):
    handler = _Handler


# --------------------------------------------------------------------------------------------
# Python API


class ErpSandbox:
    """The sandbox ERP served from a background thread on a free local port.

    ``with ErpSandbox(tmp_path / "erp.sqlite", latency_ms=5, max_concurrency=2) as erp:``
    then ``erp.url``, ``erp.journals()``, ``erp.journal(eid)``, ``erp.stats()``,
    ``erp.requests()``, ``erp.configure(error_rate_5xx=0.2)``, ``erp.reset()``.
    Keyword arguments are :class:`FaultConfig` fields.
    """

    def __init__(
        self,
        db_path: str | os.PathLike = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        **faults,
    ):
        self.state = ErpState(db_path, FaultConfig(**faults))
        self._server = _Server((check_host(host), port), self.state, verbose)
        h, p = self._server.server_address[:2]
        self.url = f"http://{h}:{p}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._closed = False

    def journals(self) -> list[dict]:
        return self.state.store.all()

    def journal(self, external_id: str) -> dict | None:
        return self.state.store.get(external_id=external_id)

    def stats(self) -> dict:
        return self.state.stats()

    def requests(self) -> list[dict]:
        """Recent record requests: method, ref, status, fault, start/end (monotonic s)."""
        return self.state.requests()

    def configure(self, **faults) -> FaultConfig:
        return self.state.configure(**faults)

    @property
    def config(self) -> FaultConfig:
        return self.state.config

    def reset(self) -> None:
        self.state.reset()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
        self.state.store.close()

    def __enter__(self) -> ErpSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ErpSandbox({self.url}, {self.state.config!r})"


# --------------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandboxes.erp_server", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address only")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--db", default=":memory:", help="SQLite file (default in memory)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--max-concurrency", type=int, default=None)
    p.add_argument("--error-rate-5xx", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--timeout-rate", type=float, default=0.0)
    p.add_argument("--timeout-sleep-s", type=float, default=1.0)
    p.add_argument("--timeout-writes", action="store_true", help="write before a timeout")
    p.add_argument("--commit-then-fail-rate", type=float, default=0.0)
    p.add_argument("--retry-after-s", type=float, default=0.05)
    p.add_argument("--closed-period", action="append", default=[], metavar="SUB:YYYY-MM")
    p.add_argument("--locked-period", action="append", default=[], metavar="SUB:YYYY-MM")
    p.add_argument("--accounts", default=None, help="comma-separated account numbers")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    faults = {
        "latency_ms": a.latency_ms,
        "max_concurrency": a.max_concurrency,
        "error_rate_5xx": a.error_rate_5xx,
        "error_rate_429": a.error_rate_429,
        "timeout_rate": a.timeout_rate,
        "timeout_sleep_s": a.timeout_sleep_s,
        "timeout_writes": a.timeout_writes,
        "commit_then_fail_rate": a.commit_then_fail_rate,
        "retry_after_s": a.retry_after_s,
        "closed_periods": a.closed_period,
        "locked_periods": a.locked_period,
        "seed": a.seed,
        # a token on the command line would show in `ps`: read it from the environment
        "token": os.environ.get("ERP_SANDBOX_TOKEN") or None,
    }
    if a.accounts:
        faults["accounts"] = [s.strip() for s in a.accounts.split(",") if s.strip()]
    state = ErpState(a.db, FaultConfig(**faults))
    server = _Server((check_host(a.host), a.port), state, a.verbose)
    host, port = server.server_address[:2]

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"ERP sandbox listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.close_connections()
        state.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
