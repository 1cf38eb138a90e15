"""A small demo deployment served by the Dagster webserver and daemon, and a headless Chromium.

The deployment lives in a temporary folder: its own ``DAGSTER_HOME`` (the project's
``dagster_sqlite.yaml``), SQLite warehouse and demo file drop, seeded by
``python -m tests.browser.seed``. Then ``dagster-webserver`` serves ``workspace.yaml`` on a
free port (the default host, as ``make ui``) and ``dagster-daemon`` runs what the Launchpad
queues; the two sensors that are on by default (entity refresh, posting replay) are stopped
through GraphQL before the daemon starts, so no run but the tests' own competes for the CPU.
Canary secrets are in the servers' environment; every GraphQL response the browser receives is
recorded to prove none of them reaches the UI.

Chromium is Debian's (``SYNC_TEST_CHROMIUM``, default ``/usr/bin/chromium``; never downloaded).
Under CI (``CI=true``) a missing browser or a server that does not come up fails the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.servers import (
    BIN,
    CANARIES,
    CHROMIUM_ARGS,
    ROOT,
    VIEWPORT,
    Server,
    free_port,
    graphql,
    start,
    unavailable,
    wait_loaded,
)

SEED_TIMEOUT = 120


@dataclass
class Deployment:
    tmp: Path
    env: dict
    facts: dict
    web: Server
    daemon: Server
    repository: dict
    timings: dict = field(default_factory=dict)
    screenshots: Path | None = None

    @property
    def url(self) -> str:
        return self.web.url

    def has_job(self, name: str) -> bool:
        return any(j["name"] == name for j in self.repository["jobs"])


def deployment_env(tmp: Path) -> dict:
    """This process's environment without the user's project settings, pointed into ``tmp``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNC_", "DAGSTER_", "STRIPE_"))}  # fmt: skip
    env.update({
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "SYNC_WAREHOUSE_URL": f"sqlite:///{tmp / 'warehouse.sqlite'}",
        "SYNC_SOURCE_KIND": "demo",
        "SYNC_SOURCE_PATH": str(tmp / "demo_source"),
        "SYNC_DEMO_SUBSCRIPTIONS": "40",
        "SYNC_ERP_TARGET": "sql_ledger",
        "PYTHONUNBUFFERED": "1",
        **CANARIES,
    })  # fmt: skip
    return env


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    tmp = tmp_path_factory.mktemp("dagster_ui")
    env = deployment_env(tmp)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    shutil.copy(ROOT / "dagster_sqlite.yaml", home / "dagster.yaml")
    timings = {}

    t = time.monotonic()
    seed = subprocess.run(
        [sys.executable, "-m", "tests.browser.seed"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=SEED_TIMEOUT,
    )  # fmt: skip
    timings["seed"] = time.monotonic() - t
    (tmp / "seed.log").write_text(seed.stdout + seed.stderr)
    if seed.returncode:
        pytest.fail(f"seeding the demo deployment failed:\n{(seed.stdout + seed.stderr)[-4000:]}")
    facts = json.loads(next(ln for ln in seed.stdout.splitlines() if ln.startswith("SEED "))[5:])

    t = time.monotonic()
    port = free_port()
    # the default host, as `make ui` (tests check it is 127.0.0.1)
    web = start("webserver", [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-p",
                              str(port)], env, tmp, port)  # fmt: skip
    daemon = None
    try:
        repository = wait_loaded(web)
        for sensor in repository["sensors"]:
            if sensor["sensorState"]["status"] == "RUNNING":
                answer = graphql(port, "mutation($id: String) { stopSensor(id: $id) { __typename } }",
                                 {"id": sensor["id"]})  # fmt: skip
                assert answer["data"]["stopSensor"]["__typename"] == "StopSensorMutationResult", (
                    answer
                )
        daemon = start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                       env, tmp)  # fmt: skip
        timings["webserver"] = time.monotonic() - t
        shots = (
            ROOT / "docs" / "screenshots"
            if os.getenv("UPDATE_SCREENSHOTS") == "1"
            else tmp / "screenshots"
        )
        shots.mkdir(parents=True, exist_ok=True)
        yield Deployment(tmp, env, facts, web, daemon, repository, timings, shots)
    finally:
        for server in (daemon, web):
            if server is not None:
                server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import Error, sync_playwright

    path = os.getenv("SYNC_TEST_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        unavailable(f"no Chromium at {path} (SYNC_TEST_CHROMIUM): apt-get install chromium")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        except Error as exc:
            unavailable(f"Chromium at {path} does not start: {exc}")
        yield b
        b.close()


@dataclass
class Recorded:
    """Every GraphQL response body the browser received."""

    bodies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture(scope="module")
def context(browser, deployment, recorded):
    """One browser context for the module; GraphQL responses recorded."""
    ctx = browser.new_context(viewport=VIEWPORT, base_url=deployment.url)
    ctx.set_default_timeout(30_000)
    # the "Join the Dagster community" dialog, once dismissed, is remembered here
    ctx.add_init_script("try { localStorage.setItem('communityNux', '\"1\"') } catch (e) {}")

    def keep(response):
        if "/graphql" not in response.url:
            return
        try:
            recorded.bodies.append(response.text())
        except Exception as exc:  # noqa: BLE001 - a body gone with its page is noted
            recorded.errors.append(f"{response.url}: {exc}")

    ctx.on("response", keep)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(context):
    p = context.new_page()
    yield p
    p.close()
