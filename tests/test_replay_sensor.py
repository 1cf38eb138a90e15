"""The replay sensor asks for a posting_replay run only when something can fix an exception:
an ERP outage on its backoff timer, an invoice that posted, a customer that got its ERP id, a
reopened period, a changed configuration; never a timer for what needs a person."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from resources import WarehouseResource
from resources.erp import ErpResource
from sensors.posting_replay import REPLAY_PRIORITY, posting_replay_sensor
from sync_core.erp.config import DEFAULT_PATH
from sync_core.erp.periods import set_period_status
from sync_core.erp.queue import posting_exceptions


def held(key, period="2025-03-01", reason="customer_erp_id", owner="master_data",
         message="customer 'cus_1' of in_1 has no ERP customer id"):  # fmt: skip
    return pd.DataFrame([{
        "entity_id": "US01", "period": pd.Timestamp(period, tz="UTC"), "journal_key": key,
        "document_id": key.split("-")[-1], "event": "invoice_finalized", "reason_code": reason,
        "message": message, "owner": owner,
    }])  # fmt: skip


class Harness:
    def __init__(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        self.erp = ErpResource(ledger_url=url)
        self.warehouse = WarehouseResource(url=url)
        self.queue = self.erp.queue()
        self.cursor = None

    def record(self, rows, posted=(), run="r"):
        with self.erp.engine().begin() as conn:
            self.queue.record(conn, "US01", rows["period"].iloc[0] if len(rows) else
                              "2025-03-01", rows, list(posted), run)  # fmt: skip

    def evaluate(self):
        """One tick; the cursor carries over, as the daemon keeps it."""
        with dg.instance_for_test() as instance:
            ctx = dg.build_sensor_context(
                instance=instance, cursor=self.cursor,
                resources={"erp": self.erp, "warehouse": self.warehouse},
            )  # fmt: skip
            result = posting_replay_sensor(ctx)
        if isinstance(result, dg.SkipReason):
            return []
        self.cursor = result.cursor
        return result.run_requests or []

    def age(self, key, by: timedelta):
        """Pretend the row was last seen (and scheduled) ``by`` earlier."""
        t = posting_exceptions
        with self.erp.engine().begin() as conn:
            row = conn.execute(sa.select(t.c.last_seen, t.c.next_attempt_at)
                               .where(t.c.journal_key == key)).one()  # fmt: skip
            conn.execute(sa.update(t).where(t.c.journal_key == key).values(
                last_seen=row[0] - by, next_attempt_at=row[1] - by if row[1] else None))  # fmt: skip


def customers(wh: WarehouseResource, erp_id=None):
    wh.get().replace_partition("US01", "2025-03-01", {"customers": pd.DataFrame([{
        "entity_id": "US01", "customer_id": "cus_1", "name": "A", "email": None,
        "country": "US", "currency": "USD", "erp_customer_id": erp_id,
        "created_at": pd.Timestamp("2025-01-01", tz="UTC")}])})  # fmt: skip


def test_exceptions_that_need_a_person_replay_only_when_their_state_changes(tmp_path):
    h = Harness(tmp_path)
    assert h.evaluate() == []
    customers(h.warehouse)
    h.record(pd.concat([held("US01-INV-in_1"), held("US01-INV-in_2")]))
    h.record(held("US01-INV-in_3", "2025-04-01"))
    # a state never looked at counts as changed: one replay per partition, once
    first = h.evaluate()
    assert [r.partition_key for r in first] == ["US01|2025-03-01", "US01|2025-04-01"]
    assert first[0].tags == {"sync/trigger": "replay", "dagster/priority": REPLAY_PRIORITY,
                             "sync/replay_because": "customer_erp_ids"}  # fmt: skip
    # the replay saw them again (attempts + 1), ten times: nothing changed, nothing to run
    for i in range(10):
        h.record(pd.concat([held("US01-INV-in_1"), held("US01-INV-in_2")]), run=f"r{i}")
        assert h.evaluate() == []
    rows = h.queue.open().set_index("journal_key")
    assert rows.loc["US01-INV-in_1", "attempts"] == 11
    assert rows.loc["US01-INV-in_1", "replay"] == "customer_erp_ids"
    assert pd.isna(rows.loc["US01-INV-in_1", "next_attempt_at"])
    # the customer gets its ERP id in the warehouse: both partitions, with new keys
    customers(h.warehouse, "C-100")
    again = h.evaluate()
    assert [r.partition_key for r in again] == ["US01|2025-03-01", "US01|2025-04-01"]
    assert {r.run_key for r in again}.isdisjoint({r.run_key for r in first})
    assert h.evaluate() == []
    h.record(held("x").iloc[:0], ["US01-INV-in_1", "US01-INV-in_2", "US01-INV-in_3"])
    assert h.evaluate() == []
    history = h.queue.all()
    assert set(history["status"]) == {"resolved"} and len(history) == 3


def test_a_closed_period_replays_when_it_reopens_and_config_changes_replay_mappings(tmp_path):
    config = tmp_path / "erp.yaml"
    config.write_text(DEFAULT_PATH.read_text())
    h = Harness(tmp_path)
    h.erp = ErpResource(ledger_url=h.erp.ledger_url, config_path=str(config))
    set_period_status(h.erp.engine(), "US01", "2025-03-01", "closed")
    h.record(held("US01-INV-in_1", reason="period_closed", owner="finance",
                  message="ERP period 2025-03 is closed"))  # fmt: skip
    h.record(held("US01-INV-in_2", "2025-04-01", reason="account_mapped", owner="finance",
                  message="account Revenue has no ERP account"))  # fmt: skip
    assert len(h.evaluate()) == 2  # first look
    assert h.evaluate() == []
    set_period_status(h.erp.engine(), "US01", "2025-03-01", "open")
    (reopened,) = h.evaluate()
    assert reopened.partition_key == "US01|2025-03-01"
    assert reopened.tags["sync/replay_because"] == "erp_periods"
    config.write_text(config.read_text() + "\n# Revenue mapped\n")
    (mapped,) = h.evaluate()
    assert mapped.partition_key == "US01|2025-04-01"
    assert mapped.tags["sync/replay_because"] == "erp_config"
    assert h.evaluate() == []


def test_an_erp_outage_is_retried_with_backoff_then_given_up(tmp_path):
    h = Harness(tmp_path)
    down = held("US01-INV-in_1", reason="erp_unavailable", owner="integration",
                message="ERP failed after 4 attempt(s): HTTP 503")  # fmt: skip
    h.record(down)
    row = h.queue.open().iloc[0]
    assert row["replay"] == "timer"
    delay = pd.Timestamp(row["next_attempt_at"]) - pd.Timestamp(row["last_seen"])
    assert delay == pd.Timedelta(minutes=5)
    assert h.evaluate() == []  # not due yet
    h.age("US01-INV-in_1", timedelta(minutes=6))
    (first,) = h.evaluate()
    assert first.tags["sync/replay_because"] == "timer"
    assert [r.run_key for r in h.evaluate()] == [first.run_key]  # same due time, same key
    h.record(down)  # the replay failed again: attempt 2, 10 minutes
    row = h.queue.open().iloc[0]
    assert pd.Timestamp(row["next_attempt_at"]) - pd.Timestamp(row["last_seen"]) == (
        pd.Timedelta(minutes=10))  # fmt: skip
    assert h.evaluate() == []
    h.age("US01-INV-in_1", timedelta(minutes=11))
    (second,) = h.evaluate()
    assert second.run_key != first.run_key
    for _ in range(8):  # attempts 3..10: capped at 6 h, then given up
        h.record(down)
    row = h.queue.open().iloc[0]
    assert row["attempts"] == 10 and row["replay"] == "gave_up"
    assert pd.isna(row["next_attempt_at"]) and row["status"] == "open"
    h.age("US01-INV-in_1", timedelta(days=30))
    assert h.evaluate() == []


def test_a_payment_waiting_for_its_invoice_replays_once_the_invoice_posted(tmp_path):
    h = Harness(tmp_path)
    h.record(held("US01-PAY-py_1", reason="waiting_for_invoice", owner="integration",
                  message="invoice in_7 has no posted journal yet"))  # fmt: skip
    assert h.evaluate() == []
    ledger = h.erp.ledger()  # creates the ledger tables
    now = datetime.now(UTC)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(
            "insert into ledger_journals (external_id, entity_id, period, source_period, event,"
            " document_id, version, currency, total_debit, line_count, content_hash,"
            " correction, posted_at) values ('US01-INV-in_7-v1', 'US01', '2025-03-01',"
            " '2025-03-01', 'invoice_finalized', 'in_7', 1, 'USD', 100, 2, 'h', 0, :now)"),
            {"now": now})  # fmt: skip
    (req,) = h.evaluate()
    assert req.partition_key == "US01|2025-03-01"
    assert req.tags["sync/replay_because"] == "invoice_posted"
    assert json.loads(h.cursor) == {}  # no fingerprint needed for it
