"""Balances of a schedule: cumulative amounts, deferred revenue, unbilled AR, and the flows
that move them (what each document books, what each month's revenue releases).

A *source* is one schedule line: an invoice line, a credit note's share of a line, or the
void of either. Each source has a document month ``D`` (finalization, issue or void) where it
bills ``B`` (a credit or a void bills a negative amount) and a recognized amount per month.

Balances (per source, then netted):

- a source's net position after month ``p`` is ``cumulative billed - cumulative recognized``;
- the positions of the sources of one invoice line are added up (a credit note reduces the
  line's deferred revenue); the lines of one invoice are then netted, so a proration credit
  (a negative line) reduces the unbilled AR of the line it replaces;
- per invoice and month the position is **deferred revenue** when positive (billed ahead of
  revenue) and **unbilled AR** when negative (revenue ahead of billing): ``deferred =
  max(billed - recognized, 0)``, ``unbilled = max(recognized - billed, 0)``. It is split
  back over the invoice's lines in proportion to the lines on the same side (largest
  remainder), so a line's balances are never negative and add up to the invoice's;
- before the invoice's document month nothing is billed, so the whole position is
  **unbilled AR**, negative when the revenue is a net credit not billed yet (a downgrade's
  proration credit billed on the next invoice reduces unbilled AR, as Stripe shows it,
  never deferred revenue); billing then moves the net earned before it off unbilled AR,
  whatever its sign.

Both balances sit on the row of the line's ``invoice_line`` source (the *carrier*); the rows
of credit notes and voids carry zeros there, so sums over rows are sums over lines.

Flows, so that ``previous + booked - released == balance`` per line and month:

- ``deferred_booked`` / ``unbilled_booked`` on a document's own row: what its journal puts
  on the accounts (invoice: the net not yet earned to deferred, the net earned before billing
  off unbilled; credit note: the unearned part off deferred; void: the reverse of the
  original);
- ``deferred_released`` / ``unbilled_accrued`` on carrier rows: what the month's revenue
  journal takes from deferred revenue or adds to unbilled AR; the two add up, per invoice and
  month, to the revenue recognized minus the contra-revenue booked by credit notes.

Every amount exists in the transaction currency and in the functional currency, computed
the same way on each.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import group_starts, largest_remainder
from sync_core.revenue.contra import CONTRA_SOURCES  # refund, dispute, uncollectible
from sync_core.revenue.periods import months_to_timestamps, timestamps_to_months

INVOICE_LINE, CREDIT_NOTE = "invoice_line", "credit_note"
INVOICE_VOID, CREDIT_NOTE_VOID = "invoice_void", "credit_note_void"
SOURCE_TYPES = (INVOICE_LINE, CREDIT_NOTE, INVOICE_VOID, CREDIT_NOTE_VOID, *CONTRA_SOURCES)
VOIDS = {INVOICE_VOID: INVOICE_LINE, CREDIT_NOTE_VOID: CREDIT_NOTE}

SOURCE_COLUMNS = [
    "entity_id", "source_type", "source_id", "document_id", "invoice_id", "line_key",
    "reverses", "currency", "functional_currency", "fx_rate", "document_period",
]  # fmt: skip
SCHEDULE_COLUMNS = SOURCE_COLUMNS + [
    "period", "recognized", "recognized_functional", "contra_revenue",
    "contra_revenue_functional", "billed", "billed_functional", "cumulative_recognized",
    "cumulative_billed", "deferred_balance", "unbilled_balance", "deferred_balance_functional",
    "unbilled_balance_functional", "deferred_booked", "unbilled_booked",
    "deferred_booked_functional", "unbilled_booked_functional", "deferred_released",
    "unbilled_accrued", "deferred_released_functional", "unbilled_accrued_functional",
    "correction", "original_period",
]  # fmt: skip
VALUES = ("recognized", "recognized_functional", "contra_revenue", "contra_revenue_functional")


def complete(sources: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The full schedule from its sources and recognized rows.

    ``sources``: one row per source with ``SOURCE_COLUMNS`` plus ``billed_total`` and
    ``billed_total_functional``; ``reverses`` names the source a void reverses.
    ``rows``: ``src`` (position in ``sources``), ``month`` (month index), the ``VALUES``
    columns, ``correction`` and ``original_month`` (-1 when not a correction). Rows of the
    same source and month that are not corrections are added up; every month between a
    source's first and last month (its document month included) gets a row.
    """
    sources = sources.reset_index(drop=True)
    n_src = len(sources)
    if n_src == 0:
        return empty_schedule()
    doc_m = timestamps_to_months(sources["document_period"])
    stype = sources["source_type"].to_numpy()
    line_code = pd.factorize(sources["line_key"])[0]
    inv_code = pd.factorize(sources["invoice_id"])[0]

    g = _grid(rows, doc_m, stype, line_code)
    src, month, corr = g["src"], g["month"], g["correction"]
    starts = g["starts"]
    d_row = (month == doc_m[src]) & ~corr
    billed = np.where(d_row, sources["billed_total"].to_numpy(np.int64)[src], 0)
    billed_f = np.where(d_row, sources["billed_total_functional"].to_numpy(np.int64)[src], 0)

    out = {"src": src, "month": month, "correction": corr, "original_month": g["original_month"]}
    for col in VALUES:
        out[col] = g[col]
    out["billed"], out["billed_functional"] = billed, billed_f
    out["cumulative_recognized"] = _seg_cumsum(g["recognized"], starts)
    out["cumulative_billed"] = _seg_cumsum(billed, starts)

    for suffix, r, b in (("", g["recognized"], billed),
                         ("_functional", g["recognized_functional"], billed_f)):  # fmt: skip
        contra = g["contra_revenue" + suffix]
        cols = _flows(
            src, month, corr, r, b, contra, doc_m, stype, line_code, inv_code,
            sources["reverses"].to_numpy(), sources["source_id"].to_numpy(), starts,
        )  # fmt: skip
        for name, values in cols.items():
            out[name + suffix] = values
    return _frame(sources, out)


