"""Period close and reopen as operator jobs, launched from the Launchpad (or the schedule).

``period_close`` closes one legal entity x month, ``period_reopen`` reopens it; both are
op jobs with three (four) strings of config, not partitioned. What they decide is
:mod:`sync_core.period_close_flow`; ``billing-sync close`` / ``reopen`` call the same
:func:`close_month` / :func:`reopen_month` on the configured instance and resources.

How a close makes the month current: its op **executes** the month's derived assets
(revenue, accounting lines, proposals, postings, reconciliation, ...: every partitioned asset
outside the billing group, from the asset graph) as one in-process run on the same instance
(tag ``sync/trigger=period_close``), from the canonical rows in the warehouse, and reads the
``gl_equals_subledger`` / ``postings_complete`` evaluations of that run: the latest there are,
computed from the GL as read back now. Checking earlier materializations for staleness instead
would have to guess which upstream changes matter (a late document of another month changes
this one); re-running is exact, and costs the month's run (seconds for a month). The ingest
is not re-read: the source's new deliveries come in through the sensors and ``billing_sync``.
"""

import dagster as dg
from pydantic import Field

from resources import BillingSourceResource, WarehouseIOManager, WarehouseResource
from resources.erp import ErpResource
from sync_assets.partitions import entity_partitions, partition_key
from sync_core import period_close_flow as flow

CLOSE_YAML = """ops:
  close_period:
    config:
      entity_id: US01
      period: "2025-06"
      closed_by: controller"""
REOPEN_YAML = """ops:
  reopen_period:
    config:
      entity_id: US01
      period: "2025-06"
      reopened_by: controller
      reason: late credit note for June"""


class CloseConfig(dg.Config):
    entity_id: str = Field(description="legal entity, e.g. US01")
    period: str = Field(description="the month to close, YYYY-MM")
    closed_by: str = Field(description="who closes (recorded in period_close_log)")


class ReopenConfig(dg.Config):
    entity_id: str = Field(description="legal entity, e.g. US01")
    period: str = Field(description="the month to reopen, YYYY-MM (the last closed month)")
    reopened_by: str = Field(description="who reopens (recorded in period_close_log)")
    reason: str = Field(description="why the month reopens (required, recorded)")


def close_run_config(entity_id: str, period: str, closed_by: str) -> dict:
    """The ``period_close`` run config of a month (what the Launchpad YAML says)."""
    cfg = {"entity_id": entity_id, "period": period, "closed_by": closed_by}
    return {"ops": {"close_period": {"config": cfg}}}


def _ready(resource):
    """A resource with its config resolved (EnvVar values read) outside a run."""
    return resource.process_config_and_initialize()


def check_outcomes(result) -> dict[str, flow.CheckOutcome]:
    """The reconciliation checks evaluated by ``result`` (a run of the month)."""
    out = {}
    for e in result.get_asset_check_evaluations():
        if e.asset_key != dg.AssetKey("reconciliation"):
            continue
        meta = {k: getattr(v, "value", v) for k, v in e.metadata.items()}
        rows = meta.get("drift_rows") or meta.get("documents") or []
        count = meta.get("accounts_with_drift", meta.get("incomplete_documents", len(rows)))
        severity = getattr(e.severity, "value", str(e.severity))
        out[e.check_name] = flow.CheckOutcome(e.check_name, e.passed, severity, rows, count)
    return out


def refresh_month(instance, resources: dict, entity_id: str, period) -> dict:
    """Run the month's derived assets in process (module docstring); its check outcomes."""
    from sync_assets import runner  # runner reads the assembled Definitions, which import us

    month = flow.month_start(period)
    if entity_id not in instance.get_dynamic_partitions(entity_partitions.name):
        raise flow.PeriodCloseRefused("close", entity_id, f"{month:%Y-%m}", [
            f"{entity_id} is not a legal entity partition (legal_entities sensor)"])  # fmt: skip
    key = partition_key(entity_id, f"{month:%Y-%m-%d}")
    try:
        result = runner.materialize(instance, resources, runner.derived_assets(), key,
                                    trigger="period_close")  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a failed step refuses the close with its cause
        cause = getattr(exc, "user_exception", None) or exc
        raise flow.PeriodCloseRefused("close", entity_id, f"{month:%Y-%m}", [
            f"the month's run failed: {type(cause).__name__}: {cause}"]) from exc  # fmt: skip
    return check_outcomes(result)


def close_month(instance, resources: dict, entity_id: str, period: str, closed_by: str,
                run_id: str | None = None) -> flow.CloseRecord:  # fmt: skip
    """Refresh the month, gate it and close revenue then ERP (``sync_core.period_close_flow``).
    ``resources`` are the code location's (``build_resources()``) or a run's."""
    month = flow.parse_period(period)
    wh, erp = _ready(resources["warehouse"]).get(), _ready(resources["erp"])
    early = flow.close_refusals(wh, erp.engine(), entity_id, month, closed_by)
    if early:  # before the month's run: nothing to refresh for a refused close
        raise flow.PeriodCloseRefused("close", entity_id, f"{month:%Y-%m}", early)
    checks = refresh_month(instance, resources, entity_id, month)
    return flow.close_period(wh, erp.engine(), entity_id, month, closed_by, checks=checks,
                             open_exceptions=erp.queue().open(entity_id), run_id=run_id)  # fmt: skip


