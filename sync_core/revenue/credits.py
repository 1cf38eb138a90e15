"""Credit notes and voids as schedule sources.

- :func:`resolve_credits`: which invoice line each credit note reduces, and by how much. A
  credit note line naming an invoice line reduces that line; a line without one, and a note
  without lines (its subtotal), is spread over the invoice's lines in proportion to their
  amounts (positive lines; all lines by absolute amount if none is positive), by largest
  remainder.
- :func:`spread_over_line`: a credit of ``x`` on a line follows the line's own weights (days,
  milliseconds, months or usage), so it reduces each month in proportion; the months before
  the note's month are *earned* already, so their share is recognized in the note's month
  (contra-revenue), the rest reduces the months still to come.
- :func:`void_rows`: a void reverses its original's rows: what was recognized up to the void
  month is reversed in the void month, the later months are cancelled month by month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import group_starts, largest_remainder


def resolve_credits(
    notes: pd.DataFrame, note_lines: pd.DataFrame, lines: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Index]:
    """``(credit_note_id, line_key, amount)`` per credited line, and the notes that have
    nothing to credit (no line to spread a non-zero amount over).

    ``notes``: credit_note_id, invoice_id, subtotal; ``note_lines``: credit_note_id,
    invoice_line_key, amount; ``lines``: line_key, invoice_id, amount.
    """
    named = note_lines[note_lines["invoice_line_key"].notna()]
    explicit = pd.DataFrame(
        {
            "credit_note_id": named["credit_note_id"].to_numpy(),
            "line_key": named["invoice_line_key"].to_numpy(),
            "amount": named["amount"].to_numpy(np.int64),
        }
    )
    loose = note_lines[note_lines["invoice_line_key"].isna()]
    no_lines = notes[~notes["credit_note_id"].isin(note_lines["credit_note_id"])]
    inv_of = notes.set_index("credit_note_id")["invoice_id"]
    items = pd.DataFrame(
        {
            "credit_note_id": np.concatenate(
                [loose["credit_note_id"].to_numpy(), no_lines["credit_note_id"].to_numpy()]
            ),
            "amount": np.concatenate(
                [loose["amount"].to_numpy(np.int64), no_lines["subtotal"].to_numpy(np.int64)]
            ),
        }
    )
    items = items[items["amount"] != 0].reset_index(drop=True)
    if items.empty:
        out = explicit.groupby(["credit_note_id", "line_key"], as_index=False, sort=True)[
            "amount"
        ].sum()
        return out[out["amount"] != 0].reset_index(drop=True), pd.Index([])
    items["credit_note_id"] = items["credit_note_id"].astype(object)
    items["item"] = np.arange(len(items))
    items["invoice_id"] = items["credit_note_id"].map(inv_of)
    targets = items.merge(
        lines[["invoice_id", "line_key", "amount"]].rename(columns={"amount": "line_amount"}),
        on="invoice_id",
        how="left",
    ).sort_values(["item", "line_key"], kind="stable")
    la = targets["line_amount"].fillna(0).to_numpy(np.int64)
    item_pos = pd.Series(np.maximum(la, 0)).groupby(targets["item"].to_numpy()).transform("sum")
    weights = np.where(item_pos.to_numpy() > 0, np.maximum(la, 0), np.abs(la))
    counts = np.bincount(targets["item"].to_numpy(), minlength=len(items))
    totals = np.zeros(len(items), dtype=np.int64)
    np.add.at(totals, targets["item"].to_numpy(), weights)
    empty = totals <= 0
    stuck = pd.Index(items.loc[empty, "credit_note_id"].unique())
    amounts = np.where(empty, 0, items["amount"].to_numpy(np.int64))
    parts = largest_remainder(amounts, counts, weights, totals)
    spread = pd.DataFrame(
        {
            "credit_note_id": targets["credit_note_id"].to_numpy(),
            "line_key": targets["line_key"].to_numpy(),
            "amount": parts,
        }
    )
    spread = spread[spread["line_key"].notna()]
    out = pd.concat([explicit, spread], ignore_index=True)
    out = out[~out["credit_note_id"].isin(stuck)]
    out = out.groupby(["credit_note_id", "line_key"], as_index=False, sort=True)["amount"].sum()
    return out[out["amount"] != 0].reset_index(drop=True), stuck


def spread_over_line(
    amounts: np.ndarray,
    line_of: np.ndarray,
    w_starts: np.ndarray,
    w_counts: np.ndarray,
    w_months: np.ndarray,
    w_weights: np.ndarray,
    w_totals: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``amounts[c]`` over the weight rows of line ``line_of[c]``.

    Returns (credit index per row, month per row, amount per row), rows contiguous per
    credit in month order.
    """
    counts = w_counts[line_of]
    rows = np.repeat(w_starts[line_of], counts) + _ranges(counts)
    parts = largest_remainder(amounts, counts, w_weights[rows], w_totals[line_of])
    owner = np.repeat(np.arange(len(amounts), dtype=np.int64), counts)
    return owner, w_months[rows], parts


def void_rows(months: np.ndarray, void_month: np.ndarray, *values: np.ndarray):
    """The rows of a void: the original's rows negated, months before the void month moved
    to the void month (``void_month`` per row)."""
    return (np.maximum(months, void_month), *(-v for v in values))


def _ranges(counts: np.ndarray) -> np.ndarray:
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(group_starts(counts), counts)
