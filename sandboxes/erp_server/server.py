"""The sandbox ERP's HTTP side: state, handler, fault harness and :class:`ErpSandbox`."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from sandboxes._http import SandboxServer, check_host
from sandboxes.erp_server import query as erp_query
from sandboxes.erp_server.config import FaultConfig
from sandboxes.erp_server.store import JournalStore
from sandboxes.erp_server.validate import Response, _dumps, _error, validate_journal

JOURNAL_PATH = "/record/v1/journalEntry/"
MAX_BODY = 10 * 2**20


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
