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
from sync_assets import billing
from sync_assets.metadata import (
    FINANCE,
    TABLE_KINDS,
    check_result,
    currency_totals,
    frame_metadata,
    money_entries,
    table_metadata,
)
from sync_assets.partitions import combined, entity_period_partitions, partitions_by_entity
from sync_core.contracts.derived import ProposedJournalModel
from sync_core.proposal import may_post, propose
from sync_core.proposal_checks import merge_outcomes, proposal_checks

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


def build_proposal(
    wh, erp, entity: str, period: pd.Timestamp, posting_earlier: frozenset = frozenset()
) -> pd.DataFrame:
    """The partition's proposal from stored lines and the ERP's current state: of the
    customers only those of the month's lines, of the ledger only what the posting plan reads
    (``posting_plan.ledger_view``), so a month costs the same in the entity's 1st or 10th year.

    ``posting_earlier``: journal keys that earlier months of the same ranged run propose to
    post (``erp_postings`` posts the months in order): their open exceptions are judged as the
    month-by-month runs would see them, resolved by the time this month posts."""
    from sync_core.posting_plan import ledger_view
    from sync_core.warehouse.schema import TABLES

    cfg = erp.config()
    le = wh.read("legal_entities").query("entity_id == @entity")
    ledger = erp.ledger()
    lines = wh.read("accounting_lines", entity, period)
    ids = sorted(set(lines["customer_id"].dropna())) if "customer_id" in lines else []
    cid = TABLES["customers"].c.customer_id
    parts = [wh.read("customers", entity, where=cid.in_(ids[i : i + 5000]))
             for i in range(0, max(len(ids), 1), 5000)]  # fmt: skip
    return propose(
        lines,
        customers=pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0],
        subsidiary=le["erp_subsidiary_id"].iloc[0] if len(le) else None,
        chart=cfg.accounts(entity),
        posted=lambda documents: ledger_view(ledger, entity, period, documents),
        ledger_lines=ledger.lines,
        period=period,
        closed_periods=erp.closed_periods(entity),
        policy=cfg.period_policy(entity),
        open_exceptions=_still_open(erp.queue().open(entity), posting_earlier),
    )


def _still_open(queue: pd.DataFrame, posting_earlier: frozenset) -> pd.DataFrame:
    if not posting_earlier or queue.empty:
        return queue
    return queue[~queue["journal_key"].isin(posting_earlier)].reset_index(drop=True)


@dg.asset(
    group_name="erp",
    partitions_def=entity_period_partitions,
    dagster_type=_TYPE,
    io_manager_key="warehouse_io",
    deps=[
        dg.AssetDep("accounting_lines"),
        dg.AssetDep("revenue_schedules"),
        dg.AssetDep("customers"),  # the month's; earlier customers are reference data
        billing.legal_entities,
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset="proposed_journals", blocking=True, description=text)
        for name, text in CHECKS.items()
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds=TABLE_KINDS,
    owners=FINANCE,
    tags={"domain": "posting"},
    metadata=table_metadata("proposed_journals"),
)
def proposed_journals(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource
):
    """Every journal the period would post, before it posts: status (ready / held, with reason
    and owner), action against the ERP (new, unchanged, repost = reversal + new version,
    reverse_stale = a posted journal whose document no longer yields it), the external id and
    posting period. The pending-postings view a finance lead reviews before close."""
    wh = warehouse.get()
    proposals, outcomes, labels = [], [], []
    for entity, periods in partitions_by_entity(context.partition_keys).items():
        closed, earlier = erp.closed_periods(entity), frozenset()
        for period in periods:
            proposal = build_proposal(wh, erp, entity, period, earlier)
            earlier |= set(proposal.loc[may_post(proposal), "journal_key"])
            schedule = wh.read("revenue_schedules", entity, period)
            outcomes.append(proposal_checks(proposal, schedule, closed))
            proposals.append(proposal)
            labels.append(f"{entity} {period:%Y-%m}")
    proposal = combined(proposals)
    yield dg.Output(proposal, metadata=proposal_metadata(proposal))
    for outcome in merge_outcomes(outcomes, labels):
        yield check_result(outcome, "proposed_journals")


def proposal_metadata(p: pd.DataFrame) -> dict:
    journals = p.drop_duplicates("journal_key")
    count = lambda s: {str(k): int(v) for k, v in s.value_counts().items()}  # noqa: E731
    held = journals[journals["status"] == "held"]
    to_post = p[(p["status"] == "ready") & (p["action"] != "unchanged")]
    return frame_metadata(
        p,
        None,
        journals=dg.MetadataValue.int(len(journals)),
        by_action=dg.MetadataValue.json(count(journals["action"])),
        held_by_reason=dg.MetadataValue.json(count(held["reason_code"])),
        to_post=dg.MetadataValue.int(
            int(((journals["status"] == "ready") & (journals["action"] != "unchanged")).sum())
        ),
        # what the run would post, per functional currency (the journals' debits)
        **money_entries("to_post_debits_functional", currency_totals(to_post, "debit_functional")),
    )
