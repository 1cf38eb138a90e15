"""Materialization metadata shared by the assets: counts, totals per currency, contract."""

import dagster as dg
import pandas as pd

from sync_core.contracts import CONTRACT_VERSION
from sync_core.ingest import totals_by_currency
from sync_core.money import format_money, to_major


def frame_metadata(df: pd.DataFrame, amount: str | None = None, **extra) -> dict:
    """Row count, contract version and, for money frames, totals per currency.

    Each currency total is also emitted as its own float metadata entry (major units) so the
    Dagster UI plots it over time; the readable totals keep the exact minor-unit value.
    """
    meta: dict = {
        "dagster/row_count": dg.MetadataValue.int(len(df)),
        "contract_version": dg.MetadataValue.text(CONTRACT_VERSION),
    }
    if amount is not None:
        totals = totals_by_currency(df, amount)
        meta[f"{amount}_by_currency"] = dg.MetadataValue.json(
            {cur: format_money(v, cur) for cur, v in sorted(totals.items())}
        )
        for cur, v in sorted(totals.items()):
            meta[f"{amount}_{cur}"] = dg.MetadataValue.float(float(to_major(v, cur)))
    for key, value in extra.items():
        meta[key] = value
    return meta


def with_exceptions(
    df: pd.DataFrame, exceptions: pd.DataFrame, stage: str, objects
) -> pd.DataFrame:
    """Attach the partition's exception rows so the IO manager writes them atomically."""
    df.attrs["exceptions"] = exceptions
    df.attrs["exception_scope"] = (stage, tuple(objects))
    return df


def exceptions_check(asset_key: dg.AssetKey, exceptions: pd.DataFrame) -> dg.AssetCheckResult:
    """WARN when records of this partition were quarantined; the rules are in the metadata."""
    by_rule = exceptions["rule"].value_counts().to_dict() if len(exceptions) else {}
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="no_quarantined_records",
        passed=len(exceptions) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantined": dg.MetadataValue.int(len(exceptions)),
            "by_rule": dg.MetadataValue.json({str(k): int(v) for k, v in by_rule.items()}),
        },
    )


def check_result(outcome, asset: str) -> dg.AssetCheckResult:
    """A core check outcome (``sync_core.proposal_checks.CheckOutcome``) as an ERROR check
    result, with its figures as numeric metadata and what broke it as text."""
    meta = {k: dg.MetadataValue.int(v) for k, v in outcome.metadata.items()}
    if outcome.problems:
        meta["problems"] = dg.MetadataValue.md("\n".join(f"- {p}" for p in outcome.problems))
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=meta,
    )
