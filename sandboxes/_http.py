"""HTTP plumbing shared by the sandbox servers: a threaded server bound to loopback only,
which can drop its open connections on close, the request handler base every verb of which
goes to ``_dispatch(method)``, and the command-line serving loop."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server holding the sandbox's ``state``; subclasses set ``handler``."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    handler: type

    def __init__(self, address, state, verbose: bool = False):
        self.state = state
        self.verbose = verbose
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, self.handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def check_host(host: str) -> str:
    """The address to bind: loopback only (``localhost`` means 127.0.0.1)."""
    if host == "localhost":
        return "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the sandbox binds to a loopback address only, not {host!r}")
    return host


class SandboxHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no Nagle delay, requests logged only when the server is verbose;
    every verb calls ``self._dispatch(method)``, which subclasses define."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections close after this
    server: SandboxServer

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        raise NotImplementedError

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


def serve_until_stopped(server: SandboxServer, banner: str, cleanup: Callable[[], None]) -> int:
    """Serve until SIGTERM or Ctrl-C (printing ``banner`` first), then close the server, its
    open connections and ``cleanup()``; the exit code."""

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(banner, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.close_connections()
        cleanup()
    return 0


class BackgroundSandbox:
    """A sandbox server on a daemon thread, as tests and benchmarks use it: :meth:`_serve`
    starts it (``root_url`` is ``http://host:port``), :meth:`close` (or leaving the ``with``
    block) stops it, drops its open connections and calls :meth:`_cleanup` once."""

    _server: SandboxServer
    root_url: str

    def _serve(self, server: SandboxServer) -> str:
        self._server = server
        h, p = server.server_address[:2]
        self.root_url = f"http://{h}:{p}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._closed = False
        return self.root_url

    def _cleanup(self) -> None:
        """What the subclass releases after the server stops (a temp folder, a database)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
        self._cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
