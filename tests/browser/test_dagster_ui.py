"""The operator's console: the Dagster UI of a small demo deployment, driven by headless Chromium.

What an operator must see and do (issue 12, items 7 and 8): the asset graph, the demo's months
materialized in the partitions of ``erp_postings``, a failing check with its severity, the open
rows of the posting exception queue, a ``period_close`` launched from the Launchpad that
succeeds; the UI on 127.0.0.1 only, a read-only webserver that refuses launches, and no secret
of the servers' environment in anything the browser receives. The tests share one deployment
and one browser context (``conftest.py``) and run in file order: the close, which refreshes a
month and so its checks, comes after the views that show the demo's failures.

Screenshots (1280x800) go to ``docs/screenshots/`` with ``UPDATE_SCREENSHOTS=1`` (for the
README), else to the deployment's temporary folder.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.browser.servers import (
    BIN,
    CANARIES,
    LOCATION,
    ROOT,
    free_port,
    graphql,
    start,
    wait_loaded,
)

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 150_000  # a daemon-launched run takes 7-14 s plus the month's refresh

REPOSITORY = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
RESOURCES = """query($s: RepositorySelector!) { allTopLevelResourceDetailsOrError(
  repositorySelector: $s) { ... on ResourceDetailsList { results { name } } } }"""


def visit(page, deployment, path: str):
    page.goto(deployment.url + path)
    return page


def shoot(page, deployment, name: str) -> Path:
    path = deployment.screenshots / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # an image of a rendered page, not a blank one
    return path


def test_asset_graph_shows_the_project_assets(page, deployment):
    visit(page, deployment, "/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for group in ("billing", "revenue", "erp", "reconciliation"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()

    visit(page, deployment, f"/locations/{LOCATION}/asset-groups/erp")
    graph = page.locator("body")
    for asset in ("erp_postings", "proposed_journals", "posting_exception_queue"):
        expect(graph.get_by_text(asset, exact=True).first).to_be_visible()
    # the group's upstream and downstream neighbours are drawn as links to their groups
    for asset in ("revenue_schedules", "accounting_lines", "reconciliation"):
        expect(graph.get_by_text(asset, exact=True).first).to_be_visible()
    # the asset nodes show their partitions and checks
    expect(page.get_by_text(re.compile(r"^\d+ partitions$")).first).to_be_visible()
    shoot(page, deployment, "asset-graph")


def test_erp_postings_partitions_show_the_demo_months(page, deployment):
    facts = deployment.facts
    done = len(facts["entities"]) * len(facts["periods"])
    now = time.gmtime()
    months = (now.tm_year - 2025) * 12 + now.tm_mon  # monthly partitions from 2025-01
    total = months * len(facts["entities"])

    visit(page, deployment, "/assets/erp_postings?view=partitions")
    expect(page.get_by_text(f"Materialized ({done})")).to_be_visible()
    expect(page.get_by_text(f"Missing ({total - done})")).to_be_visible()
    expect(page.get_by_text("Failed (0)")).to_be_visible()
    expect(page.get_by_text(f"{total} Partitions Selected")).to_be_visible()
    for entity in facts["entities"]:
        expect(page.get_by_text(entity, exact=True).first).to_be_visible()

    # one of the demo's months: its latest materialization, with the posting metadata
    key = f"{facts['entities'][0]}|{facts['periods'][0]}"
    visit(page, deployment, f"/assets/erp_postings?view=partitions&partition={quote(key)}")
    expect(page.get_by_text("held_journals").first).to_be_visible()
    expect(page.get_by_text("posted_now").first).to_be_visible()
    expect(page.get_by_text(f"Materialized ({done})")).to_be_visible()
    shoot(page, deployment, "erp-postings-partitions")


def test_failing_check_shows_its_severity(page, deployment):
    assert deployment.facts["open_exceptions"] > 0  # the demo holds journals: the check warns
    visit(page, deployment, "/assets/erp_postings?view=checks")
    expect(page.get_by_text("no_held_journals").first).to_be_visible()
    expect(page.get_by_text("This is a non-blocking asset check.")).to_be_visible()
    result = page.locator(".BaseTag").filter(has_text="Failed").first
    expect(result).to_be_visible()
    # WARN severity: the yellow warning tag (an ERROR failure is a red tag with another icon)
    expect(result.get_by_role("img", name="warning_outline")).to_be_visible()
    assert "yellow" in (result.get_attribute("style") or "")
    expect(page.get_by_text("held", exact=True).first).to_be_visible()
    shoot(page, deployment, "failing-check")


def test_exception_queue_rows_are_visible(page, deployment):
    facts = deployment.facts
    visit(page, deployment, "/assets/posting_exception_queue")
    expect(page.get_by_text("open_rows").first).to_be_visible()
    table = page.locator("table").filter(has_text="journal_key").first
    expect(table).to_be_visible()
    for header in ("entity", "period", "reason", "owner", "message"):
        expect(table.get_by_text(header, exact=True).first).to_be_visible()
    shown = table.inner_text()
    assert facts["open_journals"], "the demo leaves open posting exceptions"
    missing = [j for j in facts["open_journals"][:100] if j not in shown]
    assert not missing, f"open exceptions not in the UI's table: {missing}"
    for reason in facts["open_reasons"]:
        assert reason in shown
    table.scroll_into_view_if_needed()
    shoot(page, deployment, "exception-queue")


def _codemirror_replace(page, text: str) -> None:
    """Replace the Launchpad editor's YAML: select all, then insert the text as one input
    (typed keys would be auto-indented line by line)."""
    editor = page.locator(".CodeMirror").first
    expect(editor).to_be_visible()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    value = page.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")
    assert value.strip() == text.strip(), value


def test_period_close_launched_from_the_launchpad_succeeds(page, deployment):
    assert deployment.has_job("period_close"), "sync_assets/close_jobs.py defines period_close"
    entity, period = deployment.facts["closable"][0]
    config = (
        "ops:\n  close_period:\n    config:\n"
        f'      entity_id: {entity}\n      period: "{period}"\n      closed_by: browser-test\n'
    )
    visit(page, deployment, f"/locations/{LOCATION}/jobs/period_close/playground")
    _codemirror_replace(page, config)
    expect(page.get_by_text("No errors")).to_be_visible()
    launch = page.get_by_role("button", name="Launch Run")
    expect(launch).to_be_enabled()
    launch.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"), timeout=30_000)
    run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    # the run page's status tag, polled by the UI itself
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
    expect(page.get_by_text(f"close of {entity} {period} by browser-test").first).to_be_visible()
    shoot(page, deployment, "period-close-run")

    status = graphql(
        deployment.web.port,
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { status runConfigYaml } } }",
        {"id": run_id},
    )["data"]["runOrError"]
    assert status["status"] == "SUCCESS"
    assert f"entity_id: {entity}" in status["runConfigYaml"]


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) listening on ``port``."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            addr, hex_port = cols[1].split(":")
            if cols[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on UnauthorizedError { message } ... on PythonError { message } } }"""


