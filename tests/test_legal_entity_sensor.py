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


def test_an_entity_partition_the_source_does_not_name_is_deleted(tmp_path):
    # "US0l" typed into the UI's partition picker: deleted, while US01 stays
    (tmp_path / "legal_entities.csv").write_text(HEAD + "US01,Demo Inc,USD,US,1,day\n")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("legal_entity", ["US01", "US0l"])
        first = evaluate(instance, tmp_path)
        deletes = [r for r in first.dynamic_partitions_requests
                   if isinstance(r, dg.DeleteDynamicPartitionsRequest)]  # fmt: skip
        assert [r.partition_keys for r in deletes] == [["US0l"]]
        assert not any(isinstance(r, dg.AddDynamicPartitionsRequest)
                       for r in first.dynamic_partitions_requests)  # fmt: skip
        instance.delete_dynamic_partition("legal_entity", "US0l")
        assert isinstance(evaluate(instance, tmp_path, first.cursor), dg.SkipReason)


def test_an_unnamed_entity_with_data_is_kept(tmp_path):
    (tmp_path / "legal_entities.csv").write_text(HEAD + "US01,Demo Inc,USD,US,1,day\n")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("legal_entity", ["US01", "OLD1"])
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key="customers", partition="OLD1|2025-01-01")
        )
        first = evaluate(instance, tmp_path)
        assert not any(isinstance(r, dg.DeleteDynamicPartitionsRequest)
                       for r in first.dynamic_partitions_requests)  # fmt: skip
