"""The posting exception queue as an asset: what is waiting, why, and whose it is."""

import dagster as dg

from resources.erp import ErpResource


@dg.asset(
    group_name="erp",
    deps=["erp_postings"],
    check_specs=[dg.AssetCheckSpec("queue_is_empty", asset="posting_exception_queue")],
    kinds={"sql"},
)
def posting_exception_queue(erp: ErpResource) -> dg.MaterializeResult:
    """One row per journal that could not post (table ``posting_exceptions``): stage, reason
    code, message, owner, attempts, first and last seen, status. Resolved rows are kept as
    history. Open rows are retried by ``posting_replay_sensor``."""
    rows = erp.queue().all()
    open_rows = rows[rows["status"] == "open"] if len(rows) else rows
    by = lambda col: {str(k): int(v) for k, v in open_rows[col].value_counts().items()}  # noqa: E731
    oldest = open_rows["first_seen"].min() if len(open_rows) else None
    return dg.MaterializeResult(
        metadata={
            "open": dg.MetadataValue.int(len(open_rows)),
            "resolved": dg.MetadataValue.int(len(rows) - len(open_rows)),
            "open_by_owner": dg.MetadataValue.json(by("owner") if len(open_rows) else {}),
            "open_by_reason": dg.MetadataValue.json(by("reason_code") if len(open_rows) else {}),
            "oldest_open": dg.MetadataValue.text(str(oldest) if oldest is not None else "-"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="queue_is_empty",
                passed=len(open_rows) == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"open": len(open_rows)},
            )
        ],
    )
