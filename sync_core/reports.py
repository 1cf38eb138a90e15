"""Finance summaries over the warehouse tables (pure functions on DataFrames)."""

from __future__ import annotations

import pandas as pd

from sync_core.money import format_money


def period_summary(
    schedule: pd.DataFrame, journals: pd.DataFrame, exceptions: pd.DataFrame
) -> pd.DataFrame:
    """One row per entity x period x currency: billings, revenue, deferred and unbilled
    balances (transaction currency, from the revenue schedule), plus the partition's journals
    and open exceptions."""
    keys = ["entity_id", "period"]
    money = (
        schedule.groupby(keys + ["currency"], as_index=False)[
            ["billed", "recognized", "deferred_balance", "unbilled_balance"]
        ].sum()
        if len(schedule)
        else pd.DataFrame(
            columns=keys
            + ["currency", "billed", "recognized", "deferred_balance", "unbilled_balance"]
        )
    )
    posted = (
        journals.groupby(keys).agg(
            journals=("external_id", "nunique"), journal_lines=("external_id", "size")
        )
        if len(journals)
        else pd.DataFrame(columns=["journals", "journal_lines"])
    )
    open_exc = exceptions.groupby(keys).size().rename("exceptions") if len(exceptions) else None
    out = money.join(posted, on=keys)
    out = out.join(open_exc, on=keys) if open_exc is not None else out.assign(exceptions=0)
    out[["journals", "journal_lines", "exceptions"]] = (
        out[["journals", "journal_lines", "exceptions"]].fillna(0).astype(int)
    )
    out = out.sort_values(keys + ["currency"]).reset_index(drop=True)
    for col in ("billed", "recognized", "deferred_balance", "unbilled_balance"):
        out[col] = [format_money(v, c) for v, c in zip(out[col], out["currency"], strict=True)]
    out["period"] = out["period"].dt.strftime("%Y-%m")
    return out.rename(
        columns={
            "entity_id": "entity",
            "billed": "billings",
            "recognized": "revenue",
            "deferred_balance": "deferred",
            "unbilled_balance": "unbilled_ar",
        }
    )
