"""Billing assets: the canonical objects, one entity x period partition at a time.

Each asset reads its partition from the billing source, validates it against the contract
(quarantining bad records with a reason), and hands the valid frame to the warehouse IO
manager, which replaces the partition and its exceptions in one transaction.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import BillingSourceResource
from resources.warehouse import split_partition_key
from sync_assets.metadata import (
    INTEGRATION,
    MASTER_DATA,
    TABLE_KINDS,
    exceptions_check,
    frame_metadata,
    quarantine_check_spec,
    table_metadata,
    with_exceptions,
)
from sync_assets.partitions import combined, entity_period_partitions
from sync_core import ingest
from sync_core.contracts import MODELS, LegalEntityModel, UsageDailyModel, split_valid

GROUP = "billing"
INGEST = "ingest"
with warnings.catch_warnings():  # dagster-pandera is marked beta; the API is what we need
    warnings.simplefilter("ignore", dg.BetaWarning)
    _TYPES = {
        name: pandera_schema_to_dagster_type(model)
        for name, model in {**MODELS, "usage_daily": UsageDailyModel}.items()
    }
# a backfill of an entity's months is one run that reads the source once per object
_RANGED = dg.BackfillPolicy.single_run()


def read_partitions(source: BillingSourceResource, object_name: str, keys) -> pd.DataFrame:
    """The source records of every partition of the run (one, or a backfill's range)."""
    return combined(source.read_partitions(object_name, [split_partition_key(k) for k in keys]))


def _out_spec(object_name: str) -> dict:
    """Owner, kinds, tags and column schema of a billing multi-asset output."""
    return {
        "owners": INTEGRATION,
        "kinds": TABLE_KINDS,
        "tags": {"domain": "billing"},
        "metadata": table_metadata(object_name),
    }


@dg.asset(
    group_name=GROUP,
    dagster_type=_TYPES["legal_entities"],
    io_manager_key="warehouse_io",
    kinds=TABLE_KINDS,
    owners=MASTER_DATA,
    tags={"domain": "reference_data"},
    metadata=table_metadata("legal_entities"),
)
def legal_entities(context: dg.AssetExecutionContext, billing_source: BillingSourceResource):
    """Legal entities with their functional currency, ERP subsidiary and recognition method.

    Reference data: a bad row fails the run (every entity's books depend on it).
    """
    raw = billing_source.read("legal_entities")
    good, exc = split_valid(
        ingest.drop_redeliveries(raw, "legal_entities"), LegalEntityModel, "legal_entities"
    )
    if len(exc):
        reasons = "; ".join(f"{r.source_id}: {r.message}" for r in exc.itertuples())
        raise dg.Failure(description=f"legal_entities breaks the contract: {reasons}")
    return dg.Output(good, metadata=frame_metadata(good))


def _simple_ingest_asset(object_name: str, amount: str | None, description: str, owners):
    key = dg.AssetKey(object_name)

    @dg.asset(
        name=object_name,
        group_name=GROUP,
        description=description,
        partitions_def=entity_period_partitions,
        backfill_policy=_RANGED,
        dagster_type=_TYPES[object_name],
        io_manager_key="warehouse_io",
        deps=[legal_entities],
        check_specs=[quarantine_check_spec(object_name)],
        kinds=TABLE_KINDS,
        owners=owners,
        tags={"domain": "billing"},
        metadata=table_metadata(object_name),
    )
    def _asset(context: dg.AssetExecutionContext, billing_source: BillingSourceResource):
        raw = read_partitions(billing_source, object_name, context.partition_keys)
        good, exc = ingest.prepare(object_name, raw)
        yield dg.Output(
            with_exceptions(good, exc, INGEST, [object_name]),
            metadata=frame_metadata(good, amount, quarantined=len(exc)),
        )
        yield exceptions_check(key, exc)

    return _asset


customers = _simple_ingest_asset(
    "customers",
    None,
    "Customers of the month with the billing platform id <-> ERP customer id crosswalk; a "
    "customer without an ERP id holds its journals for master data.",
    MASTER_DATA,
)
subscription_contracts = _simple_ingest_asset(
    "subscription_contracts",
    None,
    "Subscription contracts as versioned amendments (new, upgrade, downgrade, quantity "
    "change, cancel, renew), each version with its price, quantity and currency.",
    INTEGRATION,
)
payments = _simple_ingest_asset(
    "payments",
    "amount",
    "Payments and refunds of the month with their currency and FX rate; totals per "
    "currency in the metadata.",
    INTEGRATION,
)
disputes = _simple_ingest_asset(
    "disputes",
    "amount",
    "Disputes (chargebacks) of payments, with their fees and outcome; disputed amounts per "
    "currency in the metadata.",
    INTEGRATION,
)


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=entity_period_partitions,
    backfill_policy=_RANGED,
    outs={
        "usage_events": dg.AssetOut(
            dagster_type=_TYPES["usage_events"],
            io_manager_key="warehouse_io",
            description="Raw metered usage events of the month, deduplicated on their "
            "idempotency key (event_id); what usage-based invoices are billed from.",
            **_out_spec("usage_events"),
        ),
        "usage_daily": dg.AssetOut(
            dagster_type=_TYPES["usage_daily"],
            io_manager_key="warehouse_io",
            description="Usage per subscription item, metric and UTC day (quantity and "
            "event count), derived from usage_events.",
            **_out_spec("usage_daily"),
        ),
    },
    deps=[legal_entities],
    check_specs=[quarantine_check_spec("usage_events")],
    can_subset=False,
)
def usage(context: dg.AssetExecutionContext, billing_source: BillingSourceResource):
    """Raw metered usage events (deduplicated on their idempotency key) and daily totals."""
    raw = read_partitions(billing_source, "usage_events", context.partition_keys)
    events, exc = ingest.prepare("usage_events", raw)
    daily = ingest.usage_daily(events)
    yield dg.Output(
        with_exceptions(events, exc, INGEST, ["usage_events"]),
        output_name="usage_events",
        metadata=frame_metadata(
            events,
            quarantined=len(exc),
            quantity=int(events["quantity"].sum()) if len(events) else 0,
        ),
    )
    yield dg.Output(daily, output_name="usage_daily", metadata=frame_metadata(daily))
    yield exceptions_check(dg.AssetKey("usage_events"), exc)


