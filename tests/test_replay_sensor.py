"""The replay sensor asks for one erp_postings run per partition with open exceptions."""

import dagster as dg
import pandas as pd

from resources.erp import ErpResource
from sensors.posting_replay import posting_replay_sensor


def held(key, period="2025-03-01", reason="customer_erp_id"):
    return pd.DataFrame([{
        "entity_id": "US01", "period": pd.Timestamp(period, tz="UTC"), "journal_key": key,
        "document_id": key.split("-")[-1], "event": "invoice_finalized", "reason_code": reason,
        "message": "customer 'cus_1' of in_1 has no ERP customer id", "owner": "master_data",
    }])  # fmt: skip


def evaluate(erp):
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"erp": erp})
        return posting_replay_sensor(ctx)


def test_open_exceptions_become_one_run_per_partition_with_a_stable_key(tmp_path):
    erp = ErpResource(ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    queue = erp.queue()
    assert isinstance(evaluate(erp), dg.SkipReason)
    with erp.engine().begin() as conn:
        queue.record(
            conn,
            "US01",
            "2025-03-01",
            pd.concat([held("US01-INV-in_1"), held("US01-INV-in_2")]),
            [],
            "r1",
        )
        queue.record(conn, "US01", "2025-04-01", held("US01-INV-in_3", "2025-04-01"), [], "r1")
    first = evaluate(erp)
    assert [r.partition_key for r in first] == ["US01|2025-03-01", "US01|2025-04-01"]
    assert [r.run_key for r in evaluate(erp)] == [r.run_key for r in first]  # nothing changed
    with erp.engine().begin() as conn:  # seen again by a run: attempts + 1, new replay
        queue.record(conn, "US01", "2025-03-01", held("US01-INV-in_1"), [], "r2")
    again = evaluate(erp)
    assert again[0].run_key != first[0].run_key and again[1].run_key == first[1].run_key
    with erp.engine().begin() as conn:  # posted: resolved, kept as history
        queue.record(
            conn,
            "US01",
            "2025-03-01",
            held("x").iloc[:0],
            ["US01-INV-in_1", "US01-INV-in_2", "US01-INV-in_3"],
            "r3",
        )
    assert isinstance(evaluate(erp), dg.SkipReason)
    history = queue.all()
    assert set(history["status"]) == {"resolved"} and len(history) == 3
    assert history.set_index("journal_key").loc["US01-INV-in_1", "attempts"] == 2
