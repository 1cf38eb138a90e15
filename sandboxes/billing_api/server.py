"""The sandbox's HTTP server (standard library, loopback only) and its Python API."""

from __future__ import annotations

import copy
import json
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sandboxes._http import BackgroundSandbox, SandboxHandler, SandboxServer, check_host
from sandboxes.billing_api.collections import API_VERSION, MAX_BODY, ApiError, _dumps
from sandboxes.billing_api.params import Params, parse_form
from sandboxes.billing_api.state import BillingState

_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


class _Handler(SandboxHandler):
    server_version = "BillingSandbox/1.0"

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        with state.lock:
            state.request_count += 1
        self._request_id = f"req_{threading.get_ident():x}{time.monotonic_ns():x}"
        self._version = API_VERSION
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return self._error(ApiError(413, "Request body too large."))
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self._error(
                ApiError(
                    401,
                    "You did not provide an API key. Provide it in the Authorization header "
                    "(Authorization: Bearer YOUR_SECRET_KEY).",
                )
            )
        try:
            if path.startswith("/sandbox/"):
                return self._send(200, self._sandbox(method, path, body))
            self._version = _api_version(self.headers.get("Stripe-Version"))
            fault = state.draw_fault()
            if fault == "burst_disconnect":
                state.count(0)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            if fault == "burst_429":
                ra = state.faults["retry_after_s"]
                return self._error(
                    ApiError(429, "Too many requests hit the API too quickly.", "rate_limit"),
                    {"Retry-After": f"{ra:g}"},
                )
            if fault in ("burst_500", "error_rate_500"):
                return self._error(ApiError(500, "An unknown error occurred."))
            params = Params.from_query(parts.query)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if body and ctype == "application/x-www-form-urlencoded":
                params = params.merged(parse_form(body))
            if method != "GET":
                raise ApiError(405, f"Unrecognized request URL ({method}: {path}).")
            slow = state.faults["slow_page_ms"]
            if slow > 0:
                time.sleep(slow / 1000)
            self._send(200, self._route(path, params))
        except ApiError as exc:
            self._error(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500, like a real server
            self._error(ApiError(500, f"{type(exc).__name__}: {exc}"))

    def _route(self, path: str, p: Params) -> bytes:
        state = self.server.state
        if not path.startswith("/v1/"):
            raise ApiError(404, f"Unrecognized request URL (GET: {path}).")
        rest = path[4:]
        if rest in state.collections:
            return state.list(rest, p)
        if rest == "subscription_items":
            return state.subscription_items(p)
        segs = rest.split("/")
        if rest.startswith("billing/meter_events/") and len(segs) == 3:
            return state.retrieve("billing/meter_events", segs[2], p)
        if len(segs) == 2 and (segs[0] in state.collections or segs[0] == "prices"):
            return state.retrieve(segs[0], segs[1], p)
        if len(segs) == 3 and segs[0] in ("invoices", "credit_notes") and segs[2] == "lines":
            return state.nested(segs[0], segs[1], "lines", p)
        raise ApiError(404, f"Unrecognized request URL (GET: {path}).")

    def _sandbox(self, method: str, path: str, body: bytes) -> bytes:
        state = self.server.state
        if path == "/sandbox/stats" and method == "GET":
            return _dumps(state.stats())
        if method != "POST":
            raise ApiError(405, f"{method} not allowed on {path}")
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"invalid JSON body: {exc.msg}") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "the body must be a JSON object")
        if path == "/sandbox/events":
            if not payload.get("type"):
                raise ApiError(400, "Missing required param: type.", "parameter_missing")
            return _dumps(
                state.add_event(payload["type"], payload.get("object"), payload.get("created"))
            )
        if path == "/sandbox/faults":
            return _dumps(state.set_faults(**payload))
        raise ApiError(404, f"Unrecognized request URL (POST: {path}).")

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.server.state.count(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", self._request_id)
            self.send_header("Stripe-Version", self._version)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _error(self, exc: ApiError, headers: dict | None = None) -> None:
        """Stripe's error body; ``Stripe-Should-Retry: true`` on 429 and 5xx (a retry can
        succeed), ``false`` on the other 4xx but 409 (the same request fails the same way)."""
        if exc.status != 409:
            retry = exc.status == 429 or exc.status >= 500
            headers = {"Stripe-Should-Retry": "true" if retry else "false", **(headers or {})}
        self._send(exc.status, _dumps(exc.body(self._request_id)), headers)


def _api_version(requested: str | None) -> str:
    """The ``Stripe-Version`` a response names: the request's, else the account's. Objects
    keep their ``2025-03-31.basil`` shapes whichever version is named."""
    if requested is None or not requested.strip():
        return API_VERSION
    requested = requested.strip()
    if not _VERSION.match(requested):
        raise ApiError(400, f"Invalid Stripe API version: {requested}")
    return requested


class _Server(SandboxServer):
    handler = _Handler


def _prepare_folder(
    data_dir, subscriptions: int, seed: int, year: int, bad_rows: int
) -> tuple[Path | None, tempfile.TemporaryDirectory | None]:
    """An existing canonical folder, or a fresh demo generation (None when empty)."""
    if data_dir is not None and (Path(data_dir) / "invoices.csv").exists():
        return Path(data_dir), None
    if subscriptions <= 0:
        return None, None
    from sync_core.demo.generator import generate

    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="billing-sandbox-")
        data_dir = tmp.name
    generate(data_dir, subscriptions=subscriptions, seed=seed, year=year, bad_rows=bad_rows)
    return Path(data_dir), tmp


