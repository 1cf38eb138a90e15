"""ERP postings: balanced journals for one legal entity x accounting period.

The journals of a period are its documents' events (invoices finalized, payments, credit
notes, refunds, voids dated in the period) plus one revenue journal per currency. A journal
that breaks a posting rule is held whole in the exception queue with its owner.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.warehouse import split_partition_key
from sync_assets.metadata import frame_metadata, with_exceptions
from sync_assets.partitions import entity_period_partitions
from sync_assets.revenue import SAME_ENTITY_ALL_PERIODS, entity_history, recognize_entity
from sync_core.contracts.derived import JournalLineModel
from sync_core.posting import build_journals, journal_balance_problems

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _JOURNAL_TYPE = pandera_schema_to_dagster_type(JournalLineModel)


def document_customers(frames: dict[str, pd.DataFrame]) -> pd.Series:
    """Document id (invoice, credit note, payment) -> customer id."""
    parts = [
        frames[name].set_index(col)["customer_id"]
        for name, col in (
            ("invoices", "invoice_id"),
            ("credit_notes", "credit_note_id"),
            ("payments", "payment_id"),
        )
        if len(frames[name])
    ]
    return pd.concat(parts) if parts else pd.Series(dtype=object)


@dg.asset(
    group_name="erp",
    partitions_def=entity_period_partitions,
    dagster_type=_JOURNAL_TYPE,
    io_manager_key="warehouse_io",
    deps=[
        dg.AssetDep("revenue_schedules", partition_mapping=SAME_ENTITY_ALL_PERIODS),
        dg.AssetDep("payments", partition_mapping=SAME_ENTITY_ALL_PERIODS),
        dg.AssetDep("customers", partition_mapping=SAME_ENTITY_ALL_PERIODS),
    ],
    check_specs=[
        dg.AssetCheckSpec("journals_balance", asset="erp_postings", blocking=True),
        dg.AssetCheckSpec("no_held_journals", asset="erp_postings"),
    ],
    kinds={"pandas"},
)
def erp_postings(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Journal lines ready for the ERP, with external ids, ERP accounts and correlation ids."""
    entity, period = split_partition_key(context.partition_key)
    wh = warehouse.get()
    frames = entity_history(wh, entity)
    frames_extra = {name: wh.read(name, entity) for name in ("payments", "customers")}
    result = recognize_entity(wh, entity, payments=frames_extra["payments"])
    lines = result.accounting_lines
    lines = lines[(lines["entity_id"] == entity) & (lines["period"] == period)]
    le = frames["legal_entities"]
    subsidiary = le["erp_subsidiary_id"].iloc[0] if len(le) else None
    journals, held = build_journals(
        lines,
        document_customers({**frames, **frames_extra}),
        frames_extra["customers"],
        subsidiary,
    )
    problems = journal_balance_problems(journals)
    yield dg.Output(
        with_exceptions(journals, held, "posting", ["journal"]),
        metadata=frame_metadata(
            journals,
            None,
            journals=journals["external_id"].nunique() if len(journals) else 0,
            held_journals=len(held["source_id"].unique()) if len(held) else 0,
            debits_functional=int(journals["debit_functional"].sum()) if len(journals) else 0,
        ),
    )
    yield dg.AssetCheckResult(
        check_name="journals_balance",
        passed=problems.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"unbalanced_journals": len(problems)},
    )
    by_rule = held["rule"].value_counts().to_dict() if len(held) else {}
    yield dg.AssetCheckResult(
        check_name="no_held_journals",
        passed=held.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "held": len(held),
            "by_rule": dg.MetadataValue.json({str(k): int(v) for k, v in by_rule.items()}),
        },
    )