def test_ui_binds_loopback_and_read_only_refuses_launches(page, deployment):
    # `make ui` binds loopback only (no host, the webserver's default, or 127.0.0.1)
    recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe and "dagster dev" in recipe.group(1)
    hosts = re.findall(r"\s(?:-h|--host)[ =](\S+)", recipe.group(1))
    assert set(hosts) <= {"127.0.0.1"}, recipe.group(1)
    assert _listening(deployment.web.port) == {"0100007F"}  # 127.0.0.1, nothing else

    port = free_port()
    ro = start("webserver-read-only", [str(BIN / "dagster-webserver"), "-w", "workspace.yaml",
                                       "-p", str(port), "--read-only"], deployment.env,
               deployment.tmp, port)  # fmt: skip
    try:
        wait_loaded(ro)
        entity, period = deployment.facts["closable"][-1]
        params = {
            "selector": {**REPOSITORY, "jobName": "period_close"},
            "runConfigData": {"ops": {"close_period": {"config": {
                "entity_id": entity, "period": period, "closed_by": "read-only"}}}},
        }  # fmt: skip
        answer = graphql(port, LAUNCH, {"p": params})["data"]["launchRun"]
        assert answer["__typename"] == "UnauthorizedError", answer

        page.goto(f"{ro.url}/locations/{LOCATION}/jobs/period_close/playground")
        expect(page.get_by_text("period_close").first).to_be_visible()
        # read-only: the Launchpad sends the operator back to the job's overview, no launch
        page.wait_for_url(re.compile(r"/jobs/period_close(/overview)?$"))
        expect(page.get_by_text("Job in").first).to_be_visible()
        expect(page.get_by_role("tab", name="Launchpad")).to_be_disabled()
        expect(page.get_by_role("button", name="Launch Run")).to_have_count(0)
        assert _listening(port) == {"0100007F"}
    finally:
        ro.stop()


def test_no_secret_reaches_the_browser(page, deployment, recorded):
    # the resources' config is shown by environment variable name, not by value
    visit(page, deployment, f"/locations/{LOCATION}/jobs/period_close/playground")
    expect(page.get_by_text("SYNC_WAREHOUSE_URL").first).to_be_visible()
    names = graphql(deployment.web.port, RESOURCES, {"s": REPOSITORY})["data"]
    names = [r["name"] for r in names["allTopLevelResourceDetailsOrError"]["results"]]
    assert {"erp", "stripe"} <= set(names), names
    for resource in names:
        visit(page, deployment, f"/locations/{LOCATION}/resources/{resource}")
        expect(page.get_by_text(resource, exact=True).first).to_be_visible()
        html = page.content()
        for name, value in CANARIES.items():
            assert value not in html, f"{name}'s value is on the {resource} resource page"
    page.wait_for_timeout(500)

    assert len(recorded.bodies) > 50, "the browser's GraphQL responses were recorded"
    everything = "\n".join(recorded.bodies)
    assert "erp_postings" in everything and "STRIPE_API_KEY" in everything
    for name, value in CANARIES.items():
        assert value not in everything, f"{name}'s value is in a GraphQL response"
        assert value.split("CANARY")[1] not in everything
