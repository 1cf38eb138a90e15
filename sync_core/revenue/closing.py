"""Closed periods: what changes in a closed month is booked in the first open month.

An accounting period closed in the ERP cannot take new postings (NetSuite closed periods,
Odoo lock dates, Stripe period control). :func:`apply_closed_periods` keeps every closed
month of the schedule as it was booked, and moves any difference into the first open month as
a *correction* row (``correction=True``, ``original_period`` = the closed month it belongs
to). The schedule's totals per source do not change; balances and flows are recomputed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import conversion_terms, convert_half_even
from sync_core.revenue.balances import SOURCE_COLUMNS, VALUES, complete
from sync_core.revenue.periods import months_to_timestamps, timestamps_to_months

NO_CLOSE = np.iinfo(np.int64).min


def apply_closed_periods(
    schedule: pd.DataFrame,
    closed_through: dict[str, pd.Timestamp],
    booked: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Move changes to closed months into the first open month.

    ``closed_through``: entity -> last closed month. ``booked``: what was already posted for
    closed months (``entity_id, source_id, period, recognized`` and optionally
    ``recognized_functional``). Without it, the rows of a closed month that belong to a
    document dated after the close (revenue recognized before a late invoice, late usage) are
    the ones that were not booked. With it, each closed month keeps exactly what was booked,
    and a document dated in a closed month that was never booked is treated as arriving in
    the first open month (its own journal too). Booked rows of sources absent from the
    schedule are left alone: a document held in quarantine does not reverse past postings.
    """
    if schedule.empty or not closed_through:
        return schedule
    s = schedule.reset_index(drop=True)
    codes, uniq = pd.factorize(s["source_id"])
    first = pd.Series(np.arange(len(s))).groupby(codes).first().to_numpy()
    sources = s.iloc[first][SOURCE_COLUMNS].reset_index(drop=True)
    sources["billed_total"] = s.groupby(codes)["billed"].sum().to_numpy()
    sources["billed_total_functional"] = s.groupby(codes)["billed_functional"].sum().to_numpy()
    closed = {e: int(timestamps_to_months(pd.Series([pd.Timestamp(c)]))[0])
              for e, c in closed_through.items()}  # fmt: skip
    close_m = sources["entity_id"].map(closed).fillna(NO_CLOSE).to_numpy(np.int64)
    doc_m = timestamps_to_months(sources["document_period"])

    month = timestamps_to_months(s["period"])
    orig = s["original_period"]
    original = np.where(orig.notna(), timestamps_to_months(orig.fillna(s["period"])), -1)
    rows = pd.DataFrame({"src": codes, "month": month, "correction": s["correction"].to_numpy(),
                         "original_month": original})  # fmt: skip
    for c in VALUES:
        rows[c] = s[c].to_numpy(np.int64)

    in_closed = month <= close_m[codes]
    if booked is None:
        late = in_closed & (doc_m[codes] > close_m[codes])
        rows = _move(rows, late, close_m)
    else:
        rows, sources = _against_booked(rows, sources, in_closed, close_m, doc_m, booked)
    return complete(sources, rows)


def _move(rows: pd.DataFrame, mask: np.ndarray, close_m: np.ndarray) -> pd.DataFrame:
    """Move the values of ``mask`` rows to correction rows in the first open month."""
    if not mask.any():
        return rows
    moved = rows[mask].copy()
    moved["original_month"] = np.where(moved["original_month"] >= 0, moved["original_month"],
                                       moved["month"])  # fmt: skip
    moved["month"] = close_m[moved["src"].to_numpy()] + 1
    moved["correction"] = True
    moved = moved[(moved[list(VALUES)] != 0).any(axis=1)]
    kept = rows.copy()
    kept.loc[mask, list(VALUES)] = 0
    return pd.concat([kept, moved], ignore_index=True)


def _against_booked(rows, sources, in_closed, close_m, doc_m, booked):
    b = booked.copy()
    b["src"] = pd.Index(sources["source_id"]).get_indexer(b["source_id"])
    b = b[b["src"] >= 0]
    b["month"] = timestamps_to_months(b["period"])
    b = b[b["month"] <= close_m[b["src"].to_numpy()]]
    if "recognized_functional" not in b:
        src = sources.iloc[b["src"].to_numpy()]
        num, den = conversion_terms(src["fx_rate"], src["currency"], src["functional_currency"])
        b["recognized_functional"] = convert_half_even(b["recognized"].to_numpy(np.int64), num,
                                                       den)  # fmt: skip
    b = b.groupby(["src", "month"])[["recognized", "recognized_functional"]].sum()

    # a document dated in a closed month that was never booked arrives in the first open one
    ever_booked = np.zeros(len(sources), dtype=bool)
    ever_booked[b.index.get_level_values(0).unique()] = True
    late_doc = (doc_m <= close_m) & ~ever_booked
    if late_doc.any():
        sources = sources.copy()
        new_doc = np.where(late_doc, close_m + 1, doc_m)
        sources["document_period"] = months_to_timestamps(new_doc).array

    closed_rows = rows[in_closed]
    open_rows = rows[~in_closed]
    sched = closed_rows.groupby(["src", "month"])[list(VALUES)].sum()
    both = sched.join(b, how="outer", rsuffix="_booked").fillna(0).astype(np.int64)
    src = both.index.get_level_values(0).to_numpy()
    mon = both.index.get_level_values(1).to_numpy()
    late = late_doc[src]
    keep = pd.DataFrame({
        "src": src, "month": mon, "correction": False, "original_month": -1,
        "recognized": both["recognized_booked"].to_numpy(),
        "recognized_functional": both["recognized_functional_booked"].to_numpy(),
        "contra_revenue": np.where(late, 0, both["contra_revenue"].to_numpy()),
        "contra_revenue_functional": np.where(late, 0, both["contra_revenue_functional"]),
    })  # fmt: skip
    fix = pd.DataFrame({
        "src": src, "month": close_m[src] + 1, "correction": True, "original_month": mon,
        "recognized": both["recognized"].to_numpy() - both["recognized_booked"].to_numpy(),
        "recognized_functional": both["recognized_functional"].to_numpy()
        - both["recognized_functional_booked"].to_numpy(),
        "contra_revenue": np.where(late, both["contra_revenue"].to_numpy(), 0),
        "contra_revenue_functional": np.where(late, both["contra_revenue_functional"], 0),
    })  # fmt: skip
    fix = fix[(fix[list(VALUES)] != 0).any(axis=1)]
    return pd.concat([open_rows, keep, fix], ignore_index=True), sources
