"""The posting exception queue: one row per journal that could not post, with its history.

A journal held by a posting rule, a closed period, a missing invoice journal or an ERP
refusal is *opened* (or seen again: ``attempts`` + 1, ``last_seen``); when a later run posts
it, the row is *resolved* and kept, so the queue is also the history of what went wrong.

Each open row also says how the replay treats it (``sync_core.erp.replay_policy``):
``replay`` is ``timer`` (retried with backoff at ``next_attempt_at``), ``gave_up`` (a timer
row past its attempts: open, no longer retried, its owner told) or what it waits for
(``customer_erp_ids``, ``erp_config``, ``erp_periods``, ``invoice_posted``, ``approval``,
``source_change``). A table created before these columns existed gets them (nullable) when
the queue is opened; its rows are scheduled from their reason and attempts until seen again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from sync_core.erp.ledger import add_missing_columns
from sync_core.erp.replay_policy import schedule

queue_metadata = sa.MetaData()

posting_exceptions = sa.Table(
    "posting_exceptions",
    queue_metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("journal_key", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, nullable=False),
    sa.Column("document_id", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),  # rules | ordering | period | erp
    sa.Column("reason_code", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),  # finance | master_data | integration
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # open | resolved
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_id", sa.Text, nullable=True),
    sa.Column("replay", sa.Text, nullable=True),  # replay_policy.schedule
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index(
    "ix_posting_exceptions_status", posting_exceptions.c.status, posting_exceptions.c.entity_id
)

STAGE_OF = {
    "journal_balanced": "rules", "account_mapped": "rules", "customer_erp_id": "rules", "document_held": "rules", "awaiting_approval": "approval",
    "waiting_for_invoice": "ordering", "period_closed": "period", "period_locked": "period",
}  # fmt: skip


class ExceptionQueue:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        queue_metadata.create_all(engine, checkfirst=True)
        add_missing_columns(engine, posting_exceptions)

    def record(
        self,
        conn,
        entity_id: str,
        period,
        held: pd.DataFrame,
        posted_keys: list[str],
        run_id: str | None,
    ) -> None:
        """Open or refresh ``held`` journals and resolve ``posted_keys``, in ``conn``'s
        transaction (the same one that posts, when the ledger shares the database)."""
        now = datetime.now(UTC)
        t = posting_exceptions
        if posted_keys:
            for i in range(0, len(posted_keys), 1000):
                conn.execute(
                    sa.update(t)
                    .where(
                        t.c.entity_id == entity_id,
                        t.c.status == "open",
                        t.c.journal_key.in_(posted_keys[i : i + 1000]),
                    )
                    .values(
                        status="resolved",
                        resolved_at=now,
                        last_seen=now,
                        run_id=run_id,
                        next_attempt_at=None,
                    )
                )
        rows = _by_key(held.to_dict("records")) if len(held) else {}
        if not rows:
            return
        found = {}
        keys = list(rows)
        for i in range(0, len(keys), 1000):
            found.update(conn.execute(
                sa.select(t.c.journal_key, t.c.attempts).where(
                    t.c.entity_id == entity_id, t.c.journal_key.in_(keys[i : i + 1000]))
            ).all())  # fmt: skip
        opened, seen = [], []
        for key, (r, times) in rows.items():
            stage = r.get("stage")  # NaN when rows with and without a stage were concatenated
            stage = stage if isinstance(stage, str) else STAGE_OF.get(r["reason_code"], "erp")
            attempts = found.get(key, 0) + times
            replay, next_at = schedule(r["reason_code"], r["owner"], attempts, now)
            values = {
                "period": pd.Timestamp(r["period"]).date(), "document_id": r["document_id"],
                "event": r["event"], "stage": stage,
                "reason_code": r["reason_code"], "message": r["message"], "owner": r["owner"],
                "last_seen": now, "status": "open", "resolved_at": None, "run_id": run_id,
                "attempts": attempts, "replay": replay, "next_attempt_at": next_at,
            }  # fmt: skip
            if key in found:
                seen.append({"w_entity": entity_id, "w_key": key, **values})
            else:
                opened.append({"entity_id": entity_id, "journal_key": key, "first_seen": now,
                               **values})  # fmt: skip
        if opened:
            conn.execute(sa.insert(t), opened)
        if seen:
            where = (t.c.entity_id == sa.bindparam("w_entity")) & (
                t.c.journal_key == sa.bindparam("w_key"))  # fmt: skip
            conn.execute(sa.update(t).where(where), seen)

    def open(self, entity_id: str | None = None) -> pd.DataFrame:
        return self._read(status="open", entity_id=entity_id)

    def all(self) -> pd.DataFrame:
        return self._read()

    def posted_invoices(self, pairs: set[str]) -> set[str]:
        """The ``entity|invoice`` pairs whose invoice journal is in the posting log (the
        ledger tables beside the queue): what a ``waiting_for_invoice`` row waits for."""
        from sync_core.erp.ledger import journals, ledger_metadata

        by_entity: dict[str, list[str]] = {}
        for p in pairs:
            entity, invoice = p.split("|", 1)
            by_entity.setdefault(entity, []).append(invoice)
        if not by_entity:
            return set()
        ledger_metadata.create_all(self.engine, tables=[journals], checkfirst=True)
        found = set()
        with self.engine.connect() as conn:
            for entity, ids in by_entity.items():
                for i in range(0, len(ids), 1000):
                    found.update(f"{entity}|{d}" for d in conn.execute(
                        sa.select(journals.c.document_id).distinct().where(
                            journals.c.entity_id == entity,
                            journals.c.event == "invoice_finalized",
                            journals.c.reverses.is_(None),
                            journals.c.document_id.in_(ids[i : i + 1000]),
                        )).scalars())  # fmt: skip
        return found

    def _read(self, status: str | None = None, entity_id: str | None = None) -> pd.DataFrame:
        t = posting_exceptions
        q = sa.select(t).order_by(t.c.entity_id, t.c.period, t.c.journal_key)
        if status:
            q = q.where(t.c.status == status)
        if entity_id:
            q = q.where(t.c.entity_id == entity_id)
        with self.engine.connect() as conn:
            res = conn.execute(q)
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def _by_key(rows: list[dict]) -> dict[str, tuple[dict, int]]:
    """journal key -> (its last row, how many times it came): a key held twice in one call is
    seen twice, as two calls would count it."""
    out: dict[str, tuple[dict, int]] = {}
    for r in rows:
        _, times = out.get(r["journal_key"], (None, 0))
        out[r["journal_key"]] = (r, times + 1)
    return out
