"""ERP postings: balanced journals for one legal entity x accounting period, posted once.

The journals of a period are its documents' events (invoices finalized, payments, credit
notes, refunds, voids dated in the period) plus one revenue journal per currency. Each is
checked before posting (balanced per currency, every account mapped, the customer known to
the ERP, the period open); one that fails is held whole in the exception queue with its
owner. The rest is posted through the ERP resource exactly once (``sync_core.erp.poster``).
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.erp import ErpResource
from resources.warehouse import split_partition_key
from sync_assets.metadata import frame_metadata, with_exceptions
from sync_assets.partitions import entity_period_partitions
from sync_assets.revenue import SAME_ENTITY_ALL_PERIODS, entity_history, recognize_entity
from sync_core.contracts.derived import JournalLineModel
from sync_core.erp.poster import post_period, rule_holds
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


def proposed_journals(wh, erp_config, entity: str, period: pd.Timestamp):
    """The period's journal lines (with ``journal_key``) and the journals held by rules."""
    frames = entity_history(wh, entity)
    frames["payments"], frames["customers"] = (
        wh.read("payments", entity),
        wh.read("customers", entity),
    )
    result = recognize_entity(wh, entity, payments=frames["payments"])
    lines = result.accounting_lines
    lines = lines[(lines["entity_id"] == entity) & (lines["period"] == period)]
    le = frames["legal_entities"]
    journals, held = build_journals(
        lines,
        document_customers(frames),
        frames["customers"],
        le["erp_subsidiary_id"].iloc[0] if len(le) else None,
        erp_config.accounts(entity),
    )
    invoice_of = (
        frames["payments"].set_index("payment_id")["invoice_id"]
        if len(frames["payments"])
        else pd.Series(dtype=object)
    )
    journals["invoice_id"] = journals["document_id"].map(invoice_of)
    return journals, held


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
    pool="erp_api",
    kinds={"pandas"},
)
def erp_postings(context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource):
    """Journal lines of the period with their posting status and ERP external ids."""
    entity, period = split_partition_key(context.partition_key)
    wh = warehouse.get()
    cfg = erp.config()
    journals, held = proposed_journals(wh, cfg, entity, period)
    problems = journal_balance_problems(journals)
    if len(problems):  # build_journals holds unbalanced journals; this is the last guard
        raise dg.Failure(f"unbalanced journals reached posting: {list(problems.index)[:5]}")
    rest = erp.rest_client()
    try:
        report = post_period(
            journals,
            rule_holds(held),
            entity_id=entity,
            period=period,
            ledger=erp.ledger(),
            queue=erp.queue(),
            closed_periods=erp.closed_periods(entity),
            policy=cfg.period_policy(entity),
            rest=rest,
            run_id=context.run_id,
            batch_size=erp.batch_size,
        )
    finally:
        if rest is not None:
            rest.close()
    held_keys = set(report.held["journal_key"]) if len(report.held) else set()
    # state, not history: a rerun that posts nothing new writes the same rows
    out = journals.assign(
        external_id=journals["journal_key"].map(report.external_ids),
        posting_status=["held" if k in held_keys else "posted" for k in journals["journal_key"]],
        posting_period=pd.to_datetime(
            journals["journal_key"].map(report.posting_periods), utc=True
        ),
    )
    by_reason = report.held["reason_code"].value_counts().to_dict() if len(held_keys) else {}
    yield dg.Output(
        with_exceptions(out, held, "posting", ["journal"]),
        metadata=frame_metadata(
            out,
            None,
            target=erp.target,
            journals=int(out["journal_key"].nunique()) if len(out) else 0,
            posted_now=len(report.posted),
            already_posted=len(report.unchanged),
            held_journals=len(held_keys),
            debits_functional=int(out["debit_functional"].sum()) if len(out) else 0,
        ),
    )
    yield dg.AssetCheckResult(
        check_name="journals_balance",
        passed=problems.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"unbalanced_journals": len(problems)},
    )
    yield dg.AssetCheckResult(
        check_name="no_held_journals",
        passed=not held_keys,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "held": len(held_keys),
            "by_reason": dg.MetadataValue.json({str(k): int(v) for k, v in by_reason.items()}),
        },
    )