def reopen_month(resources: dict, entity_id: str, period: str, reopened_by: str, reason: str,
                 run_id: str | None = None) -> flow.CloseRecord:  # fmt: skip
    """Reopen the month: ERP period, then revenue (``sync_core.period_close_flow``)."""
    month = flow.parse_period(period)
    wh, erp = _ready(resources["warehouse"]).get(), _ready(resources["erp"])
    return flow.reopen_period(wh, erp.engine(), entity_id, month, reopened_by, reason,
                              run_id=run_id)  # fmt: skip


def replay_month(instance, resources: dict, entity_id: str, period: str) -> tuple[int, int]:
    """Retry the month's open posting exceptions through the replay path: one in-process run
    of the ``posting_replay`` job's assets (what ``posting_replay_sensor`` requests; posting
    is idempotent). (open before, open after); RuntimeError naming a failed step."""
    from sync_assets import runner
    from sync_assets.definitions import defs
    from sync_assets.jobs import posting_replay_job

    month = flow.parse_period(period)
    queue = _ready(resources["erp"]).queue()

    def waiting() -> int:
        rows = queue.open(entity_id)
        return sum(flow.month_start(p) == month for p in rows["period"]) if len(rows) else 0

    before = waiting()
    if not before:
        return 0, 0
    graph = defs.resolve_asset_graph()
    keys = posting_replay_job.selection.resolve(graph)
    selection = [k.to_user_string() for k in graph.toposorted_asset_keys if k in keys]
    key = partition_key(entity_id, f"{month:%Y-%m-%d}")
    try:
        runner.materialize(instance, resources, selection, key, trigger="replay")
    except Exception as exc:  # noqa: BLE001 - a failed step: its cause, not a traceback
        cause = getattr(exc, "user_exception", None) or exc
        raise RuntimeError(f"replay failed: {type(cause).__name__}: {cause}") from exc
    return before, waiting()


def _emit(context: dg.OpExecutionContext, record: flow.CloseRecord) -> None:
    """The audit row as a materialization of ``period_close_log`` (asset catalog, the run)."""
    meta = {k: "" if v is None else str(v) for k, v in record.as_dict().items()}
    context.log_event(dg.AssetMaterialization(
        asset_key="period_close_log",
        description=f"{record.entity_id} {record.period} {record.action} by {record.by}",
        metadata={**meta, "partition": f"{record.entity_id}|{record.period}-01"},
    ))  # fmt: skip
    context.log.info(f"{record.action} of {record.entity_id} {record.period} by {record.by}: "
                     f"revenue closed through {record.revenue_closed_through}, ERP period "
                     f"{record.erp_status}")  # fmt: skip


def _refused(exc: Exception) -> dg.Failure:
    reasons = getattr(exc, "reasons", [str(exc)])
    return dg.Failure(description=str(exc),
                      metadata={"reasons": dg.MetadataValue.json(reasons)})  # fmt: skip


@dg.op(description="Run the month's derived assets, refuse on failing reconciliation or open "
       "posting exceptions (listed), then close revenue and the ERP period; audited.")  # fmt: skip
def close_period(
    context: dg.OpExecutionContext,
    config: CloseConfig,
    warehouse: WarehouseResource,
    erp: ErpResource,
    billing_source: BillingSourceResource,
) -> None:
    resources = {"warehouse": warehouse, "warehouse_io": WarehouseIOManager(warehouse=warehouse),
                 "erp": erp, "billing_source": billing_source}  # fmt: skip
    try:
        record = close_month(context.instance, resources, config.entity_id.strip(),
                             config.period, config.closed_by, run_id=context.run_id)  # fmt: skip
    except (flow.PeriodCloseRefused, ValueError) as exc:
        raise _refused(exc) from exc
    _emit(context, record)


@dg.op(description="Reopen the month (ERP period, then revenue); a reason is required; audited.")
def reopen_period(
    context: dg.OpExecutionContext,
    config: ReopenConfig,
    warehouse: WarehouseResource,
    erp: ErpResource,
) -> None:
    resources = {"warehouse": warehouse, "erp": erp}
    try:
        record = reopen_month(resources, config.entity_id.strip(), config.period,
                              config.reopened_by, config.reason, run_id=context.run_id)  # fmt: skip
    except (flow.PeriodCloseRefused, ValueError) as exc:
        raise _refused(exc) from exc
    _emit(context, record)


@dg.job(
    executor_def=dg.in_process_executor,
    tags={"sync/trigger": "period_close"},
    description="Close one legal entity x month: re-run its derived assets, refuse (listing "
    "them) while gl_equals_subledger fails above materiality, postings_complete fails or "
    "posting exceptions of the month are open, then close the revenue and the ERP period and "
    f"record who and when in period_close_log. Launchpad config:\n\n```yaml\n{CLOSE_YAML}\n```",
)
def period_close():
    close_period()


@dg.job(
    executor_def=dg.in_process_executor,
    tags={"sync/trigger": "period_reopen"},
    description="Reopen the last closed month of a legal entity (ERP period, then revenue), "
    "with a required reason recorded in period_close_log. Launchpad config:\n\n"
    f"```yaml\n{REOPEN_YAML}\n```",
)
def period_reopen():
    reopen_period()
