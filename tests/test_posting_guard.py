"""The blocking checks stop posting, in the full chain and when ``erp_postings`` runs alone (as
the replay job runs it); and records that cannot be recognized (a payment on an unknown
invoice) reach the exceptions table instead of vanishing. Figures: worked example 1 (31.00 USD
from Jan 15: January 17.00)."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from sync_assets.definitions import ALL_ASSETS
from sync_assets.partitions import entity_partitions, partition_key
from sync_core.warehouse import Warehouse
from tests.helpers import make_resources, materialize
from tests.revenue.factory import Book

ROOT = Path(__file__).resolve().parents[1]
KEY = partition_key("US01", "2025-01-01")
INGEST = ["customers", "invoices", "invoice_lines", "credit_notes", "credit_note_lines",
          "payments", "disputes", "usage_events", "usage_daily"]  # fmt: skip
RECOGNIZE = ["revenue_schedules", "revenue_rollforward", "deferred_revenue_waterfall",
             "accounting_lines"]  # fmt: skip
POST = ["proposed_journals", "erp_postings"]


def write_drop(folder, book: Book, customers: list[tuple[str, str | None]]) -> None:
    """The book's frames as a file drop (docs/data-contract.md)."""
    folder.mkdir(exist_ok=True)
    frames = book.frames()
    frames["customers"] = pd.DataFrame(
        [{"entity_id": "US01", "customer_id": c, "name": c, "email": None, "country": "US",
          "currency": "USD", "erp_customer_id": e,
          "created_at": pd.Timestamp("2025-01-02", tz="UTC")} for c, e in customers]
    )  # fmt: skip
    for name, df in frames.items():
        out = df.drop(columns=[c for c in ("period",) if c in df])
        for col in out.columns:
            if str(out[col].dtype).startswith("datetime64"):
                out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            elif out[col].dtype == bool or str(out[col].dtype) == "boolean":
                out[col] = out[col].map({True: "true", False: "false"})
        out.to_csv(folder / f"{name}.csv", index=False)


