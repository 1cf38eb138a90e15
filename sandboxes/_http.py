"""HTTP plumbing shared by the sandbox servers: a threaded server bound to loopback only,
which can drop its open connections on close."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import ThreadingHTTPServer


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
