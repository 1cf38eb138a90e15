"""Exactly-once posting under faults, on realistic journals from the demo platform.

- a posting process SIGKILLed at any moment, then re-run, leaves exactly the ledger of a clean
  run (no missing, no duplicate journal, every journal whole and balanced);
- a NetSuite REST ERP (the strict sandbox) answering 5xx, 429, timeouts after the write and
  commit-then-fail: every journal is posted once with its lines (never doubled) or queued with
  a reason, and a replay without faults posts the rest exactly once;
- the same source events delivered three times and shuffled give the ledger of one delivery;
- a closed ERP period under each policy (next_open, hold), then reopened;
- journals breaking a posting rule are held whole while the rest of the batch posts, and a
  payment waits for its held invoice;
- a changed document is reversed (``-REV``) and posted as v2, never edited in place.

The journals come from the demo generator through the engine (``recognize`` ->
``sync_core.proposal``), the way ``proposed_journals`` builds them.
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from sandboxes.erp_server import ErpSandbox
from sync_assets.demo_run import DERIVED, INGEST
from sync_assets.partitions import entity_partitions, partition_key
from sync_core import filedrop, ingest
from sync_core.demo.generator import generate
from sync_core.erp.auth import OAuth2ClientCredentials
from sync_core.erp.config import load_erp_config
from sync_core.erp.ledger import JOURNAL_COLS, LINE_COLS, SqlLedger
from sync_core.erp.netsuite_body import to_minor_units
from sync_core.erp.periods import closed_periods, set_period_status
from sync_core.erp.poster import post_period
from sync_core.erp.queue import ExceptionQueue
from sync_core.erp.rest import PostOutcome, RestErpClient
from sync_core.posting import DEFAULT_CHART
from sync_core.proposal import propose as build_proposal
from sync_core.proposal import ready_lines, rule_holds
from sync_core.revenue import recognize
from sync_core.subledger import document_customers, with_sources
from sync_core.warehouse.store import _engine
from tests.helpers import make_resources, materialize

ROOT = Path(__file__).resolve().parents[1]
ENTITY = "US01"
SEED = 21  # this seed has invoices with several lines on one account from February on
YEAR = [pd.Timestamp(f"2025-{m:02d}-01", tz="UTC") for m in range(1, 13)]
AMOUNTS = ["debit", "credit", "debit_functional", "credit_functional"]
VOLATILE = ["posted_at", "run_id"]


# --------------------------------------------------------------------------------------------
# the demo platform's journals


def load_entity(folder: Path, entity: str = ENTITY) -> dict[str, pd.DataFrame]:
    """The entity's canonical frames, validated by the ingest functions."""

    def read(name, header=None):
        df = filedrop.with_period(name, filedrop.read_object(folder, name), header)
        return df[df["entity_id"] == entity].reset_index(drop=True)

    frames = {n: ingest.prepare(n, read(n))[0] for n in ("customers", "payments", "usage_events")}
    for head, line in (("invoices", "invoice_lines"), ("credit_notes", "credit_note_lines")):
        h = read(head)
        frames[head], frames[line], _ = ingest.prepare_document(head, h, read(line, h))
    le = filedrop.read_object(folder, "legal_entities")
    frames["legal_entities"] = le[le["entity_id"] == entity].reset_index(drop=True)
    return frames


