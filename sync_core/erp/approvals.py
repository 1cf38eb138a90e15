"""Approvals of proposals, for entities whose controller reviews before anything posts.

An entity with ``approval: required`` in ``config/erp.yaml`` posts a period only when a person
approved *that* proposal: an approval names the proposal's fingerprint (what would post), so
a proposal that changes after it was approved (a late credit note, a fixed customer) waits for
a new approval. Approvals are kept as history, never edited.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from sync_core.posting_plan import content_hash

approvals_metadata = sa.MetaData()

proposal_approvals = sa.Table(
    "proposal_approvals",
    approvals_metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("journals", sa.Integer, nullable=False),
    sa.Column("approved_by", sa.Text, nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),
)


def to_post(proposal: pd.DataFrame) -> pd.DataFrame:
    """The lines of the journals a posting run would change in the ERP."""
    return proposal[(proposal["status"] == "ready") & (proposal["action"] != "unchanged")]


def fingerprint(proposal: pd.DataFrame) -> str:
    """A stable digest of what would post: journal keys, actions and content."""
    lines = to_post(proposal)
    if lines.empty:
        return "nothing-to-post"
    hashes = content_hash(lines)
    actions = lines.drop_duplicates("journal_key").set_index("journal_key")["action"]
    text = "\n".join(f"{k}|{actions[k]}|{hashes[k]}" for k in sorted(hashes.index))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ProposalApprovals:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        approvals_metadata.create_all(engine, checkfirst=True)

    def approve(self, entity_id: str, period, proposal: pd.DataFrame, approved_by: str,
                run_id: str | None = None) -> str:  # fmt: skip
        """Record the approval of ``proposal``; returns its fingerprint."""
        if not str(approved_by or "").strip():
            raise ValueError("an approval needs the name of the person approving")
        fp = fingerprint(proposal)
        row = {
            "entity_id": entity_id, "period": pd.Timestamp(period).date(), "fingerprint": fp,
            "journals": int(to_post(proposal)["journal_key"].nunique()),
            "approved_by": approved_by.strip(), "approved_at": datetime.now(UTC),
            "run_id": run_id,
        }  # fmt: skip
        t = proposal_approvals
        with self.engine.begin() as conn:
            key = (t.c.entity_id == entity_id) & (t.c.period == row["period"]) & (
                t.c.fingerprint == fp)  # fmt: skip
            if conn.execute(sa.select(t.c.fingerprint).where(key)).first() is None:
                conn.execute(sa.insert(t).values(**row))
        return fp

    def approved(self, entity_id: str, period, proposal: pd.DataFrame) -> bool:
        t = proposal_approvals
        q = sa.select(t.c.fingerprint).where(
            t.c.entity_id == entity_id,
            t.c.period == pd.Timestamp(period).date(),
            t.c.fingerprint == fingerprint(proposal),
        )
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None
