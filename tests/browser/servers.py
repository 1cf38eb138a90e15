"""Starting and stopping the Dagster servers of the browser tests, and their GraphQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "billing_erp_sync"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
CANARIES = {
    "STRIPE_API_KEY": "sk_test_CANARY_5f1c0e7d9a",
    "SYNC_ERP_TOKEN": "CANARY_erp_token_8b2d4f",
    "SYNC_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/CANARY_webhook_3e7a1c",
}
SERVER_TIMEOUT = 120  # seconds until the webserver has loaded the code location


def under_ci() -> bool:
    return os.getenv("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """A missing prerequisite: a failure under CI, a skip on a workstation."""
    if under_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { name
      sensors { id name sensorState { status } } jobs { name } } } } } } } }"""


@dataclass
class Server:
    """A process group started by the tests (webserver or daemon) and its log file."""

    name: str
    proc: subprocess.Popen
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def start(name: str, args: list[str], env: dict, tmp: Path, port: int | None = None) -> Server:
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server goes with it
        )  # fmt: skip
    return Server(name, proc, log, port)


def wait_loaded(server: Server, timeout: float = SERVER_TIMEOUT) -> dict:
    """Wait until ``/server_info`` answers and the code location is loaded; the location."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}):\n{server.tail()}")
        try:
            urllib.request.urlopen(f"{server.url}/server_info", timeout=5).read()
            entries = graphql(server.port, LOCATION_QUERY)["data"]["workspaceOrError"]
            entry = {e["name"]: e for e in entries["locationEntries"]}[LOCATION]
            loc = entry["locationOrLoadError"]
            if entry["loadStatus"] == "LOADED" and loc:
                if loc["__typename"] != "RepositoryLocation":
                    raise RuntimeError(f"{LOCATION} failed to load: {loc.get('message')}")
                return loc["repositories"][0]
            last = entry["loadStatus"]
        except (OSError, KeyError, TypeError) as exc:
            last = repr(exc)
        time.sleep(1)
    raise RuntimeError(f"{server.name} not ready after {timeout}s ({last}):\n{server.tail()}")