def accounting_lines(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return recognize(
        frames["invoices"],
        frames["invoice_lines"],
        frames["credit_notes"],
        frames["credit_note_lines"],
        frames["usage_events"],
        frames["legal_entities"],
        payments=frames["payments"],
    ).accounting_lines


def propose(frames, lines, period, chart=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(journal lines ready to post, queue rows held by rules) of one period, the way
    ``proposed_journals`` builds them (``sync_core.proposal``), before anything is posted."""
    proposal = build_proposal(
        with_sources(lines[lines["period"] == period], frames),
        customers=frames["customers"],
        subsidiary=frames["legal_entities"]["erp_subsidiary_id"].iloc[0],
        chart=DEFAULT_CHART if chart is None else chart,
        posted=pd.DataFrame(columns=JOURNAL_COLS),
        ledger_lines=lambda ids: pd.DataFrame(columns=LINE_COLS),
        period=period,
        closed_periods=set(),
        policy="next_open",
        open_exceptions=pd.DataFrame(),
    )
    return ready_lines(proposal), rule_holds(proposal)


def with_erp_ids(frames, missing: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    """Every customer known to the ERP, except ``missing``. (The demo bills a few customers
    of another entity: they get a crosswalk row here.)"""
    c = frames["customers"]
    others = sorted(set(document_customers(frames)) - set(c["customer_id"]))
    c = pd.concat([c, pd.DataFrame({"customer_id": others})], ignore_index=True)
    c["erp_customer_id"] = c["erp_customer_id"].fillna("C-" + c["customer_id"]).astype(object)
    c.loc[c["customer_id"].isin(missing), "erp_customer_id"] = None
    return {**frames, "customers": c}


@pytest.fixture(scope="module")
def demo_frames(tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("demo")
    generate(folder, subscriptions=40, seed=SEED, year=2025, bad_rows=0)
    return load_entity(folder)


@pytest.fixture(scope="module")
def known(demo_frames):
    """The demo frames with every customer known to the ERP, and their accounting lines."""
    frames = with_erp_ids(demo_frames)
    return frames, accounting_lines(frames)


def proposals(frames, lines, periods=YEAR, chart=None):
    return [(p, *propose(frames, lines, p, chart)) for p in periods]


# --------------------------------------------------------------------------------------------
# ledger helpers


def ledger_at(url: str) -> tuple[SqlLedger, ExceptionQueue]:
    engine = _engine(url)
    return SqlLedger(engine), ExceptionQueue(engine)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def post_all(plan, ledger, queue, **kw) -> list:
    return [
        post_period(j, h, entity_id=ENTITY, period=p, ledger=ledger, queue=queue, **kw)
        for p, j, h in plan
    ]


def key_of(external_id: str) -> str:
    base = external_id.removesuffix("-REV")
    return base.rsplit("-v", 1)[0]


def snapshot(ledger: SqlLedger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(journal headers without run id / posting time, journal lines), in a stable order."""
    j = ledger.journals(ENTITY).drop(columns=VOLATILE)
    j = j.sort_values("external_id").reset_index(drop=True)
    lines = ledger.lines(list(j["external_id"]))
    return j, lines.sort_values(["external_id", "line_no"]).reset_index(drop=True)


def open_rows(queue: ExceptionQueue) -> pd.DataFrame:
    q = queue.open(ENTITY)
    cols = ["journal_key", "period", "stage", "reason_code", "owner"]
    return q[cols].sort_values("journal_key").reset_index(drop=True)


def assert_sound(ledger: SqlLedger) -> None:
    """Every journal is whole (its header's line count and total), balanced, and unique."""
    j = ledger.journals()
    lines = ledger.lines()
    assert j["external_id"].is_unique
    assert not lines.duplicated(["external_id", "line_no"]).any()
    assert set(lines["external_id"]) == set(j["external_id"]), "journal without lines or v.v."
    per = lines.groupby("external_id").agg(
        n=("line_no", "size"),
        first=("line_no", "min"),
        last=("line_no", "max"),
        **{c: (c, "sum") for c in AMOUNTS},
    )
    per = per.join(j.set_index("external_id")[["line_count", "total_debit"]])
    assert (per["n"] == per["line_count"]).all()
    assert ((per["first"] == 1) & (per["last"] == per["n"])).all()
    assert (per["debit"] == per["total_debit"]).all()
    assert (per["debit"] == per["credit"]).all()
    assert (per["debit_functional"] == per["credit_functional"]).all()


# --------------------------------------------------------------------------------------------
# 1. SIGKILL at any moment, then a re-run

DRIVER = r"""
import os, pickle, signal, sys, time, traceback

import sqlalchemy as sa

from sync_core.erp.auth import OAuth2ClientCredentials
from sync_core.erp.config import load_erp_config
from sync_core.erp.ledger import JOURNAL_COLS, LINE_COLS, SqlLedger
from sync_core.erp.netsuite_body import to_minor_units
from sync_core.erp.poster import post_period
from sync_core.erp.queue import ExceptionQueue

with open(sys.argv[1], "rb") as f:
    data = pickle.load(f)
pause = float(sys.argv[2])


class PausingLedger(SqlLedger):
    # reports each batch, then waits inside its still open transaction
    def __init__(self, engine, progress):
        super().__init__(engine)
        self.progress = progress

    def post(self, headers, lines, conn=None, sources=None):
        result = super().post(headers, lines, conn=conn, sources=sources)
        if len(headers):
            os.write(self.progress, b"b")
            time.sleep(pause)
        return result


def engine_for(url, mode):
    engine = sa.create_engine(url, connect_args={"timeout": 60})
    if mode == "wal":  # as sync_core.warehouse.store._engine configures SQLite

        @sa.event.listens_for(engine, "connect")
        def _pragma(dbapi_conn, _):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def post_everything(url, mode, progress):
    engine = engine_for(url, mode)
    ledger, queue = PausingLedger(engine, progress), ExceptionQueue(engine)
    for period, journals, held in data["plan"]:
        post_period(journals, held, entity_id=data["entity"], period=period, ledger=ledger,
                    queue=queue, batch_size=data["batch_size"])
    os.write(progress, b"d")


def spawn(url, mode):
    # a fresh process (a fork of this one: the imports are paid once) posts everything
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            post_everything(url, mode, w)
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(w)
    return pid, r


def reap(pid, r, seen=b""):
    _, status = os.waitpid(pid, 0)
    while chunk := os.read(r, 4096):
        seen += chunk
    os.close(r)
    code = os.waitstatus_to_exitcode(status)
    print(code, seen.count(b"b"), int(b"d" in seen), flush=True)


# warm up (lazy imports, caches) so that each fork starts posting at once
devnull = os.open(os.devnull, os.O_WRONLY)
pause, warm = 0.0, pause
post_everything("sqlite://", "rollback", devnull)
pause = warm

# "kill URL MODE K DELAY": SIGKILL the posting process DELAY seconds after its K-th batch was
# written (K = 0: after it started); "run URL MODE": post everything, to the end.
print("ready", flush=True)
for command in sys.stdin:
    what, *args = command.split()
    if what == "kill":
        url, mode, k, delay = args
        pid, r = spawn(url, mode)
        seen = b""
        while seen.count(b"b") < int(k) and (chunk := os.read(r, 1)):
            seen += chunk
        time.sleep(float(delay))
        os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still this child's
        reap(pid, r, seen)
    else:
        reap(*spawn(*args))
"""
TRIALS = 20
BATCH = 5
PAUSE_S = 0.005
PERIODS = YEAR[:6]


class CountingLedger(SqlLedger):
    batches = 0

    def post(self, headers, lines, conn=None, sources=None):
        self.batches += bool(len(headers))
        return super().post(headers, lines, conn=conn, sources=sources)


def test_sigkill_at_any_moment_then_rerun_posts_exactly_the_clean_ledger(tmp_path, demo_frames):
    frames = demo_frames  # some customers lack an ERP id: their journals stay queued
    plan = proposals(frames, accounting_lines(frames), PERIODS)
    data = tmp_path / "plan.pickle"
    data.write_bytes(pickle.dumps({"plan": plan, "entity": ENTITY, "batch_size": BATCH}))

    clean, clean_q = ledger_at(sqlite_url(tmp_path / "clean.sqlite"))
    clean = CountingLedger(clean.engine)
    post_all(plan, clean, clean_q, batch_size=BATCH)
    expected, expected_lines = snapshot(clean)
    expected_open = open_rows(clean_q)
    batches = clean.batches
    assert len(expected) > 70 and batches > 15 and len(expected_open) > 0
    assert_sound(clean)

    rng = random.Random(20250301)
    kills = []
    for i in range(TRIALS):
        if i % 4 == 0:  # from the start: planning, the first writes, ...
            kills.append((0, rng.choice([0.0, rng.uniform(0.0, 0.15)])))
        else:  # after the k-th batch's writes: inside its transaction or just after
            kills.append((rng.randint(1, batches), rng.uniform(0, 2 * PAUSE_S)))
    urls = [sqlite_url(tmp_path / f"ledger{i}.sqlite") for i in range(TRIALS)]
    modes = ["wal" if i % 2 else "rollback" for i in range(TRIALS)]
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(data), str(PAUSE_S)],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout.readline().strip() == "ready"

        def command(line: str) -> tuple[int, int, bool]:
            driver.stdin.write(line + "\n")
            driver.stdin.flush()
            code, seen, done = driver.stdout.readline().split()
            return int(code), int(seen), done == "1"

        killed = [command(f"kill {u} {m} {k} {d}") for u, m, (k, d) in zip(urls, modes, kills)]
        reruns = [command(f"run {u} {m}") for u, m in zip(urls, modes)]
    finally:
        driver.stdin.close()
        driver.wait(timeout=30)
    assert all(code == 0 and done for code, _, done in reruns), reruns
    for i, url in enumerate(urls):
        ledger, queue = ledger_at(url)
        got, got_lines = snapshot(ledger)
        pd.testing.assert_frame_equal(got, expected, obj=f"trial {i} journals")
        pd.testing.assert_frame_equal(got_lines, expected_lines, obj=f"trial {i} lines")
        pd.testing.assert_frame_equal(open_rows(queue), expected_open, obj=f"trial {i} queue")
        assert_sound(ledger)
    cut = [seen for code, seen, done in killed if code == -signal.SIGKILL and not done]
    assert len(cut) >= TRIALS - 2, killed  # (a late kill may find the run finished)
    assert min(cut) == 0, killed  # some before the first batch was written
    assert sum(0 < s < batches for s in cut) >= TRIALS // 2, killed  # most mid-way


# --------------------------------------------------------------------------------------------
# 2. REST ERP faults, then a replay without them

FAULTS = {
    "error_rate_5xx": 0.2,
    "error_rate_429": 0.1,
    "timeout_rate": 0.05,
    "commit_then_fail_rate": 0.05,
}


def sandbox(path: Path, frames, **faults) -> ErpSandbox:
    """The sandbox ERP knowing every customer of ``frames`` (in US01's subsidiary)."""
    ids = sorted(set(frames["customers"]["erp_customer_id"].dropna()))
    customers = [{"entityid": c, "subsidiary": "1"} for c in ids]
    return ErpSandbox(path, master_data={"customers": customers}, **faults)


def rest_client(erp: ErpSandbox, **kw) -> RestErpClient:
    """The client as ``ErpResource`` builds it: OAuth 2.0, the shipped config/erp.yaml."""
    c = erp.credentials
    auth = OAuth2ClientCredentials(erp.token_url, c.client_id, c.certificate_id,
                                   c.private_key_pem)  # fmt: skip
    return RestErpClient(erp.url, auth=auth, config=load_erp_config(), **kw)


def erp_lines(erp: ErpSandbox, journal: dict) -> list[tuple]:
    """(account number, debit, credit in minor units, customer entityid) of its lines."""
    rows = erp.master.snapshot()[1]
    number = {r["id"]: r["acctnumber"] for r in rows["account"]}
    customer = {r["id"]: r["entityid"] for r in rows["customer"]}
    cur = {r["id"]: r["symbol"] for r in rows["currency"]}[journal["currency"]["id"]]
    return [(number[i["account"]["id"]], to_minor_units(i.get("debit") or 0, cur),
             to_minor_units(i.get("credit") or 0, cur),
             customer.get((i.get("entity") or {}).get("id")))
            for i in journal["line"]["items"]]  # fmt: skip


def assert_log_matches_erp(ledger: SqlLedger, erp: ErpSandbox) -> None:
    """Each journal the ledger logged is in the ERP once, in its posting period and currency,
    with the logged lines that carry a transaction amount (an FX line of functional amounts
    only is not sent), never doubled."""
    in_erp = {j["externalId"]: j for j in erp.journals()}
    assert len(in_erp) == len(erp.journals())  # one journal per external id
    rows = erp.master.snapshot()[1]
    month = {r["id"]: r["startdate"][:7] for r in rows["accountingperiod"]}
    symbol = {r["id"]: r["symbol"] for r in rows["currency"]}
    heads, lines = snapshot(ledger)
    assert set(heads["external_id"]) <= set(in_erp)
    for h in heads.itertuples():
        j = in_erp[h.external_id]
        assert (month[j["postingPeriod"]["id"]], symbol[j["currency"]["id"]]) == (
            f"{h.period:%Y-%m}", h.currency)  # fmt: skip
        mine = lines[(lines["external_id"] == h.external_id)
                     & ((lines["debit"] != 0) | (lines["credit"] != 0))]  # fmt: skip
        logged = list(
            zip(mine["erp_account"], mine["debit"], mine["credit"], mine["erp_customer_id"])
        )
        assert erp_lines(erp, j) == [(a, d, c, None if pd.isna(e) else e)
                                     for a, d, c, e in logged], h.external_id  # fmt: skip


def test_rest_faults_post_once_or_queue_then_replay_posts_the_rest_once(tmp_path, known):
    frames, lines = known
    # every customer is known, so only the ERP can refuse (or hold a payment whose invoice it
    # refused: stage "ordering")
    plan = list(proposals(frames, lines))
    assert all(h.empty for _, _, h in plan)
    keys = set().union(*(set(j["journal_key"]) for _, j, _ in plan))
    ledger, queue = ledger_at(sqlite_url(tmp_path / "log.sqlite"))
    erp_sandbox = sandbox(tmp_path / "erp.sqlite", frames, seed=5, timeout_sleep_s=0.5,
                          timeout_writes=True, retry_after_s=0.01, **FAULTS)  # fmt: skip
    client = rest_client(
        erp_sandbox,
        timeout_s=0.2,
        max_retries=2,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        max_workers=8,
    )
    with erp_sandbox as erp, client:
        post_all(plan, ledger, queue, rest=client)
        stats = erp.stats()
        assert min(stats.get(k, 0) for k in ("timeouts", "commit_then_fail", "429_injected")) > 0
        assert stats.get("500", 0) + stats.get("503", 0) > 0
        # ambiguous attempts were read back before anything was sent again
        assert sum(r["method"] == "GET" and r["ref"].startswith("eid:") for r in erp.requests())
        logged = set(ledger.journals(ENTITY)["external_id"])
        in_erp = {j["externalId"] for j in erp.journals()}
        waiting = open_rows(queue)
        assert len(waiting) > 0 and waiting["journal_key"].is_unique
        assert waiting["stage"].isin(["erp", "ordering"]).all()
        assert (waiting["owner"] == "integration").all()
        assert waiting["reason_code"].str.len().min() > 0
        # every journal is either posted once and logged, or queued with a reason (a
        # queued one may be in the ERP already: written, but the answer was lost)
        posted_keys = {key_of(e) for e in logged}
        assert posted_keys | set(waiting["journal_key"]) == keys
        assert not posted_keys & set(waiting["journal_key"])
        assert {key_of(e) for e in in_erp - logged} <= set(waiting["journal_key"])
        assert logged == {f"{k}-v1" for k in posted_keys}
        assert_log_matches_erp(ledger, erp)

        erp.configure(**dict.fromkeys(FAULTS, 0.0))
        reports = post_all(plan, ledger, queue, rest=client)
        assert sum(len(r.posted) for r in reports) == len(waiting)
        assert open_rows(queue).empty
        resolved = queue.all()
        assert set(resolved["journal_key"]) == set(waiting["journal_key"])
        assert (resolved["status"] == "resolved").all()
        final = set(ledger.journals(ENTITY)["external_id"])
        assert final == {j["externalId"] for j in erp.journals()} == {f"{k}-v1" for k in keys}
        assert_log_matches_erp(ledger, erp)
        writes = sum(j["version"] for j in erp.journals())
        assert writes == erp.stats()["writes"] >= len(keys)  # rewrites are upserts, not copies
    assert_sound(ledger)
    # the posting log is the ledger a clean SQL posting would have written
    clean, clean_q = ledger_at(sqlite_url(tmp_path / "clean.sqlite"))
    post_all(plan, clean, clean_q)
    for got, want in zip(snapshot(ledger), snapshot(clean), strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_erp_refusals_are_queued_for_their_owner_then_replayed(tmp_path, known):
    """NetSuite closes February for subsidiary 1 (its own closing, which the platform does
    not know) and does not know one March customer: February's journals are queued for
    finance (``period_closed``), the customer's invoice for master data (not sent:
    ``invalid_reference`` naming the customer); once the period reopens and the customer
    exists, a replay posts exactly those journals."""
    frames, lines = known
    feb, mar = YEAR[1], YEAR[2]
    plan = [(p, *propose(frames, lines, p)) for p in (feb, mar)]
    march = plan[1][1]
    invoice = march[(march["event"] == "invoice_finalized")
                    & march["erp_customer_id"].notna()].iloc[0]  # fmt: skip
    missing = invoice["erp_customer_id"]
    known_ids = sorted(set(frames["customers"]["erp_customer_id"].dropna()) - {missing})
    ledger, queue = ledger_at(sqlite_url(tmp_path / "log.sqlite"))
    master = {"customers": [{"entityid": c, "subsidiary": "1"} for c in known_ids]}
    with ErpSandbox(tmp_path / "erp.sqlite", master_data=master,
                    closed_periods=["1:2025-02"]) as erp:  # fmt: skip
        with rest_client(erp) as client:
            post_all(plan, ledger, queue, rest=client)
        rows = queue.open(ENTITY).set_index("journal_key")
        feb_rows = rows[pd.to_datetime(rows["period"]) == pd.Timestamp("2025-02-01")]
        closed = feb_rows[feb_rows["reason_code"] == "period_closed"]
        assert set(feb_rows.index) == set(plan[0][1]["journal_key"])
        assert set(feb_rows["reason_code"]) <= {"period_closed", "waiting_for_invoice"}
        assert len(closed) and (closed["owner"] == "finance").all()
        assert (closed["stage"] == "erp").all()
        assert closed["message"].str.contains("accounting period Feb 2025 is closed").all()
        inv = rows.loc[invoice["journal_key"]]
        assert (inv["reason_code"], inv["owner"], inv["stage"]) == (
            "invalid_reference", "master_data", "erp")  # fmt: skip
        inv_lines = march[march["journal_key"] == invoice["journal_key"]].sort_values("line_no")
        at = [str(n) for n, c in enumerate(inv_lines["erp_customer_id"], 1) if c == missing]
        assert inv["message"] == (f"not sent to the ERP: customer {missing!r} (line"
                                  f"{'s' if len(at) > 1 else ''} {', '.join(at)}) "
                                  "has no NetSuite internal id")  # fmt: skip
        assert not {key_of(j["externalId"]) for j in erp.journals()} & set(rows.index)

        erp.configure(closed_periods=[])  # finance reopens February
        erp.add_master_data({"customers": [{"entityid": missing, "subsidiary": "1"}]})
        with rest_client(erp) as client:  # the next run looks the customer up again
            reports = post_all(plan, ledger, queue, rest=client)
        assert sum(len(r.posted) for r in reports) == len(rows)
        assert queue.open(ENTITY).empty
        everything = set().union(*(set(j["journal_key"]) for _, j, _ in plan))
        assert {key_of(e) for e in ledger.journals(ENTITY)["external_id"]} == everything
        assert_log_matches_erp(ledger, erp)
        assert erp.stats()["writes"] == len(everything)  # each sent once it could post
    assert_sound(ledger)


# --------------------------------------------------------------------------------------------
# 3. redelivery: three times, shuffled, through the Dagster assets

REDELIVERY_MONTHS = ["2025-01-01", "2025-02-01"]


def _deliver_three_times_shuffled(src: Path, dst: Path, seed: int = 5) -> None:
    dst.mkdir()
    rng = random.Random(seed)
    for f in sorted(src.iterdir()):
        head, *rows = f.read_text().splitlines(keepends=True)
        rows = rows * 3
        rng.shuffle(rows)
        (dst / f.name).write_text(head + "".join(rows))


def _pipeline_ledger(source: Path, url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    resources = make_resources(source, url)
    with dg.instance_for_test() as instance:
        assert materialize(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, [ENTITY])
        keys = [partition_key(ENTITY, m) for m in REDELIVERY_MONTHS]
        for selection in (INGEST, DERIVED):
            for key in keys:
                assert materialize(instance, resources, selection, key).success
    return snapshot(SqlLedger(_engine(url)))


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    """The ledger after one ordered delivery, and after the same one three times shuffled."""
    base = tmp_path_factory.mktemp("deliveries")
    generate(base / "once", subscriptions=40, seed=SEED, year=2025, bad_rows=0)
    _deliver_three_times_shuffled(base / "once", base / "thrice")
    return {
        name: _pipeline_ledger(base / name, sqlite_url(base / f"{name}.sqlite"))
        for name in ("once", "thrice")
    }


def _as_multiset(lines: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in lines.columns if c != "line_no"]
    return lines[cols].sort_values(cols).reset_index(drop=True)


def test_redelivered_shuffled_events_give_the_same_journals(deliveries):
    (once, once_lines), (thrice, thrice_lines) = deliveries["once"], deliveries["thrice"]
    assert len(once) > 10 and set(once["event"]) >= {"invoice_finalized", "payment", "revenue"}
    pd.testing.assert_frame_equal(thrice, once)  # same external ids, versions, hashes, totals
    pd.testing.assert_frame_equal(_as_multiset(thrice_lines), _as_multiset(once_lines))


def test_redelivered_shuffled_events_give_the_same_line_numbers(deliveries):
    pd.testing.assert_frame_equal(deliveries["thrice"][1], deliveries["once"][1])


def test_journal_lines_do_not_depend_on_the_order_of_accounting_lines(known):
    frames, lines = known
    period = YEAR[1]
    want, _ = propose(frames, lines, period)
    for seed in range(3):
        got, _ = propose(frames, lines.sample(frac=1, random_state=seed), period)
        pd.testing.assert_frame_equal(got, want)


# --------------------------------------------------------------------------------------------
# 4. a closed ERP period under each policy


@pytest.mark.parametrize("policy", ["next_open", "hold"])
def test_closed_period_under_each_policy_then_reopened(tmp_path, known, policy):
    frames, lines = known
    periods = YEAR[:5]
    closed_month, next_month = YEAR[2], YEAR[3]
    plan = proposals(frames, lines, periods)
    keys = {p: set(j["journal_key"]) for p, j, _ in plan}
    everything = set().union(*keys.values())
    ledger, queue = ledger_at(sqlite_url(tmp_path / "ledger.sqlite"))
    set_period_status(ledger.engine, ENTITY, "2025-03", "closed")
    closed = closed_periods(ledger.engine, ENTITY)
    assert closed == {closed_month}
    post_all(plan, ledger, queue, closed_periods=closed, policy=policy)
    posted = ledger.journals(ENTITY)
    posted["key"] = posted["external_id"].map(key_of)
    assert (posted["version"] == 1).all() and posted["reverses"].isna().all()
    period_of = {p: p.date() for p in periods}  # the ledger stores dates
    in_closed = posted["source_period"] == period_of[closed_month]
    assert not (posted["period"] == period_of[closed_month]).any()  # nothing in the closed month

    if policy == "next_open":
        assert set(posted["key"]) == everything and open_rows(queue).empty
        moved = posted[in_closed]
        assert set(moved["key"]) == keys[closed_month]
        assert (moved["period"] == period_of[next_month]).all() and moved["correction"].all()
        rest = posted[~in_closed]
        assert (rest["period"] == rest["source_period"]).all() and not rest["correction"].any()
        return

    # hold: the closed month's journals wait for finance; payments of its invoices wait too
    assert not in_closed.any()
    journals = pd.concat([j for _, j, _ in plan]).drop_duplicates("journal_key")
    held_invoices = set(
        journals.loc[
            journals["journal_key"].isin(keys[closed_month])
            & (journals["event"] == "invoice_finalized"),
            "document_id",
        ]
    )
    waiting = set(
        journals.loc[
            (journals["period"] > closed_month) & journals["invoice_id"].isin(held_invoices),
            "journal_key",
        ]
    )
    assert waiting, "the data should have a payment in April of a March invoice"
    rows = open_rows(queue).set_index("journal_key")
    assert set(rows.index) == keys[closed_month] | waiting
    assert set(posted["key"]) == everything - set(rows.index)
    period_rows = rows.loc[sorted(keys[closed_month])]
    assert (period_rows["reason_code"] == "period_closed").all()
    assert (period_rows["owner"] == "finance").all() and (period_rows["stage"] == "period").all()
    wait_rows = rows.loc[sorted(waiting)]
    assert (wait_rows["reason_code"] == "waiting_for_invoice").all()
    assert (wait_rows["owner"] == "integration").all()

    set_period_status(ledger.engine, ENTITY, "2025-03", "open")
    assert closed_periods(ledger.engine, ENTITY) == set()
    reports = post_all(plan, ledger, queue, closed_periods=set(), policy=policy)
    assert sum(len(r.posted) for r in reports) == len(rows)
    assert open_rows(queue).empty
    final = ledger.journals(ENTITY)
    assert set(final["external_id"].map(key_of)) == everything
    assert (final["period"] == final["source_period"]).all() and not final["correction"].any()
    assert_sound(ledger)


# --------------------------------------------------------------------------------------------
# 5. posting rules hold whole journals; a payment waits for its held invoice


def test_rule_breaks_are_queued_while_the_rest_of_the_batch_posts(tmp_path, demo_frames, known):
    base_frames, lines = known
    period = YEAR[7]
    baseline, no_holds = propose(base_frames, lines, period)
    assert no_holds.empty
    docs = baseline.drop_duplicates("journal_key").set_index("journal_key")
    customer_of = document_customers(base_frames)
    # unmapped: the chart has no ERP account for credit notes
    chart = {k: v for k, v in DEFAULT_CHART.items() if k != "CreditNotes"}
    unmapped = set(baseline.loc[baseline["account"] == "CreditNotes", "journal_key"])
    # a customer without ERP id: every journal of its documents
    invoices = docs[docs["event"] == "invoice_finalized"]
    customer = customer_of[invoices["document_id"].iloc[0]]
    no_customer = {k for k, d in docs["document_id"].items() if customer_of.get(d) == customer}
    # unbalanced: one more cent debited on another invoice
    other = invoices[~invoices.index.isin(no_customer | unmapped)]
    unbalanced_doc = other["document_id"].iloc[0]
    tampered = lines.copy()
    line = tampered.index[
        (tampered["document_id"] == unbalanced_doc) & (tampered["period"] == period)
    ][0]
    tampered.loc[line, "debit"] += 1
    unbalanced = {other.index[0]}
    assert unmapped and no_customer and not (unmapped & no_customer)

    frames = with_erp_ids(base_frames, missing=(customer,))
    journals, held = propose(frames, tampered, period, chart)
    ledger, queue = ledger_at(sqlite_url(tmp_path / "ledger.sqlite"))
    report = post_period(
        journals, held, entity_id=ENTITY, period=period, ledger=ledger, queue=queue, batch_size=7
    )
    broken = unbalanced | unmapped | no_customer
    # and the payments of a held invoice wait for it
    held_invoices = set(docs.loc[sorted(broken), "document_id"])
    waiting = set(docs.index[docs["invoice_id"].isin(held_invoices)]) - broken
    assert waiting, "the data should have a payment of the unbalanced invoice"
    posted = set(docs.index) - broken - waiting
    assert set(ledger.journals(ENTITY)["external_id"]) == {f"{k}-v1" for k in posted}
    assert set(report.external_ids) == posted
    rows = open_rows(queue).set_index("journal_key")
    # the month's revenue of a held invoice waits with it, in a journal of its own
    held_revenue = set(held.loc[held["reason_code"] == "document_held", "journal_key"])
    held_invoice_docs = set(docs.loc[sorted(broken)].query("event == 'invoice_finalized'")
                            ["document_id"])  # fmt: skip
    assert held_revenue, "the data should have August revenue of a held invoice"
    of_customer = {d for d, c in customer_of.items() if c == customer and d.startswith("in_")}
    assert {k.split("-USD-")[1] for k in held_revenue} <= held_invoice_docs | of_customer
    assert set(rows.index) == broken | waiting | held_revenue
    assert (rows.loc[sorted(held_revenue), "stage"] == "rules").all()
    expect = {"journal_balanced": ("integration", "rules", unbalanced),
              "account_mapped": ("finance", "rules", unmapped),
              "customer_erp_id": ("master_data", "rules", no_customer),
              "waiting_for_invoice": ("integration", "ordering", waiting)}  # fmt: skip
    for reason, (owner, stage, which) in expect.items():
        r = rows.loc[sorted(which)]
        assert (r["reason_code"] == reason).all() and (r["owner"] == owner).all(), r
        assert (r["stage"] == stage).all()
    assert_sound(ledger)


def test_payment_waits_for_its_held_invoice_then_posts_on_replay(tmp_path, known):
    frames, lines = known
    pays = frames["payments"]
    invoice_period = frames["invoices"].set_index("invoice_id")["period"]
    late = pays[pays["invoice_id"].map(invoice_period) < pays["period"]].iloc[0]
    customer, p1, p2 = late["customer_id"], invoice_period[late["invoice_id"]], late["period"]
    inv_key, pay_key = f"{ENTITY}-INV-{late['invoice_id']}", f"{ENTITY}-PAY-{late['payment_id']}"
    unknown = with_erp_ids(frames, missing=(customer,))
    ledger, queue = ledger_at(sqlite_url(tmp_path / "ledger.sqlite"))

    def post(frames, period):
        return post_period(
            *propose(frames, lines, period), entity_id=ENTITY, period=period, ledger=ledger,
            queue=queue,
        )  # fmt: skip

    post(unknown, p1)  # the invoice's customer has no ERP id yet
    rows = open_rows(queue).set_index("journal_key")
    assert rows.loc[inv_key, "reason_code"] == "customer_erp_id"
    report = post(frames, p2)  # master data fixed, but the invoice is not posted yet
    rows = open_rows(queue).set_index("journal_key")
    assert rows.loc[pay_key, ["reason_code", "owner", "stage"]].tolist() == [
        "waiting_for_invoice", "integration", "ordering"
    ]  # fmt: skip
    assert pay_key not in report.external_ids and len(report.posted) > 0
    post(frames, p1)  # replay: the invoice posts ...
    assert set(open_rows(queue)["journal_key"]) == {pay_key}
    post(frames, p2)  # ... and then its payment
    assert open_rows(queue).empty
    posted = set(ledger.journals(ENTITY)["external_id"])
    assert {f"{inv_key}-v1", f"{pay_key}-v1"} <= posted
    history = queue.all().set_index("journal_key")
    assert (history.loc[[inv_key, pay_key], "status"] == "resolved").all()


# --------------------------------------------------------------------------------------------
# 6. a changed document: a reversal of v1 and a v2, never an edit


def change_an_invoice(frames, period, delta=500) -> tuple[str, dict[str, pd.DataFrame]]:
    """The frames with one multi-line invoice of ``period`` billing ``delta`` more."""
    inv, il = frames["invoices"].copy(), frames["invoice_lines"].copy()
    n = il.groupby("invoice_id").size()
    eligible = inv[
        (inv["period"] == period) & inv["invoice_id"].isin(n[n > 1].index) & inv["voided_at"].isna()
    ]
    invoice_id = sorted(eligible["invoice_id"])[0]
    il.loc[il.index[il["invoice_id"] == invoice_id][0], "amount"] += delta
    header = inv["invoice_id"] == invoice_id
    inv.loc[header, "subtotal"] += delta
    inv.loc[header, "total"] += delta
    return invoice_id, {**frames, "invoices": inv, "invoice_lines": il}


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgres",
            marks=[pytest.mark.postgres],
        ),
    ],
)
def test_changed_document_is_reversed_and_reposted_never_edited(request, tmp_path, known, backend):
    frames, lines = known
    periods = YEAR[:4]
    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = sqlite_url(tmp_path / "ledger.sqlite")
    ledger, queue = ledger_at(url)
    post_all(proposals(frames, lines, periods), ledger, queue, batch_size=7)
    before = ledger.journals(ENTITY)
    before_lines = ledger.lines(list(before["external_id"]))

    invoice_id, changed = change_an_invoice(frames, YEAR[1])
    new_plan = proposals(changed, accounting_lines(changed), periods)
    post_all(new_plan, ledger, queue, batch_size=7)
    after = ledger.journals(ENTITY)
    # what was posted is still there, untouched (same rows, same posting time)
    kept = after[after["external_id"].isin(before["external_id"])]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), before.reset_index(drop=True))
    pd.testing.assert_frame_equal(
        ledger.lines(list(before["external_id"])).reset_index(drop=True),
        before_lines.reset_index(drop=True),
    )
    new = after[~after["external_id"].isin(before["external_id"])].set_index("external_id")
    new_journals = pd.concat([j for _, j, _ in new_plan])
    changed_keys = {key_of(e) for e in new.index}
    inv_key = f"{ENTITY}-INV-{invoice_id}"
    assert inv_key in changed_keys  # and the revenue journals the change moved
    assert set(new.index) == {f"{k}-v1-REV" for k in changed_keys} | {
        f"{k}-v2" for k in changed_keys
    }
    old_by_id = before.set_index("external_id")
    for k in changed_keys:
        rev, v2 = new.loc[f"{k}-v1-REV"], new.loc[f"{k}-v2"]
        assert rev["reverses"] == f"{k}-v1" and rev["version"] == 1 and pd.isna(v2["reverses"])
        assert v2["version"] == 2 and v2["content_hash"] != old_by_id.loc[f"{k}-v1", "content_hash"]
        assert rev["total_debit"] == old_by_id.loc[f"{k}-v1", "total_debit"]
        v1_lines = before_lines[before_lines["external_id"] == f"{k}-v1"]
        rev_lines = ledger.lines([f"{k}-v1-REV"])
        assert rev_lines["debit"].tolist() == v1_lines["credit"].tolist()
        assert rev_lines["credit"].tolist() == v1_lines["debit"].tolist()
        assert rev_lines["account"].tolist() == v1_lines["account"].tolist()
        want = new_journals[new_journals["journal_key"] == k]
        got = ledger.lines([f"{k}-v2"])
        assert got[["account", "debit", "credit"]].values.tolist() == (
            want[["account", "debit", "credit"]].values.tolist()
        )
    v2_invoice = ledger.lines([f"{inv_key}-v2"])
    v1_invoice = before_lines[before_lines["external_id"] == f"{inv_key}-v1"]
    assert v2_invoice["debit"].sum() == v1_invoice["debit"].sum() + 500
    # posting the changed documents again changes nothing
    assert not any(r.posted for r in post_all(new_plan, ledger, queue))
    assert open_rows(queue).empty
    assert_sound(ledger)