def empty_schedule() -> pd.DataFrame:
    cols = {c: pd.Series(dtype="object") for c in SCHEDULE_COLUMNS}
    for c in ("document_period", "period", "original_period"):
        cols[c] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in SCHEDULE_COLUMNS[SCHEDULE_COLUMNS.index("recognized") : -2]:
        cols[c] = pd.Series(dtype=np.int64)
    cols["correction"] = pd.Series(dtype=bool)
    return pd.DataFrame(cols)


def _grid(rows: pd.DataFrame, doc_m, stype, line_code) -> dict[str, np.ndarray]:
    """Dense rows per source over its months, then its corrections; sorted."""
    n_src = len(doc_m)
    src = rows["src"].to_numpy(np.int64)
    month = rows["month"].to_numpy(np.int64)
    corr = rows["correction"].to_numpy(bool)
    first = doc_m.copy()
    last = doc_m.copy()
    if len(src):
        np.minimum.at(first, src, month)
        np.maximum.at(last, src, month)
    # an invoice line's rows cover the months of every source of the line
    is_line = stype == INVOICE_LINE
    lf = pd.Series(first).groupby(line_code).transform("min").to_numpy()
    ll = pd.Series(last).groupby(line_code).transform("max").to_numpy()
    first = np.where(is_line, lf, first)
    last = np.where(is_line, ll, last)
    counts = last - first + 1
    g_starts = group_starts(counts)
    n_grid = int(counts.sum())
    g_src = np.repeat(np.arange(n_src, dtype=np.int64), counts)
    g_month = np.arange(n_grid, dtype=np.int64) + np.repeat(first - g_starts, counts)
    grid = {"src": g_src, "month": g_month, "correction": np.zeros(n_grid, dtype=bool),
            "original_month": np.full(n_grid, -1, dtype=np.int64)}  # fmt: skip
    plain = ~corr
    pos = g_starts[src[plain]] + month[plain] - first[src[plain]]
    for col in VALUES:
        values = np.zeros(n_grid, dtype=np.int64)
        np.add.at(values, pos, rows[col].to_numpy(np.int64)[plain])
        grid[col] = values
    if corr.any():
        extra = {"src": src[corr], "month": month[corr], "correction": corr[corr],
                 "original_month": rows["original_month"].to_numpy(np.int64)[corr]}  # fmt: skip
        for col in VALUES:
            extra[col] = rows[col].to_numpy(np.int64)[corr]
        order = np.lexsort(
            (np.concatenate([grid["correction"], extra["correction"]]),
             np.concatenate([grid["month"], extra["month"]]),
             np.concatenate([grid["src"], extra["src"]]))
        )  # fmt: skip
        grid = {k: np.concatenate([grid[k], extra[k]])[order] for k in grid}
    counts = np.bincount(grid["src"], minlength=n_src)
    grid["starts"] = np.repeat(group_starts(counts), counts)  # first row of the row's source
    return grid


