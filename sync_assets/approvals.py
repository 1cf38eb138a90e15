"""Approving a period's proposal from the UI, for entities with ``approval: required``.

Launch the ``approve_postings`` job from the Launchpad with the entity, the month and your
name; it records the approval of the proposal as it stands (its fingerprint), and the held
journals (``awaiting_approval``) post on the next ``posting_replay`` run of the partition. A
proposal that changes afterwards needs a new approval.
"""

import dagster as dg
import pandas as pd

from resources import WarehouseResource
from resources.erp import ErpResource
from sync_core.erp.approvals import to_post


class ApprovalConfig(dg.Config):
    entity: str
    period: str  # YYYY-MM
    approved_by: str


@dg.op(description="Record a person's approval of one entity x month's proposed journals.")
def approve_proposal(
    context: dg.OpExecutionContext,
    config: ApprovalConfig,
    warehouse: WarehouseResource,
    erp: ErpResource,
) -> dg.Output:
    try:
        period = pd.Timestamp(f"{config.period}-01", tz="UTC")
    except ValueError as exc:
        raise dg.Failure(f"period {config.period!r} is not YYYY-MM") from exc
    proposal = warehouse.get().read("proposed_journals", config.entity, period)
    if proposal.empty:
        raise dg.Failure(f"no proposal for {config.entity} {config.period}: materialize "
                         "proposed_journals for that partition first")  # fmt: skip
    fp = erp.approvals().approve(config.entity, period, proposal, config.approved_by,
                                 context.run_id)  # fmt: skip
    journals = int(to_post(proposal)["journal_key"].nunique())
    return dg.Output(
        None,
        metadata={
            "fingerprint": fp,
            "journals_to_post": journals,
            "approved_by": config.approved_by,
        },  # fmt: skip
    )


@dg.job(description="Approve a period's proposed journals (entities with approval: required).")
def approve_postings():
    approve_proposal()