# --------------------------------------------------------------------------------------------
# regressions: library bugs these scenarios found, now fixed


class RefusingErp:
    """A REST client that refuses (as if retries were exhausted) the journals ``refuse``
    selects and PUTs the others through ``inner``."""

    def __init__(self, inner: RestErpClient, refuse):
        self.inner, self.refuse = inner, refuse

    def journal_bodies(self, entity_id, lines):
        return self.inner.journal_bodies(entity_id, lines)

    def post_many(self, payloads):
        payloads = list(payloads)
        sent = self.inner.post_many([p for p in payloads if not self.refuse(p["externalId"])])
        by_id = {o.external_id: o for o in sent}
        return [
            by_id.get(p["externalId"])
            or PostOutcome(p["externalId"], "failed", None, "HTTP_503", "unavailable", 3, 503)
            for p in payloads
        ]


def _net(ledger: SqlLedger, key: str) -> dict[str, int]:
    """The net debit per account of every journal of ``key`` in the ledger."""
    ids = [e for e in ledger.journals(ENTITY)["external_id"] if key_of(e) == key]
    lines = ledger.lines(ids)
    net = (lines["debit"] - lines["credit"]).groupby(lines["account"]).sum()
    return {a: int(v) for a, v in net.items() if v}


def _want(journals: pd.DataFrame, key: str) -> dict[str, int]:
    j = journals[journals["journal_key"] == key]
    net = (j["debit"] - j["credit"]).groupby(j["account"]).sum()
    return {a: int(v) for a, v in net.items() if v}


