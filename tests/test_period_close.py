"""A revenue close through Dagster: closed months are kept as booked, and a late document for
a closed month is recognized in the first open month as a marked correction."""

import warnings

import dagster as dg
import pandas as pd

from sync_assets.definitions import ALL_ASSETS
from sync_assets.partitions import entity_period_partitions, partition_key
from tests.helpers import make_resources

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SELECTION = ["invoices", "invoice_lines", "credit_notes", "credit_note_lines", "usage_events",
             "usage_daily", "payments", "revenue_schedules", "revenue_rollforward", "accounting_lines",
             "deferred_revenue_waterfall"]  # fmt: skip
INV_HEAD = ("entity_id,invoice_id,number,customer_id,subscription_id,currency,status,"
            "finalized_at,voided_at,subtotal,tax,total,fx_rate")  # fmt: skip
LINE_HEAD = ("entity_id,line_key,line_id,invoice_id,subscription_id,subscription_item_id,"
             "product_id,line_type,proration,quantity,amount,tax_amount,tax_behavior,currency,"
             "period_start,period_end")  # fmt: skip


def write_source(folder, late: bool):
    folder.mkdir(exist_ok=True)
    (folder / "legal_entities.csv").write_text(
        "entity_id,name,functional_currency,country,erp_subsidiary_id,recognition_method\n"
        "US01,Demo Inc,USD,US,1,day\n"
    )
    inv = [INV_HEAD, "US01,in_1,N1,cus_1,sub_1,USD,paid,2025-01-01T00:00:00Z,,9000,0,9000,1"]
    lines = [
        LINE_HEAD,
        "US01,in_1/il_1,il_1,in_1,sub_1,si_1,prod_1,subscription,false,1,9000,0,"
        "exclusive,USD,2025-01-01T00:00:00Z,2025-04-01T00:00:00Z",
    ]
    if late:  # billed in March for February service (usage found late)
        inv.append("US01,in_2,N2,cus_1,sub_1,USD,paid,2025-03-05T00:00:00Z,,2800,0,2800,1")
        lines.append(
            "US01,in_2/il_1,il_1,in_2,sub_1,si_1,prod_1,invoiceitem,false,1,2800,0,"
            "exclusive,USD,2025-02-01T00:00:00Z,2025-03-01T00:00:00Z"
        )
    (folder / "invoices.csv").write_text("\n".join(inv) + "\n")
    (folder / "invoice_lines.csv").write_text("\n".join(lines) + "\n")


def run(instance, resources, period):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            ALL_ASSETS,
            selection=SELECTION,
            instance=instance,
            partition_key=partition_key("US01", period),
            resources=resources,
            run_config=QUIET,
        )
    assert result.success
    return result


def test_late_document_for_a_closed_month_becomes_a_correction(tmp_path):
    src = tmp_path / "source"
    write_source(src, late=False)
    resources = make_resources(src, f"sqlite:///{tmp_path / 'wh.sqlite'}")
    wh = resources["warehouse"].get()
    with dg.instance_for_test() as instance:
        dg.materialize(
            ALL_ASSETS,
            selection=["legal_entities"],
            instance=instance,
            resources=resources,
            run_config=QUIET,
        )
        instance.add_dynamic_partitions(
            entity_period_partitions.partitions_defs[0].partitions_def.name, ["US01"]
        )
        for p in ("2025-01-01", "2025-02-01", "2025-03-01"):
            run(instance, resources, p)
        feb_before = wh.read("revenue_schedules", "US01", "2025-02-01")
        assert feb_before["recognized"].sum() == 2800  # 9000 over 90 days: 31/28/31 days
        wh.close_period("US01", "2025-02-01", closed_by="test")

        write_source(src, late=True)
        for p in ("2025-02-01", "2025-03-01"):
            run(instance, resources, p)
        feb_after = wh.read("revenue_schedules", "US01", "2025-02-01")
        pd.testing.assert_frame_equal(feb_before, feb_after)  # the closed month is untouched
        march = wh.read("revenue_schedules", "US01", "2025-03-01")
        late = march[march["line_key"] == "in_2/il_1"]
        fix = late[late["correction"]]
        assert fix["recognized"].sum() == 2800 and late["recognized"].sum() == 2800
        assert set(fix["original_period"]) == {pd.Timestamp("2025-02-01", tz="UTC")}
        assert late.loc[~late["correction"], "billed"].sum() == 2800  # billed in March
        assert march.loc[march["line_key"] == "in_1/il_1", "recognized"].sum() == 3100
