"""The sandbox ERP's HTTP side: state, request handler, fault harness and :class:`ErpSandbox`.

Everything NetSuite serves is under ``/services/rest``; the root has nothing but the
``/sandbox/*`` hooks. Record and SuiteQL requests pass authentication first (unless the
sandbox runs with ``auth=None``), then the concurrency slot and the faults of
:class:`~sandboxes.erp_server.config.FaultConfig`: more than ``max_concurrency`` in flight
gets an immediate 429 ``CONCURRENCY_LIMIT_EXCEEDED`` with ``Retry-After`` (seconds,
fractional) and ``Retry-After-Ms``; every write (PUT, POST, PATCH) then draws at most one
injected fault from a seeded generator, the rates being disjoint slices of one uniform draw:
``error_rate_429`` (immediate 429), ``error_rate_5xx`` (500 or 503 before writing),
``timeout_rate`` (sleep ``timeout_sleep_s`` so the client times out; no write unless
``timeout_writes``) and ``commit_then_fail_rate`` (write, then answer 500: the duplicate trap).
``latency_ms`` is the answer time of a request (processing included), spent inside the slot;
a request leaves its slot before its response is written.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
import time
from urllib.parse import unquote, urlsplit

from sandboxes._http import SandboxHandler, SandboxServer
from sandboxes.erp_server import hooks
from sandboxes.erp_server.auth import TOKEN_PATH, Authenticator, SandboxAuth
from sandboxes.erp_server.config import ALL, FaultConfig
from sandboxes.erp_server.master import FiledropMaster, MasterData
from sandboxes.erp_server.query import QUERY_PATH, suiteql
from sandboxes.erp_server.records import RECORD, Records
from sandboxes.erp_server.store import JournalStore
from sandboxes.erp_server.wire import Response, one

BASE = "/services/rest"
MAX_BODY = 10 * 2**20


class ErpState:
    """Everything behind the handler: config, master data, store, auth, faults, counters."""

    def __init__(self, db_path, config: FaultConfig, auth: SandboxAuth | None = None,
                 master: MasterData | None = None, filedrop=None):  # fmt: skip
        self.store = JournalStore(db_path)
        self.master = master or MasterData.default()
        self.filedrop = None if filedrop is None else FiledropMaster(self.master, filedrop)
        self.auth = None if auth is None else Authenticator(auth)
        self.records = Records(self)
        self._lock = threading.Lock()
        self.config = config
        self._rng = random.Random(config.seed)
        self._stats: collections.Counter = collections.Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._log: collections.deque = collections.deque(maxlen=200_000)

    def configure(self, **changes) -> FaultConfig:
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            return self.config

    def global_period_status(self) -> tuple[frozenset, frozenset]:
        """The ``YYYY-MM`` months closed / locked for every subsidiary."""
        cfg = self.config
        return (frozenset(p for s, p in cfg.closed_periods if s == ALL),
                frozenset(p for s, p in cfg.locked_periods if s == ALL))  # fmt: skip

    def refresh_master(self) -> None:
        if self.filedrop is not None:
            self.filedrop.refresh()

    def count(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._stats[k] += 1

    def stats(self) -> dict:
        journals, writes = self.store.counts()
        with self._lock:
            return {**dict(self._stats), "in_flight": self._in_flight,
                    "max_in_flight": self._max_in_flight, "journals": journals,
                    "writes": writes}  # fmt: skip

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


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": f"{seconds:g}", "Retry-After-Ms": str(round(seconds * 1000))}


class _Handler(SandboxHandler):
    server_version = "ErpSandbox/2.0"

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        t0 = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return self._send(one(413, "INVALID_CONTENT", "Bad or too large Content-Length."))
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        self._fault, self._auth = None, None
        api = path.startswith(BASE + "/") and path != BASE + TOKEN_PATH
        state.count("requests" if api else "token_requests" if path.startswith(BASE) else "hooks")
        try:
            if path.startswith("/sandbox/"):
                resp = hooks.sandbox(state, method, path, body)
            elif path == BASE + TOKEN_PATH and method == "POST":
                resp = self._token(body, f"http://{host}{BASE}{TOKEN_PATH}")
            elif api:
                resp = self._api(method, path[len(BASE) :], split.query, body, host)
            else:
                resp = one(404, "NONEXISTENT_ID", f"No resource at {path}: the REST API is "
                           f"under {BASE}.")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - any bug answers 500, like a real server
            resp = one(500, "UNEXPECTED_ERROR", f"{type(exc).__name__}: {exc}")
        if not path.startswith("/sandbox/"):
            state.count(str(resp[0]))
        if api:
            rest = unquote(path[len(BASE) :])
            ref = rest[len(RECORD) + 1 :] if rest.startswith(RECORD + "/") else rest
            state.log({"method": method, "ref": ref, "status": resp[0], "fault": self._fault,
                       "auth": self._auth, "start": t0, "end": time.monotonic(),
                       "retry_after_s": float(resp[1].get("Retry-After", 0) or 0)})  # fmt: skip
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

    def _token(self, body: bytes, token_url: str) -> Response:
        auth = self.server.state.auth
        if auth is None:
            return one(404, "NONEXISTENT_ID", "This sandbox runs without authentication.")
        return auth.token(body, token_url)

    def _api(self, method: str, rest: str, query: str, body: bytes, host: str) -> Response:
        state = self.server.state
        cfg = state.config
        base = f"http://{host}{BASE}"
        if state.auth is not None:
            url = f"http://{host}{BASE}{rest}" + (f"?{query}" if query else "")
            refused, self._auth = state.auth.check(method, url, self.headers, body)
            if refused is not None:
                state.count("401_" + self._auth.replace(" ", "_"))
                return refused
        state.refresh_master()
        if not state.try_acquire(cfg.max_concurrency):
            state.count("429_concurrency")
            self._fault = "concurrency"
            return one(429, "CONCURRENCY_LIMIT_EXCEEDED",
                       "Concurrent request limit exceeded. Request blocked.",
                       headers=retry_after(cfg.retry_after_s))  # fmt: skip
        deadline = time.monotonic() + cfg.latency_ms / 1000
        try:
            resp = self._route(method, rest, query, body, base, cfg)
            if self._fault != "429":  # an injected rate-limit 429 answers at once
                _sleep_until(deadline)
            return resp
        finally:
            state.release()

    def _route(self, method, rest: str, query: str, body: bytes, base: str, cfg) -> Response:
        state = self.server.state
        if rest == QUERY_PATH and method == "POST":
            return suiteql(state, self.headers, query, body, base)
        if rest != RECORD and not rest.startswith(RECORD + "/"):
            return one(404, "NONEXISTENT_ID", f"The sandbox serves journalEntry records and "
                       f"SuiteQL only, not {rest}.")  # fmt: skip
        tail = rest[len(RECORD) + 1 :]
        if method == "GET":
            return state.records.read(tail, query, base)
        if method not in ("PUT", "POST", "PATCH"):
            return one(405, "METHOD_NOT_ALLOWED", f"{method} is not supported here.")
        fault = self._fault = state.draw_fault(cfg)
        if fault == "429":
            state.count("429_injected")
            return one(429, "REQUEST_LIMIT_EXCEEDED", "Request rate limit exceeded.",
                       headers=retry_after(cfg.retry_after_s))  # fmt: skip
        if fault in ("500", "503"):
            return one(int(fault), "UNEXPECTED_ERROR", "Injected failure before the write.")
        if fault == "timeout":
            state.count("timeouts")
            if not cfg.timeout_writes:
                time.sleep(cfg.timeout_sleep_s)
                return one(504, "TIMEOUT", "Injected timeout; nothing was written.")
        resp = state.records.write(method, tail, query, self.headers, body, base)
        if fault == "timeout":  # timeout_writes: written, but the answer comes too late
            time.sleep(cfg.timeout_sleep_s)
        if fault == "commit_then_fail" and resp[0] < 300:
            state.count("commit_then_fail")
            return one(500, "UNEXPECTED_ERROR", "Injected failure after the write.")
        return resp


class _Server(SandboxServer):
    handler = _Handler