def test_rest_refused_reversal_is_posted_on_replay(tmp_path, known):
    frames, lines = known
    period = YEAR[1]
    invoice_id, changed = change_an_invoice(frames, period)
    key = f"{ENTITY}-INV-{invoice_id}"
    original = propose(frames, lines, period)
    new = propose(changed, accounting_lines(changed), period)
    ledger, queue = ledger_at(sqlite_url(tmp_path / "log.sqlite"))
    with sandbox(tmp_path / "erp.sqlite", frames) as erp, rest_client(erp) as client:

        def post(plan, rest):
            return post_period(*plan, entity_id=ENTITY, period=period, ledger=ledger,
                               queue=queue, rest=rest)  # fmt: skip

        post(original, client)
        post(new, RefusingErp(client, lambda eid: eid.endswith("-REV")))  # the ERP hiccups
        post(new, client)  # replay
        post(new, client)
        assert open_rows(queue).empty
        assert f"{key}-v1-REV" in {j["externalId"] for j in erp.journals()}
        assert _net(ledger, key) == _want(new[0], key)
        assert_log_matches_erp(ledger, erp)


class CrashBeforeV2(SqlLedger):
    def post(self, headers, lines, conn=None, sources=None):
        if headers["external_id"].str.endswith("-v2").any():
            raise KeyboardInterrupt("crash between the reversal and the new version")
        return super().post(headers, lines, conn=conn, sources=sources)


