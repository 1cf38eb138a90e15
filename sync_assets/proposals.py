"""Proposed journals: every journal the period would post, its diff against the ERP, and the
blocking checks that must pass before ``erp_postings`` posts anything.

The proposal is built from the month's persisted accounting lines (recognition ran once, in
the revenue asset) and the ERP's current state (``sync_core.proposal``); the checks
(``sync_core.proposal_checks``) look at the stored proposal and the stored schedule. A failed
check is an ERROR that stops ``erp_postings`` in the same run, and ``erp_postings`` refuses to
post a proposal that fails them when it runs alone.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.erp import ErpResource
from resources.warehouse import split_partition_key
from sync_assets import billing
from sync_assets.metadata import check_result, frame_metadata
from sync_assets.partitions import entity_period_partitions
from sync_assets.revenue import SAME_ENTITY_ALL_PERIODS
from sync_core.contracts.derived import ProposedJournalModel
from sync_core.proposal import propose
from sync_core.proposal_checks import proposal_checks

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _TYPE = pandera_schema_to_dagster_type(ProposedJournalModel)

CHECKS = {
    "proposal_balanced": "every journal that would post balances per currency (transaction "
    "and functional)",
    "proposal_accounts_mapped": "every line that would post has an ERP account",
    "proposal_customers_known": "every document line that would post has an ERP customer id",
    "proposal_periods_open": "nothing would post into a closed or locked ERP period",
    "schedule_equals_proposed_gl": "per account and currency the month's revenue schedule "
    "equals the proposed journals (held ones included)",
}


def build_proposal(wh, erp, entity: str, period: pd.Timestamp) -> pd.DataFrame:
    """The partition's proposal from stored lines and the ERP's current state."""
    cfg = erp.config()
    le = wh.read("legal_entities").query("entity_id == @entity")
    ledger = erp.ledger()
    return propose(
        wh.read("accounting_lines", entity, period),
        customers=wh.read("customers", entity),
        subsidiary=le["erp_subsidiary_id"].iloc[0] if len(le) else None,
        chart=cfg.accounts(entity),
        posted=ledger.journals(entity),
        ledger_lines=ledger.lines,
        period=period,
        closed_periods=erp.closed_periods(entity),
        policy=cfg.period_policy(entity),
        open_exceptions=erp.queue().open(entity),
    )


@dg.asset(
    group_name="erp",
    partitions_def=entity_period_partitions,
    dagster_type=_TYPE,
    io_manager_key="warehouse_io",
    deps=[
        dg.AssetDep("accounting_lines"),
        dg.AssetDep("revenue_schedules"),
        dg.AssetDep("customers", partition_mapping=SAME_ENTITY_ALL_PERIODS),
        billing.legal_entities,
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset="proposed_journals", blocking=True, description=text)
        for name, text in CHECKS.items()
    ],
    kinds={"pandas"},
)
def proposed_journals(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource
):
    """Every journal the period would post, before it posts: status (ready / held, with reason
    and owner), action against the ERP (new, unchanged, repost = reversal + new version,
    reverse_stale = a posted journal whose document no longer yields it), the external id and
    posting period. The pending-postings view a finance lead reviews before close."""
    entity, period = split_partition_key(context.partition_key)
    wh = warehouse.get()
    proposal = build_proposal(wh, erp, entity, period)
    outcomes = proposal_checks(
        proposal, wh.read("revenue_schedules", entity, period), erp.closed_periods(entity)
    )
    yield dg.Output(proposal, metadata=proposal_metadata(proposal))
    for outcome in outcomes:
        yield check_result(outcome, "proposed_journals")


def proposal_metadata(p: pd.DataFrame) -> dict:
    journals = p.drop_duplicates("journal_key")
    count = lambda s: {str(k): int(v) for k, v in s.value_counts().items()}  # noqa: E731
    held = journals[journals["status"] == "held"]
    return frame_metadata(
        p,
        None,
        journals=dg.MetadataValue.int(len(journals)),
        by_action=dg.MetadataValue.json(count(journals["action"])),
        held_by_reason=dg.MetadataValue.json(count(held["reason_code"])),
        to_post=dg.MetadataValue.int(
            int(((journals["status"] == "ready") & (journals["action"] != "unchanged")).sum())
        ),
    )
