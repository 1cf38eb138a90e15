"""Turn one partition of raw source records into contract-valid frames plus exceptions."""

from __future__ import annotations

import pandas as pd

from sync_core.contracts.documents import validate_document
from sync_core.contracts.models import MODELS, UsageDailyModel
from sync_core.contracts.validate import SOURCE_ID, Quarantine, split_valid


def drop_redeliveries(df: pd.DataFrame, object_name: str) -> pd.DataFrame:
    """Drop exact repeats of a record (the same source delivered twice).

    Two *different* records with the same id are kept, so the uniqueness rule quarantines
    them: a conflicting duplicate needs a person, a repeated delivery does not.
    """
    cols = [c for c in df.columns if not c.startswith("_")]
    return df.drop_duplicates(subset=cols).reset_index(drop=True) if len(df) else df


def prepare(object_name: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate a simple (single-table) object: (valid rows, exception rows)."""
    return split_valid(drop_redeliveries(raw, object_name), MODELS[object_name], object_name)


def prepare_document(
    object_name: str, headers: pd.DataFrame, lines: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validate a header + lines document object, whole documents only."""
    line_object = {"invoices": "invoice_lines", "credit_notes": "credit_note_lines"}[object_name]
    return validate_document(
        object_name,
        drop_redeliveries(headers, object_name),
        drop_redeliveries(lines, line_object),
    )


def usage_daily(events: pd.DataFrame) -> pd.DataFrame:
    """Daily usage per subscription item and metric (UTC days)."""
    cols = list(UsageDailyModel.to_schema().columns)
    if events.empty:
        return UsageDailyModel.validate(
            pd.DataFrame({c: [] for c in cols}).astype(
                {"quantity": "int64", "event_count": "int64"}
            )
        )
    df = events.assign(usage_date=events["timestamp"].dt.floor("D"))
    out = (
        df.groupby(["entity_id", "period", "subscription_item_id", "metric", "usage_date"])
        .agg(quantity=("quantity", "sum"), event_count=("event_id", "size"))
        .reset_index()
    )
    return UsageDailyModel.validate(out[cols])


def totals_by_currency(df: pd.DataFrame, amount: str) -> dict[str, int]:
    """Sum of an amount column per currency, in minor units."""
    if df.empty or amount not in df:
        return {}
    return {str(k): int(v) for k, v in df.groupby("currency")[amount].sum().items()}


__all__ = [
    "SOURCE_ID",
    "Quarantine",
    "drop_redeliveries",
    "prepare",
    "prepare_document",
    "totals_by_currency",
    "usage_daily",
]