def test_document_changed_back_after_a_half_posted_change_is_posted_again(tmp_path, known):
    frames, lines = known
    period = YEAR[1]
    invoice_id, changed = change_an_invoice(frames, period)
    key = f"{ENTITY}-INV-{invoice_id}"
    original = propose(frames, lines, period)
    new = propose(changed, accounting_lines(changed), period)
    ledger, queue = ledger_at(sqlite_url(tmp_path / "ledger.sqlite"))
    kw = {"entity_id": ENTITY, "period": period, "queue": queue, "batch_size": 1}
    post_period(*original, ledger=ledger, **kw)
    with pytest.raises(KeyboardInterrupt):
        post_period(*new, ledger=CrashBeforeV2(ledger.engine), **kw)
    assert f"{key}-v1-REV" in set(ledger.journals(ENTITY)["external_id"])
    post_period(*original, ledger=ledger, **kw)  # the change is undone upstream
    assert _net(ledger, key) == _want(original[0], key)


def test_rest_payment_waits_when_its_invoice_is_refused_in_the_same_run(tmp_path, known):
    frames, lines = known
    pays = frames["payments"]
    invoice_period = frames["invoices"].set_index("invoice_id")["period"]
    same = pays[
        (pays["kind"] == "payment") & (pays["invoice_id"].map(invoice_period) == pays["period"])
    ]
    pay = same.iloc[0]
    period = pay["period"]
    inv_key, pay_key = f"{ENTITY}-INV-{pay['invoice_id']}", f"{ENTITY}-PAY-{pay['payment_id']}"
    plan = propose(frames, lines, period)
    ledger, queue = ledger_at(sqlite_url(tmp_path / "log.sqlite"))
    with sandbox(tmp_path / "erp.sqlite", frames) as erp, rest_client(erp) as client:
        refusing = RefusingErp(client, lambda eid: key_of(eid) == inv_key)
        post_period(*plan, entity_id=ENTITY, period=period, ledger=ledger, queue=queue,
                    rest=refusing)  # fmt: skip
        rows = open_rows(queue).set_index("journal_key")
        assert f"{pay_key}-v1" not in {j["externalId"] for j in erp.journals()}
        assert rows.loc[pay_key, "reason_code"] == "waiting_for_invoice"


