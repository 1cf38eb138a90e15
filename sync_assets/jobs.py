"""Asset jobs: the partitioned sync chain and the reference-data refresh."""

import dagster as dg

from sync_assets.partitions import entity_period_partitions

# Everything partitioned by entity x period, in dependency order. Runs in process: run launch
# overhead dominates small micro-batches (see ../shared/dagster.md).
billing_sync_job = dg.define_asset_job(
    name="billing_sync",
    # every partitioned asset: ingest through reconciliation, the exception queue's refresh,
    # close_status and ops_metrics
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("legal_entities"),
    partitions_def=entity_period_partitions,
    executor_def=dg.in_process_executor,
    description="Ingest, validate, recognize and post one legal entity x accounting period.",
)

legal_entities_job = dg.define_asset_job(
    name="legal_entities_refresh",
    selection=dg.AssetSelection.assets("legal_entities"),
    executor_def=dg.in_process_executor,
)

posting_replay_job = dg.define_asset_job(
    name="posting_replay",
    # the queue is refreshed after the replay posts (its metadata lists the open rows)
    selection=dg.AssetSelection.assets(
        "proposed_journals", "erp_postings", "posting_exception_queue"
    ),
    partitions_def=entity_period_partitions,
    executor_def=dg.in_process_executor,
    description="Propose again and retry open posting exceptions of one entity x period "
    "(a customer whose ERP id arrived releases its held documents; posting is idempotent).",
)
