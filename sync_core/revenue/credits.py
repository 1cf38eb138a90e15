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
- Prospective credits (Chargebee's "future discount"): a credit note line with a service
  period ``[period_start, period_end)`` reduces its invoice line over that period only, by
  the entity's method (:func:`spread_credits`), so it books no contra revenue. The period
  must name an invoice line, lie inside that line's service period and start no earlier
  than the note's month (:func:`credit_period_problems`); otherwise the note is quarantined.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import group_starts, largest_remainder
from sync_core.revenue.periods import instants_ns, is_nat, month_of_ns
from sync_core.revenue.schedule import Weights, ratable_weights


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


# ---------------------------------------------------------------------- prospective credits


def credit_period_problems(note_lines, note_month, line_start, line_end) -> dict[str, np.ndarray]:
    """Rule -> mask of credit note lines whose service period cannot be used.

    ``note_lines``: period_start, period_end, invoice_line_key; ``note_month``: the month
    index of each line's note; ``line_start`` / ``line_end``: the credited invoice line's
    service period (ns, NaT where the line is unknown).
    """
    ps, pe = instants_ns(note_lines["period_start"]), instants_ns(note_lines["period_end"])
    has_s, has_e = ~is_nat(ps), ~is_nat(pe)
    incomplete = (has_s != has_e) | (has_s & has_e & (pe <= ps))
    given = has_s & has_e & ~incomplete
    named = note_lines["invoice_line_key"].notna().to_numpy()
    outside = given & (~named | is_nat(line_start) | (ps < line_start) | (pe > line_end))
    past = given & ~outside & (month_of_ns(np.where(given, ps, 0)) < note_month)
    return {"credit_period_complete": incomplete, "credit_period_within_line": outside,
            "credit_period_not_past": past}  # fmt: skip


def spread_credits(amounts, line_of, w: Weights, start_ns, end_ns, codes):
    """Split each credit ``amounts[c]`` of line ``line_of[c]`` over months.

    A credit with a service period (``start_ns``/``end_ns`` not NaT) follows that period by
    the method ``codes[c]``; the others follow their line's weights ``w``. Returns (credit
    per row, month per row, amount per row, rows per credit), rows contiguous per credit in
    credit order, months ascending.
    """
    n = len(amounts)
    pro = ~is_nat(start_ns)
    reg = np.flatnonzero(~pro)
    owner_r, month_r, rec_r = spread_over_line(
        amounts[reg], line_of[reg], group_starts(w.counts), w.counts, w.months, w.weights,
        w.totals,
    )  # fmt: skip
    parts = [(reg[owner_r], month_r, rec_r)]
    if pro.any():
        sel = np.flatnonzero(pro)
        pw = ratable_weights(start_ns[sel], end_ns[sel], codes[sel])
        rec_p = largest_remainder(amounts[sel], pw.counts, pw.weights, pw.totals)
        parts.append((sel[pw.row_line], pw.months, rec_p))
    owner = np.concatenate([p[0] for p in parts])
    month = np.concatenate([p[1] for p in parts])
    rec = np.concatenate([p[2] for p in parts])
    order = np.lexsort((month, owner))
    owner, month, rec = owner[order], month[order], rec[order]
    return owner, month, rec, np.bincount(owner, minlength=n).astype(np.int64)


def resolve_all_credits(notes, note_lines, lines) -> tuple[pd.DataFrame, pd.Index]:
    """:func:`resolve_credits` for the lines without a service period, plus one credit per
    prospective line (``ps_ns`` / ``pe_ns`` set, from the input checks). Columns:
    credit_note_id, line_key, amount, source_id (``<note>/<line_key>``, a prospective one
    ``<note>/<line_key>/<credit note line>``), ps_ns, pe_ns (NaT for the others)."""
    nat = np.iinfo(np.int64).min
    ps = note_lines["ps_ns"] if "ps_ns" in note_lines else pd.Series(nat, index=note_lines.index)
    is_pro = (ps != nat).to_numpy()
    regular, pro = note_lines[~is_pro], note_lines[is_pro]
    # a note whose lines are all prospective is not a note "without lines"
    only_pro = set(pro["credit_note_id"]) - set(regular["credit_note_id"])
    credits, stuck = resolve_credits(notes[~notes["credit_note_id"].isin(only_pro)], regular,
                                     lines)  # fmt: skip
    credits = credits.assign(source_id=credits["credit_note_id"] + "/" + credits["line_key"],
                             ps_ns=nat, pe_ns=nat)  # fmt: skip
    pro = pro[pro["amount"] != 0]
    extra = pd.DataFrame({
        "credit_note_id": pro["credit_note_id"].to_numpy(),
        "line_key": pro["invoice_line_key"].to_numpy(),
        "amount": pro["amount"].to_numpy(np.int64),
        "source_id": (pro["credit_note_id"] + "/" + pro["invoice_line_key"] + "/"
                      + pro["credit_note_line_id"]).to_numpy(),
        "ps_ns": pro["ps_ns"].to_numpy(np.int64), "pe_ns": pro["pe_ns"].to_numpy(np.int64),
    })  # fmt: skip
    return pd.concat([credits, extra], ignore_index=True), stuck
