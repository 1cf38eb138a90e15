"""Reconciliation: does the ERP's general ledger agree with the billing subledger, and if not,
what exactly is the difference? One legal entity x accounting period, after posting.

The GL is **read back from the ERP target** (the SQL ledger by query; a REST ERP through
SuiteQL), never taken from what the platform meant to post. Per account (AR, unbilled AR,
deferred revenue, revenue, contra revenue, tax liability, cash and the others of the chart)
the balance at the period's end is compared with the subledger (the revenue schedule and the
engine's accounting lines); listed reconciling items (held journals, corrections posted into
a later period) explain part of a difference; what is left is drift, judged by the entity's
materiality (``config/erp.yaml``). Completeness: every document of the period posted exactly
once, or held in the exception queue. The logic is :mod:`sync_core.reconcile`; the checks are
computed here, inside the materialization, from what was read back.
"""

import warnings

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type

from resources import WarehouseResource
from resources.erp import ErpResource
from sync_assets.metadata import (
    ERP_KINDS,
    FINANCE,
    TABLE_KINDS,
    amount_entry,
    frame_metadata,
    table_metadata,
)
from sync_assets.partitions import combined, entity_period_partitions, partitions_by_entity
from sync_core.contracts.derived import DERIVED_MODELS
from sync_core.reconcile import (
    ERROR,
    KINDS,
    by_accounting_period,
    completeness,
    drift,
    expected_postings,
    functional_known,
    quarantined,
    reconciling_items,
    subledger_balances,
)
from sync_core.reconcile.balances import as_months, line_balances, through
from sync_core.warehouse.schema import TABLES

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    _TYPES = {
        name: pandera_schema_to_dagster_type(DERIVED_MODELS[name])
        for name in ("reconciliation", "reconciliation_items")
    }
_DESCRIPTIONS = {
    "reconciliation": "Per account and currency at the month's end: the subledger, the GL "
    "read back from the ERP, the listed reconciling items and the drift left over, with its "
    "severity by the entity's materiality (PASS at zero, WARN up to it, ERROR above).",
    "reconciliation_items": "The reconciling items a controller works through: journals "
    "held in the exception queue and journals posted in a later ERP period, per journal and "
    "account, with amount, reason and owner.",
}
CHECKS = {
    "gl_equals_subledger": "per account and currency, subledger - GL - reconciling items = 0 "
    "(WARN up to the entity's materiality, ERROR above; passes only at zero)",
    "postings_complete": "every invoice, credit note, payment, refund and dispute of the "
    "period has exactly one live ERP posting or one open posting exception",
}


def _entity(wh, entity: str) -> tuple[str, str]:
    le = wh.read("legal_entities").query("entity_id == @entity")
    if le.empty:
        raise dg.Failure(f"legal entity {entity} is not in legal_entities")
    return str(le["functional_currency"].iloc[0]), str(le["erp_subsidiary_id"].iloc[0])


# the documents' columns the completeness check reads (sync_core.reconcile.completeness)
_DOCUMENT_COLUMNS = {
    "invoices": ["entity_id", "invoice_id", "status", "finalized_at", "voided_at",
                 "uncollectible_at", "total"],
    "credit_notes": ["entity_id", "credit_note_id", "status", "issued_at", "voided_at", "total"],
    "payments": ["entity_id", "payment_id", "kind", "status", "created_at", "amount"],
    "disputes": ["entity_id", "dispute_id", "status", "created_at", "closed_at", "amount"],
}  # fmt: skip


def _as_months(documents: pd.DataFrame) -> pd.DataFrame:
    """The documents' dates as their months, converted once for all the months of a run
    (``expected_postings`` compares months only)."""
    dated = [c for c in documents if c.endswith("_at")]
    return documents.assign(**{c: as_months(documents[c]) for c in dated})


def reconcile_months(wh, erp: ErpResource, entity: str, periods: list[pd.Timestamp]):
    """[(drift per account, reconciling items, incomplete documents, functional compared)]
    per month. Balances come from monthly totals summed in the databases (GL per posting
    month and account, accounting lines and schedule per month), completeness and reconciling
    items from the journals of the months' documents and the held and moved journals, so a
    month costs its own documents, not the entity's history
    (``sync_core.warehouse.totals`` keeps the subledger's totals per month)."""
    functional, subsidiary = _entity(wh, entity)
    first, last = min(periods), max(periods)
    gl = erp.gl_movements(entity, subsidiary, functional, through=last)
    # only held lines are reconciling items (sync_core.reconcile.items.held_items)
    postings = wh.read("erp_postings", entity, where=TABLES["erp_postings"].c.posting_status
                       == "held")  # fmt: skip
    # open exceptions: a held journal's reason and owner (a journal key names its entity)
    open_now = erp.queue().open(entity)
    accounting = wh.totals("accounting_lines", entity, periods=(None, last))
    schedule = wh.totals("revenue_schedules", entity, periods=(None, last))
    # where each document's lines are (by_accounting_period): its lines are never earlier
    # than its own date, so the months from the first reconciled one suffice
    placed = wh.sums("accounting_lines", entity, ["entity_id", "document_id", "event", "period"],
                     ["debit"], periods=(first, None))  # fmt: skip
    docs = [_as_months(wh.read(name, entity, columns=cols)) for name, cols in
            _DOCUMENT_COLUMNS.items()]  # fmt: skip
    refusals = wh.read("exceptions", where=TABLES["exceptions"].c.entity_id == entity)
    closed = wh.closed_through().get(entity)
    expected = {
        p: by_accounting_period(
            expected_postings(p, *docs), placed, p, closed=closed is not None and p <= closed
        )  # fmt: skip
        for p in periods
    }
    held_docs = set(postings["document_id"])
    log_heads = erp.posting_slice(entity, held_docs.union(*(e["document_id"]
                                                            for e in expected.values())))  # fmt: skip
    # what reconciling items read: the held documents' journals and the moved ones, with lines
    item_heads = log_heads[log_heads["document_id"].isin(held_docs)
                           | (log_heads["period"] != log_heads["source_period"])]  # fmt: skip
    item_lines = erp.ledger().lines(list(item_heads["external_id"]))
    materiality = erp.config().materiality(entity)
    out = []
    for period in periods:
        items = reconciling_items(postings, item_heads, item_lines, period,
                                  exceptions=open_now, entity_id=entity)  # fmt: skip
        sub = subledger_balances(schedule, accounting, period, entity)
        gl_through = through(gl, period)
        known = functional_known(gl_through)
        result = drift(sub, line_balances(gl_through), items, materiality,
                       KINDS if known else ("transaction",))  # fmt: skip
        month_docs = expected[period]
        waiting = pd.concat([open_now, quarantined(month_docs, refusals)], ignore_index=True)
        # the journals of the month's documents (a reversal keeps its document)
        mine = log_heads[log_heads["document_id"].isin(month_docs["document_id"])]
        offenders = completeness(month_docs, mine, waiting)
        out.append((result.assign(period=period), items, offenders, known))
    return out