def test_rest_refusal_beside_a_held_journal_is_queued(tmp_path, known):
    frames, lines = known
    period = YEAR[7]
    journals, _ = propose(frames, lines, period)
    invoice = journals[journals["event"] == "invoice_finalized"].iloc[0]
    customer = document_customers(frames)[invoice["document_id"]]
    journals, held = propose(with_erp_ids(frames, missing=(customer,)), lines, period)
    assert len(held)
    refused = f"{ENTITY}-REV-REV-{period:%Y%m}-USD"
    ledger, queue = ledger_at(sqlite_url(tmp_path / "log.sqlite"))
    with sandbox(tmp_path / "erp.sqlite", frames) as erp, rest_client(erp) as client:
        post_period(journals, held, entity_id=ENTITY, period=period, ledger=ledger, queue=queue,
                    rest=RefusingErp(client, lambda eid: key_of(eid) == refused))  # fmt: skip
    rows = open_rows(queue).set_index("journal_key")
    # credit notes and payments of earlier invoices, posted alone, wait for those invoices
    waiting = set(rows.index[rows["reason_code"] == "waiting_for_invoice"])
    assert set(rows.index) == set(held["journal_key"]) | {refused} | waiting
    assert rows.loc[refused, "stage"] == "erp"
    assert (rows.loc[sorted(waiting), "stage"] == "ordering").all()
    assert (rows.drop(index=[refused, *waiting])["stage"] == "rules").all()