# -------------------------------------------------------------------------------- Python API


class BillingSandbox(BackgroundSandbox):
    """The sandbox billing API on a background thread, on a free loopback port.

    ``BillingSandbox(data_dir)`` serves an existing canonical folder (or generates into it when
    empty); ``BillingSandbox(subscriptions=300, seed=7, year=2025, bad_rows=0)`` generates into
    a temporary folder; ``subscriptions=0`` starts empty (see :meth:`add_objects`).
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        subscriptions: int = 300,
        seed: int = 7,
        year: int = 2025,
        bad_rows: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ):
        folder, self._tmp = _prepare_folder(data_dir, subscriptions, seed, year, bad_rows)
        self.data_dir = folder
        self.state = BillingState(folder)
        self.url = self._serve(_Server((check_host(host), port), self.state, verbose))

    @property
    def request_count(self) -> int:
        return self.state.request_count

    def add_event(self, type: str, obj: dict, created: int | None = None) -> dict:  # noqa: A002
        """Upsert ``obj`` into its collection and append a ``type`` event; returns the event."""
        return self.state.add_event(type, obj, created)

    def add_objects(self, collection: str, objs: Iterable[dict]) -> int:
        """Bulk-load objects into a collection (``customers``, ``invoices``, ...), no events."""
        return self.state.add_objects(collection, objs)

    def faults(self, **settings) -> dict:
        """Set fault injection: burst_429, burst_500, burst_disconnect, retry_after_s,
        error_rate_500, slow_page_ms, seed. Returns the current settings."""
        return self.state.set_faults(**settings)

    def ids(self, collection: str) -> list[str]:
        """Every id of a collection, newest first (what a full paging must return)."""
        with self.state.lock:
            return [k[1] for k in reversed(self.state.collections[collection].keys)]

    def objects(self, collection: str) -> list[dict]:
        """The stored objects (invoices with all their lines), newest first."""
        with self.state.lock:
            coll = self.state.collections[collection]
            return [copy.deepcopy(coll.objs[k[1]]) for k in reversed(coll.keys)]

    def stats(self) -> dict:
        return self.state.stats()

    def prerender(self, collection: str) -> None:
        """Render (and cache) every object's JSON now, e.g. before a timed run."""
        with self.state.lock:
            coll = self.state.collections[collection]
            for oid in coll.objs:
                coll.json(oid)

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def __repr__(self) -> str:
        return f"BillingSandbox({self.url})"