def _drift_metadata(result: pd.DataFrame) -> dict:
    """Functional drift per account: ``drift_<account>`` in major units, a float the UI plots
    over time, and ``drift_<account>_display``, the exact amount with its currency."""
    f = result[result["kind"] == "functional"]
    if f.empty:  # a GL read without functional amounts: the functional-currency rows
        f = result[result["currency"] == result["currency"].mode().iloc[0]] if len(result) else f
    meta: dict = {}
    for r in f.itertuples(index=False):
        meta.update(amount_entry(f"drift_{r.account}", int(r.drift), r.currency))
    return meta


def _gl_check(result: pd.DataFrame, items: pd.DataFrame, known: bool) -> dg.AssetCheckResult:
    off = result[result["drift"] != 0]
    return dg.AssetCheckResult(
        asset_key="reconciliation",
        check_name="gl_equals_subledger",
        passed=off.empty,
        severity=dg.AssetCheckSeverity.ERROR
        if (off["severity"] == ERROR).any()
        else dg.AssetCheckSeverity.WARN,
        metadata={
            **_drift_metadata(result),
            "accounts_with_drift": dg.MetadataValue.int(int(off["account"].nunique())),
            "max_abs_drift_minor": dg.MetadataValue.int(
                int(off["drift"].abs().max() or 0) if len(off) else 0
            ),  # fmt: skip
            "reconciling_items": dg.MetadataValue.int(len(items)),
            "functional_compared": dg.MetadataValue.bool(known),
            "drift_rows": dg.MetadataValue.json(
                off.drop(columns=["entity_id", "period"]).astype(str).to_dict("records")[:50]
            ),
        },
    )


def _completeness_check(offenders: pd.DataFrame) -> dg.AssetCheckResult:
    by_reason = offenders["reason"].value_counts().to_dict() if len(offenders) else {}
    sample = offenders[["document_type", "document_id", "event", "reason", "external_ids"]]
    return dg.AssetCheckResult(
        asset_key="reconciliation",
        check_name="postings_complete",
        passed=offenders.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "incomplete_documents": dg.MetadataValue.int(len(offenders)),
            "by_reason": dg.MetadataValue.json({str(k): int(v) for k, v in by_reason.items()}),
            "documents": dg.MetadataValue.json(sample.astype(str).to_dict("records")[:50]),
        },
    )


@dg.multi_asset(
    outs={
        name: dg.AssetOut(
            dagster_type=_TYPES[name],
            io_manager_key="warehouse_io",
            group_name="reconciliation",
            description=_DESCRIPTIONS[name],
            owners=FINANCE,
            kinds=ERP_KINDS if name == "reconciliation" else TABLE_KINDS,
            tags={"domain": "reconciliation"},
            metadata=table_metadata(name),
        )  # fmt: skip
        for name in _TYPES
    },
    partitions_def=entity_period_partitions,
    deps=[dg.AssetDep("erp_postings"), dg.AssetDep("revenue_schedules")],
    check_specs=[
        dg.AssetCheckSpec(name, asset="reconciliation", description=text)
        for name, text in CHECKS.items()
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def reconciliation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp: ErpResource
):
    """Per account: subledger, GL read back from the ERP, reconciling items, drift and its
    severity by materiality; and the reconciling items a controller works through."""
    wh = warehouse.get()
    months = [
        month
        for entity, periods in partitions_by_entity(context.partition_keys).items()
        for month in reconcile_months(wh, erp, entity, periods)
    ]
    result, items, offenders = (combined([m[i] for m in months]) for i in range(3))
    known = all(m[3] for m in months)
    by_type = items["item_type"].value_counts().to_dict() if len(items) else {}
    yield dg.Output(
        result,
        output_name="reconciliation",
        metadata=frame_metadata(
            result,
            None,
            target=erp.target,
            **_drift_metadata(result),
            accounts_with_drift=int(result.loc[result["drift"] != 0, "account"].nunique()),
            functional_compared=known,
        ),  # fmt: skip
    )
    yield dg.Output(
        items,
        output_name="reconciliation_items",
        metadata=frame_metadata(
            items,
            None,
            held_items=int(by_type.get("held", 0)),
            timing_items=int(by_type.get("timing", 0)),
        ),  # fmt: skip
    )
    yield _gl_check(result, items, known)
    yield _completeness_check(offenders)