def _document_asset(object_name: str, line_object: str, descriptions: tuple[str, str]):
    @dg.multi_asset(
        name=object_name,
        group_name=GROUP,
        description=f"{descriptions[0]} {descriptions[1]}",
        partitions_def=entity_period_partitions,
        backfill_policy=_RANGED,
        outs={
            object_name: dg.AssetOut(
                dagster_type=_TYPES[object_name],
                io_manager_key="warehouse_io",
                description=descriptions[0],
                **_out_spec(object_name),
            ),
            line_object: dg.AssetOut(
                dagster_type=_TYPES[line_object],
                io_manager_key="warehouse_io",
                description=descriptions[1],
                **_out_spec(line_object),
            ),
        },
        deps=[legal_entities],
        check_specs=[quarantine_check_spec(object_name)],
        can_subset=False,
    )
    def _asset(context: dg.AssetExecutionContext, billing_source: BillingSourceResource):
        headers = read_partitions(billing_source, object_name, context.partition_keys)
        lines = read_partitions(billing_source, line_object, context.partition_keys)
        h_good, l_good, exc = ingest.prepare_document(object_name, headers, lines)
        h_exc = exc[exc["object_type"] == object_name]
        l_exc = exc[exc["object_type"] == line_object]
        yield dg.Output(
            with_exceptions(h_good, h_exc, INGEST, [object_name]),
            output_name=object_name,
            metadata=frame_metadata(h_good, "total", quarantined=len(h_exc)),
        )
        yield dg.Output(
            with_exceptions(l_good, l_exc, INGEST, [line_object]),
            output_name=line_object,
            metadata=frame_metadata(l_good, "amount", quarantined=len(l_exc)),
        )
        yield exceptions_check(dg.AssetKey(object_name), exc)

    return _asset


invoices = _document_asset(
    "invoices",
    "invoice_lines",
    (
        "Finalized invoices of the month (status, subtotal, tax, total, FX rate); invoice "
        "totals per currency in the metadata.",
        "The lines of the month's invoices with their service periods, proration and tax; "
        "line amounts per currency in the metadata.",
    ),
)
credit_notes = _document_asset(
    "credit_notes",
    "credit_note_lines",
    (
        "Credit notes of the month (pre or post payment) with how each is settled (refund, "
        "credit balance, out of band); totals per currency in the metadata.",
        "The lines of the month's credit notes: the invoice line each reduces (or pro rata) "
        "and an optional service period; amounts per currency in the metadata.",
    ),
)
