"""The legal-entity sensor: new entities become partitions; changed rows refresh the table."""

import dagster as dg

from resources import BillingSourceResource
from sensors.legal_entities import legal_entity_sensor

HEAD = "entity_id,name,functional_currency,country,erp_subsidiary_id,recognition_method\n"


def evaluate(instance, folder, cursor=None):
    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"billing_source": BillingSourceResource(kind="file_drop", path=str(folder))},
    )
    return legal_entity_sensor(ctx)


def test_new_entity_and_changed_rows(tmp_path):
    (tmp_path / "legal_entities.csv").write_text(HEAD + "US01,Demo Inc,USD,US,1,day\n")
    with dg.instance_for_test() as instance:
        first = evaluate(instance, tmp_path)
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["US01"]]
        instance.add_dynamic_partitions("legal_entity", ["US01"])
        assert isinstance(evaluate(instance, tmp_path, first.cursor), dg.SkipReason)
        # a changed method (no new entity) still refreshes the table, once
        (tmp_path / "legal_entities.csv").write_text(HEAD + "US01,Demo Inc,USD,US,1,month\n")
        changed = evaluate(instance, tmp_path, first.cursor)
        assert changed.dynamic_partitions_requests == []
        assert changed.run_requests[0].run_key != first.run_requests[0].run_key
        assert isinstance(evaluate(instance, tmp_path, changed.cursor), dg.SkipReason)