def _seg_cumsum(values: np.ndarray, row_starts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each source (``row_starts``: first row of the source)."""
    c = np.cumsum(values)
    before = np.concatenate([[0], c])[row_starts]
    return c - before


def _flows(src, month, corr, r, b, contra, doc_m, stype, line_code, inv_code, reverses,
           source_ids, starts) -> dict[str, np.ndarray]:  # fmt: skip
    """Balances and flows in one currency (see the module docstring)."""
    n = len(src)
    cum_r = _seg_cumsum(r, starts)
    cum_b = _seg_cumsum(b, starts)
    # the last row of each (source, month) holds the source's position at the month's end
    last = np.ones(n, dtype=bool)
    last[:-1] = (src[1:] != src[:-1]) | (month[1:] != month[:-1])
    pos = (cum_b - cum_r)[last]
    lm = pd.DataFrame({"line": line_code[src[last]], "inv": inv_code[src[last]],
                       "month": month[last], "pos": pos})  # fmt: skip
    by_line = lm.groupby(["line", "month"], sort=True).agg(inv=("inv", "first"),
                                                           pos=("pos", "sum"))  # fmt: skip
    # the month each line is billed (its invoice_line source's document month)
    is_line = stype == INVOICE_LINE
    line_doc = pd.Series(doc_m[is_line]).groupby(line_code[is_line]).min()
    billed = by_line.index.get_level_values(1).to_numpy() >= line_doc.reindex(
        by_line.index.get_level_values(0)).to_numpy()  # fmt: skip
    deferred, unbilled = _split_invoice_positions(by_line, billed)

    # what each document books, on its own row
    n_src = len(doc_m)
    before = month < doc_m[src]
    earned = np.zeros(n_src, dtype=np.int64)
    np.add.at(earned, src[before], r[before])
    contra_src = np.zeros(n_src, dtype=np.int64)
    np.add.at(contra_src, src, contra)
    billed_src = np.zeros(n_src, dtype=np.int64)
    np.add.at(billed_src, src, b)
    unbilled_part = earned  # the net earned before billing sits on unbilled AR until then
    def_booked = billed_src - unbilled_part - contra_src
    unb_booked = -unbilled_part
    is_void = np.isin(stype, list(VOIDS))
    if is_void.any():
        where = pd.Index(source_ids).get_indexer(reverses[is_void])
        def_booked[is_void] = -def_booked[where]
        unb_booked[is_void] = -unb_booked[where]
    d_row = (month == doc_m[src]) & ~corr
    deferred_booked = np.where(d_row, def_booked[src], 0)
    unbilled_booked = np.where(d_row, unb_booked[src], 0)

    # per line and month: balances and booked flows -> released / accrued
    booked = pd.DataFrame({"line": line_code[src], "month": month, "d": deferred_booked,
                           "u": unbilled_booked}).groupby(["line", "month"]).sum()  # fmt: skip
    booked = booked.reindex(by_line.index, fill_value=0)
    lines_idx = by_line.index.get_level_values(0).to_numpy()
    new_line = np.ones(len(lines_idx), dtype=bool)
    new_line[1:] = lines_idx[1:] != lines_idx[:-1]
    prev_def = np.where(new_line, 0, np.roll(deferred, 1))
    prev_unb = np.where(new_line, 0, np.roll(unbilled, 1))
    released = -((deferred - prev_def) - booked["d"].to_numpy())
    accrued = (unbilled - prev_unb) - booked["u"].to_numpy()

    # carrier rows: the invoice line's own row (not a correction) of each line and month
    carrier = np.flatnonzero(is_line[src] & ~corr)
    at = by_line.index.get_indexer(pd.MultiIndex.from_arrays(
        [line_code[src[carrier]], month[carrier]]))  # fmt: skip
    out = {
        name: np.zeros(n, dtype=np.int64)
        for name in (
            "deferred_balance",
            "unbilled_balance",
            "deferred_released",
            "unbilled_accrued",
        )
    }
    for name, values in (
        ("deferred_balance", deferred),
        ("unbilled_balance", unbilled),
        ("deferred_released", released),
        ("unbilled_accrued", accrued),
    ):
        out[name][carrier] = values[at]
    out["deferred_booked"] = deferred_booked
    out["unbilled_booked"] = unbilled_booked
    return out


def _split_invoice_positions(by_line: pd.DataFrame, billed: np.ndarray):
    """Net the line positions of each invoice and month; split back over the lines. Rows not
    ``billed`` yet (before the line's document month) keep the whole position on unbilled AR
    (negative for a net credit)."""
    deferred, unbilled = _split_netted(by_line)
    return np.where(billed, deferred, 0), np.where(billed, unbilled, unbilled - deferred)


def _split_netted(by_line: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    pos = by_line["pos"].to_numpy(np.int64)
    months = by_line.index.get_level_values(1).to_numpy()
    inv = by_line["inv"].to_numpy()
    deferred = np.maximum(pos, 0)
    unbilled = np.maximum(-pos, 0)
    key = pd.MultiIndex.from_arrays([inv, months])
    has_pos = pd.Series(pos > 0).groupby([inv, months]).transform("max").to_numpy(bool)
    has_neg = pd.Series(pos < 0).groupby([inv, months]).transform("max").to_numpy(bool)
    mixed = np.flatnonzero(has_pos & has_neg)
    if mixed.size == 0:
        return deferred, unbilled
    # mixed groups: sort them contiguously, split the net over the lines on its side
    codes = pd.factorize(key[mixed])[0]
    order = mixed[np.argsort(codes, kind="stable")]
    codes = np.sort(codes, kind="stable")
    counts = np.bincount(codes)
    net = np.zeros(len(counts), dtype=np.int64)
    np.add.at(net, codes, pos[order])
    side_pos = np.repeat(net >= 0, counts)
    weights = np.where(side_pos, np.maximum(pos[order], 0), np.maximum(-pos[order], 0))
    parts = largest_remainder(np.abs(net), counts, weights)
    deferred[order] = np.where(side_pos, parts, 0)
    unbilled[order] = np.where(side_pos, 0, parts)
    return deferred, unbilled


def _frame(sources: pd.DataFrame, out: dict[str, np.ndarray]) -> pd.DataFrame:
    src = out.pop("src")
    month = out.pop("month")
    original = out.pop("original_month")
    cols = {c: sources[c].to_numpy()[src] for c in SOURCE_COLUMNS if c != "document_period"}
    doc = pd.to_datetime(sources["document_period"], utc=True).dt.as_unit("ns")
    cols["document_period"] = doc.array.take(src)
    cols["period"] = months_to_timestamps(month).array
    for c in SCHEDULE_COLUMNS:
        if c in out:
            cols[c] = out[c]
    has = original >= 0
    orig = pd.Series(months_to_timestamps(np.where(has, original, month)).array)
    cols["original_period"] = orig.where(has).array
    return pd.DataFrame(cols)[SCHEDULE_COLUMNS]
