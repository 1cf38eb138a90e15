"""Reports over a schedule: deferred revenue waterfall and rollforward."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.balances import CREDIT_NOTE, CREDIT_NOTE_VOID, INVOICE_LINE, INVOICE_VOID
from sync_core.revenue.contra import CONTRA_SOURCES
from sync_core.revenue.periods import months_to_timestamps, timestamps_to_months

ROLLFORWARD_COLUMNS = [
    "entity_id", "currency", "period", "opening_deferred", "billings", "recognized", "credits",
    "closing_deferred", "revenue", "opening_unbilled", "closing_unbilled",
]  # fmt: skip


def deferred_waterfall(schedule: pd.DataFrame) -> pd.DataFrame:
    """Revenue recognized per month, by the month of the document that billed it.

    ``entity_id, currency, billing_period, period, recognized``; credit notes and voids sit
    under their own document month (negative amounts).
    """
    keys = ["entity_id", "currency", "document_period", "period"]
    out = schedule.groupby(keys, as_index=False, sort=True)["recognized"].sum()
    out = out.rename(columns={"document_period": "billing_period"})
    return out[out["recognized"] != 0].reset_index(drop=True)


def rollforward(schedule: pd.DataFrame) -> pd.DataFrame:
    """Deferred revenue rollforward per entity, currency and month, every month from the
    first to the last of the schedule:

    ``opening_deferred + billings - recognized - credits == closing_deferred`` where
    ``billings`` is what invoices put on deferred revenue (net of voids), ``recognized`` what
    the months' revenue took off it, ``credits`` what credit notes (net of their voids),
    refunds, disputes and uncollectible invoices took off it, and ``closing_deferred`` the
    sum of the schedule's deferred balances. Also:
    ``revenue`` (all revenue recognized, including revenue earned before billing and the
    contra-revenue of credit notes) and the unbilled AR balances.
    """
    if schedule.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ROLLFORWARD_COLUMNS})
    s = schedule
    stype = s["source_type"]
    booked = s["deferred_booked"].to_numpy(np.int64)
    is_bill = stype.isin([INVOICE_LINE, INVOICE_VOID]).to_numpy()
    is_credit = stype.isin([CREDIT_NOTE, CREDIT_NOTE_VOID, *CONTRA_SOURCES]).to_numpy()
    frame = pd.DataFrame(
        {
            "entity_id": s["entity_id"].to_numpy(),
            "currency": s["currency"].to_numpy(),
            "month": timestamps_to_months(s["period"]),
            "billings": np.where(is_bill, booked, 0),
            "recognized": s["deferred_released"].to_numpy(np.int64),
            "credits": np.where(is_credit, -booked, 0),
            "closing_deferred": s["deferred_balance"].to_numpy(np.int64),
            "revenue": s["recognized"].to_numpy(np.int64),
            "closing_unbilled": s["unbilled_balance"].to_numpy(np.int64),
        }
    )
    g = frame.groupby(["entity_id", "currency", "month"], sort=True).sum()
    # every month between the first and the last of each entity and currency
    parts = []
    for (entity, cur), grp in g.groupby(level=[0, 1], sort=True):
        months = grp.index.get_level_values(2)
        full = np.arange(months.min(), months.max() + 1)
        grp = grp.droplevel([0, 1]).reindex(full, fill_value=0)
        grp["opening_deferred"] = grp["closing_deferred"].shift(1, fill_value=0)
        grp["opening_unbilled"] = grp["closing_unbilled"].shift(1, fill_value=0)
        grp["entity_id"], grp["currency"] = entity, cur
        grp["period"] = months_to_timestamps(full).array
        parts.append(grp)
    out = pd.concat(parts, ignore_index=True)
    for c in ROLLFORWARD_COLUMNS[3:]:
        out[c] = out[c].astype(np.int64)
    return out[ROLLFORWARD_COLUMNS]
