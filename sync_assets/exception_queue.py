"""The posting exception queue as an asset: what is waiting, why, and whose it is.

Partitioned like ``erp_postings`` and downstream of it, so every run that posts (the
billing_sync job, the posting_replay job, the demo's and ``billing-sync``'s ranged runs)
refreshes it. It reads the queue's open rows only (table ``posting_exceptions``, indexed on
status), so a refresh costs the open queue, not its history; its metadata is the whole
queue as it stands after the run: the open rows (oldest first, the first 100), counts and
oldest age per owner.
"""

import dagster as dg
import pandas as pd

from resources.erp import ErpResource
from resources.warehouse import split_partition_key
from sync_assets.partitions import entity_period_partitions
from sync_core.ops_metrics import by_owner, open_exceptions
from sync_core.status import OWNERS

SHOWN = 100
ROW_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("entity", "string", "legal entity"),
        dg.TableColumn("period", "string", "accounting month of the journal (YYYY-MM)"),
        dg.TableColumn("document", "string", "billing document (invoice, credit note, ...)"),
        dg.TableColumn("journal_key", "string", "the journal that could not post"),
        dg.TableColumn("reason", "string", "reason code (why it is held)"),
        dg.TableColumn("owner", "string", "who fixes it: finance, master_data, integration"),
        dg.TableColumn("stage", "string", "rules, approval, ordering, period or erp"),
        dg.TableColumn("age_days", "float", "days since first seen"),
        dg.TableColumn("attempts", "int", "times the journal was held or refused"),
        dg.TableColumn("message", "string", "what exactly is wrong"),
    ]
)


def queue_table(rows: pd.DataFrame) -> dg.TableMetadataValue:
    """The first ``SHOWN`` open rows (oldest first) as table metadata."""
    records = [
        dg.TableRecord(
            {
                "entity": str(r.entity_id),
                "period": f"{pd.Timestamp(r.period):%Y-%m}",
                "document": str(r.document_id),
                "journal_key": str(r.journal_key),
                "reason": str(r.reason_code),
                "owner": str(r.owner),
                "stage": str(r.stage),
                "age_days": float(r.age_days),
                "attempts": int(r.attempts),
                "message": str(r.message)[:300],
            }
        )  # fmt: skip
        for r in rows.head(SHOWN).itertuples(index=False)
    ]
    return dg.MetadataValue.table(records, schema=ROW_SCHEMA)


@dg.asset(
    group_name="erp",
    partitions_def=entity_period_partitions,
    deps=[dg.AssetDep("erp_postings")],
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "queue_is_empty",
            asset="posting_exception_queue",
            description="no posting exception is open in the whole queue (WARN: open rows "
            "wait for their owner or the replay)",
        )
    ],
    owners=["team:finance-systems"],
    kinds={"sql"},
    tags={"domain": "operations"},
)
def posting_exception_queue(context: dg.AssetExecutionContext, erp: ErpResource):
    """The open posting exceptions (table ``posting_exceptions``: one row per journal that
    could not post, with stage, reason code, message, owner, attempts, first and last seen,
    status), refreshed after every posting and replay run. Metadata: the open rows of the
    whole queue (oldest first, first 100), open counts and oldest age per owner, and the open
    rows of this run's months. Resolved rows stay in the table as history; open rows are
    retried by ``posting_replay_sensor``."""
    rows = open_exceptions(erp.queue().open(), pd.Timestamp.now("UTC"))
    owners = by_owner(rows)
    mine = {(e, p.date()) for e, p in map(split_partition_key, context.partition_keys)}
    in_run = sum((e, pd.Timestamp(p).date()) in mine
                 for e, p in zip(rows["entity_id"], rows["period"], strict=True))  # fmt: skip
    oldest = float(rows["age_days"].max()) if len(rows) else 0.0
    meta = {
        "open_rows": queue_table(rows),
        "open": dg.MetadataValue.int(len(rows)),
        "open_in_run_months": dg.MetadataValue.int(int(in_run)),
        "oldest_open_days": dg.MetadataValue.float(oldest),
        "open_by_owner": dg.MetadataValue.json({o: v["open"] for o, v in owners.items()}),
        "oldest_days_by_owner": dg.MetadataValue.json(
            {o: v["oldest_days"] for o, v in owners.items()}
        ),
        "open_by_reason": dg.MetadataValue.json(
            {str(k): int(v) for k, v in rows["reason_code"].value_counts().items()}
        ),
        **{f"open_{o}": dg.MetadataValue.int(owners.get(o, {}).get("open", 0)) for o in OWNERS},
    }
    yield dg.MaterializeResult(metadata=meta)
    yield dg.AssetCheckResult(
        check_name="queue_is_empty",
        passed=len(rows) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"open": len(rows), "oldest_open_days": oldest},
    )
