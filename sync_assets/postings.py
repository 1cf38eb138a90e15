"""ERP postings: the period's proposed journals, posted once.

``erp_postings`` (entity x month) posts what ``proposed_journals`` holds ready, through the ERP
resource, exactly once (``sync_core.erp.poster``). It never recomputes recognition: it reads
the stored proposal, the stored rollforward and the stored schedule, runs the blocking checks
again on them (so a run of this asset alone, as the replay job does, is guarded too), and posts
nothing when one fails. Held journals go to the exception queue with their owner; a posted
journal of the period whose key is no longer proposed is reversed.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.erp import ErpResource
from sync_assets.metadata import (
    ERP_KINDS,
    INTEGRATION,
    currency_totals,
    frame_metadata,
    money_entries,
    table_metadata,
    with_exceptions,
)
from sync_assets.partitions import combined, entity_period_partitions, partitions_by_entity
from sync_core.contracts.derived import JournalLineModel
from sync_core.erp.approvals import fingerprint
from sync_core.erp.poster import post_period
from sync_core.proposal import awaiting_approval, proposed_keys, ready_lines, rule_holds
from sync_core.proposal_checks import proposal_checks, rollforward_balances

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _JOURNAL_TYPE = pandera_schema_to_dagster_type(JournalLineModel)


@dg.asset(
    group_name="erp",
    partitions_def=entity_period_partitions,
    dagster_type=_JOURNAL_TYPE,
    io_manager_key="warehouse_io",
    deps=[
        dg.AssetDep("proposed_journals"),
        dg.AssetDep("revenue_rollforward"),
        dg.AssetDep("revenue_schedules"),
        dg.AssetDep("accounting_lines"),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "no_held_journals",
            asset="erp_postings",
            description="WARN while journals of the partition are held (in the exception "
            "queue with reason and owner) instead of posted; held journals are reconciling "
            "items until the replay posts them.",
        )
    ],
    pool="erp_api",
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds=ERP_KINDS,
    owners=INTEGRATION,
    tags={"domain": "posting"},
    metadata=table_metadata("erp_postings"),
)
def erp_postings(context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource):
    """Every proposed journal line of the period with its posting status (posted, or held with
    reason and owner), ERP external id and posting period; posts the ready ones exactly once."""
    wh = warehouse.get()
    months = [(e, p) for e, ps in partitions_by_entity(context.partition_keys).items() for p in ps]
    proposals = {(e, p): wh.read("proposed_journals", e, p) for e, p in months}
    failed = {}  # every month is checked before anything posts
    for (entity, period), proposal in proposals.items():
        for o in proposal_checks(
            proposal, wh.read("revenue_schedules", entity, period), erp.closed_periods(entity)
        ) + [rollforward_balances(wh.read("revenue_rollforward", entity, period))]:
            if not o.passed:
                failed[f"{entity} {period:%Y-%m}: {o.name}"] = "; ".join(o.problems) or "failed"
    if failed:
        raise dg.Failure(
            description="nothing posted: blocking checks fail on the stored proposal",
            metadata={k: dg.MetadataValue.text(v) for k, v in failed.items()},
        )
    outs, counts, approvals = [], {"posted_now": 0, "already_posted": 0}, {}
    for (entity, period), proposal in proposals.items():
        out, report, approvals[f"{entity} {period:%Y-%m}"] = _post_month(
            context, wh, erp, entity, period, proposal
        )
        outs.append(out)
        counts["posted_now"] += len(report.posted)
        counts["already_posted"] += len(report.unchanged)
    out = combined(outs)
    held = out[out["posting_status"] == "held"].drop_duplicates("journal_key")
    exceptions = held.rename(columns={"journal_key": "source_id", "reason_code": "rule"}).assign(
        object_type="journal"
    )[["entity_id", "period", "object_type", "source_id", "rule", "message", "owner"]]
    posted = out[out["posting_status"] == "posted"]
    stale = sum(int(p.loc[p["action"] == "reverse_stale", "journal_key"].nunique())
                for p in proposals.values())  # fmt: skip
    approval = set(approvals.values())
    yield dg.Output(
        with_exceptions(out.drop(columns="message"), exceptions, "posting", ["journal"]),
        metadata=frame_metadata(
            out,
            None,
            target=erp.target,
            journals=int(out["journal_key"].nunique()) if len(out) else 0,
            held_journals=len(held),
            stale_reversed=stale,
            approval=approval.pop() if len(approval) == 1 else dg.MetadataValue.json(approvals),
            debits_functional=int(posted["debit_functional"].sum()) if len(posted) else 0,
            **money_entries("debits_functional", currency_totals(posted, "debit_functional")),
            **counts,
        ),
    )
    by_reason = held["reason_code"].value_counts().to_dict()
    yield dg.AssetCheckResult(
        check_name="no_held_journals",
        passed=held.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "held": len(held),
            "by_reason": dg.MetadataValue.json({str(k): int(v) for k, v in by_reason.items()}),
        },
    )


def _post_month(context, wh, erp, entity: str, period: pd.Timestamp, proposal: pd.DataFrame):
    """Post one month's ready journals (approval gate included): (state, report, approval)."""
    cfg = erp.config()
    ready, holds, keys = ready_lines(proposal), rule_holds(proposal), proposed_keys(proposal)
    approval = "not required"
    if cfg.approval_required(entity):
        if erp.approvals().approved(entity, period, proposal):
            approval = "approved"
        else:  # every change waits; a stale reversal too (its key stays known)
            approval = "awaiting"
            ready, holds = awaiting_approval(proposal, fingerprint(proposal))
            keys = set(proposal["journal_key"])
    rest = erp.rest_client()
    try:
        report = post_period(
            ready,
            holds,
            entity_id=entity,
            period=period,
            ledger=erp.ledger(),
            queue=erp.queue(),
            closed_periods=erp.closed_periods(entity),
            policy=cfg.period_policy(entity),
            rest=rest,
            run_id=context.run_id,
            batch_size=erp.batch_size,
            known_keys=keys,
            accounting_lines=wh.read("accounting_lines", entity, period),
        )
    finally:
        if rest is not None:
            rest.close()
    refuse_on_auth_failure(erp, entity, period, report)
    return posting_state(proposal, report), report, approval