@pytest.fixture
def chain(tmp_path):
    book = Book().invoice("in_1", "2025-01-15", [("l1", 3100, "2025-01-15", "2025-02-15")])
    book.pay("py_1", "in_1", 3100, "2025-01-16")
    book.pay("py_ghost", "in_missing", 500, "2025-01-17")  # an invoice nobody has
    book.pay("py_eur", "in_1", 500, "2025-01-18", currency="EUR", fx_rate="1.1")
    book.invoice("in_bad", "2025-01-10", [("l1", 1000, "2025-01-10", "2025-02-10")])
    book.pay("py_bad", "in_bad", 1000, "2025-01-19")
    write_drop(tmp_path / "drop", book, [("cus_1", "C-1")])
    inv = pd.read_csv(tmp_path / "drop" / "invoices.csv", dtype=str, keep_default_na=False)
    inv.loc[inv["invoice_id"] == "in_bad", "total"] = "999"  # breaks total = subtotal + tax
    inv.to_csv(tmp_path / "drop" / "invoices.csv", index=False)
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    resources = make_resources(tmp_path / "drop", url)
    with dg.instance_for_test() as instance:
        assert materialize(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
        assert materialize(instance, resources, INGEST, KEY).success
        assert materialize(instance, resources, RECOGNIZE, KEY).success
        yield instance, resources, Warehouse(url)


def _run(instance, resources, selection):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.materialize(
            ALL_ASSETS,
            selection=selection, partition_key=KEY, instance=instance, resources=resources,
            raise_on_error=False,
        )  # fmt: skip


def _ledger_count(wh) -> int:
    with wh.engine.connect() as conn:
        insp = sa.inspect(conn)
        if not insp.has_table("ledger_journals"):
            return 0
        return conn.execute(sa.text("select count(*) from ledger_journals")).scalar()


def test_payments_that_cannot_post_are_exceptions_not_silent_drops(chain):
    instance, resources, wh = chain
    exc = wh.read("exceptions").set_index("source_id")
    assert exc.loc["in_bad", "rule"] == "total_is_subtotal_plus_tax"  # quarantined at ingest
    for payment, rule, text in (
        ("py_ghost", "header_exists", "in_missing"),  # an invoice nobody has
        ("py_bad", "header_exists", "in_bad"),  # an invoice that was quarantined
        ("py_eur", "currency_matches", "currency"),  # EUR on a USD invoice
    ):
        row = exc.loc[payment]
        assert (row["stage"], row["object_type"], row["rule"]) == ("recognition", "payments", rule)
        assert text in row["message"]
    # the one good payment is booked: Cash 31.00
    lines = wh.read("accounting_lines", "US01", "2025-01-01")
    cash = lines[lines["account"] == "Cash"]
    assert cash[["document_id", "debit"]].values.tolist() == [["py_1", 3100]]


def test_drift_between_schedule_and_proposal_blocks_posting(chain):
    instance, resources, wh = chain
    # a revenue line lost between recognition and the proposal
    with wh.engine.begin() as conn:
        conn.execute(sa.text("delete from accounting_lines where event = 'revenue' "
                             "and account = 'Revenue'"))  # fmt: skip
    result = _run(instance, resources, POST)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = checks["schedule_equals_proposed_gl"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["max_drift_minor"].value == 1700
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "proposed_journals" in materialized and "erp_postings" not in materialized
    assert _ledger_count(wh) == 0  # nothing posted
    # erp_postings alone (the replay job) refuses the stored proposal too
    alone = _run(instance, resources, ["erp_postings"])
    assert not alone.success
    failure = alone.get_step_failure_events()[0].event_specific_data.error
    assert "blocking checks fail" in failure.message
    assert _ledger_count(wh) == 0


def test_a_rollforward_that_does_not_hold_blocks_posting(chain, monkeypatch):
    instance, resources, wh = chain
    import sync_core.recognition as revenue_module  # where the rollforward is derived

    real = revenue_module.rollforward

    def drifted(schedule):
        roll = real(schedule)
        roll["closing_deferred"] = roll["closing_deferred"] + 1
        return roll

    monkeypatch.setattr(revenue_module, "rollforward", drifted)
    result = _run(instance, resources, RECOGNIZE + POST)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["rollforward_balances"].passed
    assert checks["rollforward_balances"].metadata["max_drift_minor"].value == 1
    assert not result.success and _ledger_count(wh) == 0
    # a tampered stored rollforward stops erp_postings run alone
    monkeypatch.setattr(revenue_module, "rollforward", real)
    assert _run(instance, resources, RECOGNIZE + ["proposed_journals"]).success
    with wh.engine.begin() as conn:
        conn.execute(sa.text("update revenue_rollforward set closing_deferred = closing_deferred"
                             " + 5"))  # fmt: skip
    alone = _run(instance, resources, ["erp_postings"])
    assert not alone.success and _ledger_count(wh) == 0
    # the untampered chain posts: the guard blocks only what is wrong
    assert _run(instance, resources, RECOGNIZE + POST).success
    assert _ledger_count(wh) > 0


def test_an_entity_with_approval_required_posts_only_the_approved_proposal(tmp_path):
    from sync_assets.approvals import approve_postings
    from sync_core.erp.queue import ExceptionQueue

    book = Book().invoice("in_1", "2025-01-15", [("l1", 3100, "2025-01-15", "2025-02-15")])
    write_drop(tmp_path / "drop", book, [("cus_1", "C-1")])
    config = tmp_path / "erp.yaml"
    config.write_text(
        (ROOT / "config" / "erp.yaml").read_text() + "  US01:\n    approval: required\n"
    )
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    resources = make_resources(tmp_path / "drop", url, config_path=str(config))
    wh = Warehouse(url)
    with dg.instance_for_test() as instance:
        assert materialize(instance, resources, ["legal_entities"]).success
        instance.add_dynamic_partitions(entity_partitions.name, ["US01"])
        assert materialize(instance, resources, INGEST + RECOGNIZE + POST, KEY).success
        assert _ledger_count(wh) == 0
        waiting = ExceptionQueue(wh.engine).open("US01")
        assert set(waiting["reason_code"]) == {"awaiting_approval"}
        assert set(waiting["owner"]) == {"finance"}
        assert set(waiting["journal_key"]) == {"US01-INV-in_1", "US01-REV-REV-202501-USD"}
        run_config = {
            "ops": {
                "approve_proposal": {
                    "config": {
                        "entity": "US01",
                        "period": "2025-01",
                        "approved_by": "controller@example.com",
                    }
                }
            }
        }
        approved = approve_postings.execute_in_process(
            run_config=run_config, instance=instance,
            resources={"warehouse": resources["warehouse"], "erp": resources["erp"]},
        )  # fmt: skip
        assert approved.success
        assert materialize(instance, resources, POST, KEY).success
    assert _ledger_count(wh) == 2
    assert ExceptionQueue(wh.engine).open("US01").empty
