"""Incremental recognition gives exactly what a full run gives, and recognizes only what
changed: the demo platform's US01 ingested into a warehouse, recognized once in full by the
engine and once through the document store."""

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sync_assets.demo_run import INGEST
from sync_assets.partitions import entity_partitions, partition_key
from sync_core.demo.generator import generate
from sync_core.recognition import derive, entity_history, refresh
from sync_core.revenue import recognize
from sync_core.subledger import with_sources
from sync_core.warehouse import TABLES
from tests.helpers import make_resources, materialize

MONTHS = [pd.Timestamp(f"{y}-{m:02d}-01", tz="UTC") for y in (2025, 2026) for m in range(1, 13)]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    generate(folder, subscriptions=150, seed=11, year=2025, bad_rows=5)
    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'wh.sqlite'}"
    resources = make_resources(folder, url)
    with dg.instance_for_test() as instance:
        assert materialize(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
        for m in range(1, 13):
            key = partition_key("US01", f"2025-{m:02d}-01")
            assert materialize(instance, resources, INGEST, key).success
    return resources["warehouse"].get()


def _sorted(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    df = df[cols].copy()
    for c in cols:
        if str(df[c].dtype).startswith("datetime64"):
            df[c] = pd.to_datetime(df[c], utc=True).dt.as_unit("ns")
        elif df[c].dtype == object:
            df[c] = df[c].where(df[c].notna(), None)
    keys = [c for c in cols if df[c].dtype != bool]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _assert_same_as_full(wh):
    history = entity_history(wh, "US01")
    full = recognize(**history)
    got = derive(wh, "US01", MONTHS)
    cols = [c for c in full.schedule.columns]
    pd.testing.assert_frame_equal(
        _sorted(got["revenue_schedules"], cols), _sorted(full.schedule, cols), check_dtype=False
    )
    lines = with_sources(full.accounting_lines, history)
    lcols = list(lines.columns)
    pd.testing.assert_frame_equal(
        _sorted(got["accounting_lines"], lcols), _sorted(lines, lcols), check_dtype=False
    )
    q = full.quarantine[full.quarantine["period"].notna()]
    qcols = list(q.columns)
    pd.testing.assert_frame_equal(
        _sorted(got["quarantine"], qcols), _sorted(q, qcols), check_dtype=False
    )
    return full


def test_incremental_equals_full_and_reuses_unchanged_documents(ingested):
    wh = ingested
    first = refresh(wh, "US01")
    assert first.recognized == first.documents > 100 and first.reused == 0
    full = _assert_same_as_full(wh)
    assert len(full.schedule) > 1000 and len(full.quarantine) > 0

    again = refresh(wh, "US01")
    assert (again.recognized, again.removed, again.reused) == (0, 0, first.documents)

    # one invoice voided in the warehouse: that document, and only it, is recognized again
    inv = TABLES["invoices"]
    victim = wh.query(
        "SELECT invoice_id FROM invoices WHERE entity_id = 'US01' AND status = 'paid' "
        "ORDER BY invoice_id LIMIT 1"
    )["invoice_id"].iloc[0]
    with wh.engine.begin() as conn:
        conn.execute(
            sa.update(inv)
            .where(inv.c.invoice_id == victim)
            .values(status="void", voided_at=pd.Timestamp("2025-11-20", tz="UTC"))
        )
    changed = refresh(wh, "US01")
    assert (changed.recognized, changed.removed) == (1, 0)
    full = _assert_same_as_full(wh)
    voids = full.schedule[full.schedule["source_type"] == "invoice_void"]
    assert set(voids["invoice_id"]) >= {victim}

    # a document deleted from the source loses its rows
    with wh.engine.begin() as conn:
        conn.execute(sa.delete(TABLES["invoice_lines"]).where(
            TABLES["invoice_lines"].c.invoice_id == victim))  # fmt: skip
        conn.execute(sa.delete(inv).where(inv.c.invoice_id == victim))
    gone = refresh(wh, "US01")
    assert gone.removed + gone.recognized >= 1
    _assert_same_as_full(wh)

    rebuilt = refresh(wh, "US01", rebuild=True)
    assert rebuilt.recognized == rebuilt.documents
    _assert_same_as_full(wh)