AUTH_REASONS = ("invalid_login", "insufficient_permission")
# the settings each scheme reads (names only: the values are secrets)
AUTH_SETTINGS = {
    "oauth2": "SYNC_ERP_CLIENT_ID, SYNC_ERP_CERTIFICATE_ID and SYNC_ERP_PRIVATE_KEY (the "
    "certificate's key, mapped to the integration record and role in NetSuite)",
    "tba": "SYNC_NETSUITE_ACCOUNT, SYNC_ERP_CONSUMER_KEY / SYNC_ERP_CONSUMER_SECRET and "
    "SYNC_ERP_TOKEN_ID / SYNC_ERP_TOKEN_SECRET",
    "bearer": "SYNC_ERP_TOKEN",
}


def refuse_on_auth_failure(erp: ErpResource, entity: str, period: pd.Timestamp, report) -> None:
    """Fail the run when the ERP refused the login (401) or the permission (403): every other
    journal would be refused the same way. What was attempted is already recorded (accepted
    journals in the posting log, refused ones in the exception queue, one transaction per
    batch), so a rerun after the fix posts exactly the rest; no other month of the run posts."""
    held = report.held
    if not len(held) or "reason_code" not in held:
        return
    refused = held[held["reason_code"].isin(AUTH_REASONS)].drop_duplicates("journal_key")
    if refused.empty:
        return
    scheme = (erp.rest_auth or "bearer").lower()
    reason = refused["reason_code"].mode().iloc[0]
    what = (
        "refused the login (HTTP 401, invalid_login)"
        if reason == "invalid_login"
        else "refused the permission (HTTP 403, insufficient_permission)"
    )
    fix = (
        f"check SYNC_ERP_AUTH={scheme} and {AUTH_SETTINGS.get(scheme, 'its settings')}"
        if reason == "invalid_login"
        else f"check the role of the SYNC_ERP_AUTH={scheme} integration: it needs REST Web "
        "Services, Log in using Access Tokens / OAuth 2.0, Journal Entry (Create, Edit) and "
        "SuiteQL (Transactions) permissions"
    )
    raise dg.Failure(
        description=f"The ERP at {erp.rest_base_url or 'SYNC_NETSUITE_ACCOUNT'} {what} for "
        f"{len(refused)} journal(s) of {entity} {period:%Y-%m}: {fix}. Nothing else was "
        "posted; the refused journals wait in the exception queue (owner integration) and post "
        "on the next run after the fix.",
        metadata={
            "auth_scheme": scheme,
            "reason": reason,
            "refused_journals": len(refused),
            "posted_now": len(report.posted),
            "partition": f"{entity} {period:%Y-%m}",
        },
    )


def posting_state(proposal: pd.DataFrame, report) -> pd.DataFrame:
    """The proposal's journals (stale reversals aside) as posted or held after the run."""
    out = proposal[proposal["action"] != "reverse_stale"].copy()
    held = report.held.drop_duplicates("journal_key").set_index("journal_key") if len(
        report.held) else None  # fmt: skip
    is_held = out["reason_code"].notna()
    if held is not None:
        now = out["journal_key"].isin(held.index)
        for col in ("reason_code", "owner", "message"):
            out.loc[now, col] = out.loc[now, "journal_key"].map(held[col])
        is_held |= now
    out["external_id"] = out["journal_key"].map(report.external_ids).where(~is_held)
    out["posting_status"] = is_held.map({True: "held", False: "posted"})
    out["posting_period"] = pd.to_datetime(
        out["journal_key"].map(report.posting_periods), utc=True
    ).where(~is_held)
    return out.reset_index(drop=True)
