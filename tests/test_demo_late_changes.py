"""`make demo`'s second pass: late changes after the year was posted.

The demo (60 subscriptions, US01) posts its year, then receives a second delivery: a voided
invoice that was posted, a refund without a credit note, a credit note issued in February
delivered after February was closed (revenue and ERP), and the ERP id of a customer whose
journals were held. Only the partitions these touch run again. A second `make demo` leaves
the warehouse and the ledger identical.
"""

import contextlib
import io
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from sync_assets import demo_run
from sync_core import filedrop
from sync_core.demo import late_changes
from sync_core.warehouse.schema import TABLES
from sync_core.warehouse.store import Warehouse

pytestmark = pytest.mark.slow  # two `make demo` runs of one entity x 12 months

# the assets stored as warehouse tables (not the queue view, close_status and ops_metrics, whose
# rows carry the time and run that computed them)
BUSINESS = [n for n in demo_run.INGEST + demo_run.DERIVED if n in TABLES] + [
    "legal_entities",
    "exceptions",
]
ARGS = ["--subscriptions", "60", "--seed", "7", "--year", "2025", "--entity", "US01"]


def _snapshot(url: str) -> dict[str, pd.DataFrame]:
    wh, eng = Warehouse(url), sa.create_engine(url)
    out = {name: wh.read(name) for name in BUSINESS}
    for name in ("ledger_journals", "ledger_journal_lines"):
        df = pd.read_sql_table(name, eng)
        out[name] = df.drop(columns=[c for c in ("posted_at", "run_id") if c in df])
    eng.dispose()
    return {n: df.sort_values(list(df.columns)).reset_index(drop=True) for n, df in out.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    url = f"sqlite:///{root / 'warehouse.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("SYNC_WAREHOUSE_URL", url)
        mp.setenv("SYNC_SOURCE_KIND", "demo")
        mp.setenv("SYNC_SOURCE_PATH", str(root / "source"))
        for name in ("SYNC_LEDGER_URL", "SYNC_ERP_TARGET", "SYNC_ERP_URL", "SYNC_ERP_CONFIG"):
            mp.delenv(name, raising=False)
        outputs, snapshots = [], []
        for _ in range(2):  # `make demo`, then `make demo` again
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                assert demo_run.main(ARGS) == 0
            outputs.append(buf.getvalue())
            snapshots.append(_snapshot(url))
    source = root / "source"
    return {
        "url": url,
        "source": source,
        "picks": late_changes.delivered(source),
        "out": outputs,
        "snap": snapshots,
        "frames": {n: filedrop.read_object(source, n) for n in ("invoices", "credit_notes")},
    }


def _journal_lines(tables, external_id: str) -> pd.DataFrame:
    lines = tables["ledger_journal_lines"]
    lines = lines[lines["external_id"] == external_id]
    return lines.groupby("account")[["debit", "credit"]].sum().sort_index()


def test_the_voided_invoice_journal_is_reversed_by_its_external_id(demo):
    tables, voided = demo["snap"][0], demo["picks"]["voided_invoice"]
    original = f"US01-INV-{voided}-v1"
    journals = tables["ledger_journals"].set_index("external_id")
    assert original in journals.index
    # the posting plan books a void as the reversing journal of the original: either the
    # original's own reversal (-v1-REV) or the void event's journal; exactly one of them
    reversal = [j for j in (f"{original}-REV", f"US01-INVVOID-{voided}-v1") if j in journals.index]
    assert len(reversal) == 1
    posted, reversed_ = _journal_lines(tables, original), _journal_lines(tables, reversal[0])
    assert posted["debit"].sum() > 0
    # every account the original debited is credited by the same amount, and vice versa
    pd.testing.assert_series_equal(
        reversed_["credit"], posted["debit"], check_names=False, check_index_type=False
    )
    pd.testing.assert_series_equal(
        reversed_["debit"], posted["credit"], check_names=False, check_index_type=False
    )


def test_the_late_credit_note_in_the_closed_month_is_a_correction_in_march(demo):
    tables, note = demo["snap"][0], demo["picks"]["credit_note"]
    assert demo["picks"]["close_through"] == "2025-02-01"
    sched = tables["revenue_schedules"]
    rows = sched[sched["source_id"].str.startswith(f"{note}/") & sched["correction"]]
    assert len(rows) >= 1
    assert set(rows["original_period"].dt.strftime("%Y-%m-%d")) == {"2025-02-01"}
    assert set(rows["period"].dt.strftime("%Y-%m-%d")) == {"2025-03-01"}  # first open month
    # closed February keeps exactly what it booked: nothing of the note is in it
    feb = sched[sched["source_id"].str.startswith(f"{note}/")]
    assert not (feb["period"].dt.strftime("%Y-%m") == "2025-02").any()
    # and its journal posted in the first open ERP period, for the note's total
    journals = tables["ledger_journals"].set_index("external_id")
    cn = journals.loc[f"US01-CN-{note}-v1"]
    assert str(cn["period"])[:7] == "2025-03"
    notes = demo["frames"]["credit_notes"].set_index("credit_note_id")
    assert int(cn["total_debit"]) == int(notes.loc[note, "total"])


def test_the_customer_whose_erp_id_arrived_has_its_held_journals_posted(demo):
    tables, picks = demo["snap"][0], demo["picks"]
    inv = demo["frames"]["invoices"]
    docs = list(inv.loc[inv["customer_id"] == picks["released_customer"], "invoice_id"])
    assert docs
    journals = tables["ledger_journals"]
    posted = journals[
        journals["document_id"].isin(docs) & (journals["event"] == "invoice_finalized")
    ]
    assert sorted(posted["document_id"]) == sorted(docs)
    lines = tables["ledger_journal_lines"]
    ar = lines[
        lines["external_id"].isin(posted["external_id"])
        & (lines["account"] == "AccountsReceivable")
    ]
    assert set(ar["erp_customer_id"]) == {picks["erp_customer_id"]}
    eng = sa.create_engine(demo["url"])
    queue = pd.read_sql_table("posting_exceptions", eng)
    mine = queue[queue["document_id"].isin(docs)]
    assert len(mine) and set(mine["status"]) == {"resolved"}  # they were held, now released


def test_the_refund_without_a_credit_note_is_posted(demo):
    journals = demo["snap"][0]["ledger_journals"]
    assert f"US01-RFND-{demo['picks']['refund_id']}-v1" in set(journals["external_id"])


def test_the_second_pass_summary_counts_what_changed(demo):
    first, again = demo["out"]
    line = [ln for ln in first.splitlines() if ln.startswith("second pass:") and "journals" in ln]
    assert len(line) == 1
    counts = {
        k: int(v) for v, k in re.findall(r"(\d+) (reversals|held journals released)", line[0])
    }
    assert counts["reversals"] >= 1 and counts["held journals released"] >= 1
    assert "revenue corrections in the schedule: " in line[0]
    # the second `make demo` finds the delivery made and posts nothing new
    assert "late changes (already delivered)" in again
    assert re.search(
        r"second pass: 0 journals posted \(0 reversals, 0 corrections\), 0 held", again
    )


def test_a_second_make_demo_leaves_warehouse_and_ledger_identical(demo):
    first, second = demo["snap"]
    # proposed_journals is the diff against what the ERP held when it ran (new, repost, ...),
    # so it changes once its journals are posted; the second run must propose nothing to post
    for name in set(first) - {"proposed_journals"}:
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)
    proposal = second["proposed_journals"]
    ready = proposal[proposal["status"] == "ready"]
    assert len(ready) and set(ready["action"]) == {"unchanged"}
