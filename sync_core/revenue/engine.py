"""``recognize``: canonical billing documents -> revenue schedule, accounting lines, exceptions.

Pipeline (all vectorized over the batch):

1. :mod:`~sync_core.revenue.inputs` checks the frames; what cannot be recognized goes to
   quarantine with its rule, the rest goes on.
2. Every valid invoice line becomes a source with weights per month: its service period by
   the legal entity's method (:func:`~sync_core.revenue.schedule.ratable_weights`), or, for a
   usage line, the quantities of its subscription item's usage events inside its period,
   month by month (ratable when it has none). The line amount is split over the weights by
   largest remainder.
3. Credit notes become sources on the lines they reduce
   (:mod:`~sync_core.revenue.credits`); voided invoices and credit notes add a void source
   that reverses their original.
4. Functional amounts: each row converted at the invoice's rate (exact decimal, half-even),
   then nudged by single units so each source sums to its converted total.
5. :func:`~sync_core.revenue.balances.complete` adds the monthly rows, balances and flows;
   :mod:`~sync_core.revenue.accounting` writes the journal lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sync_core.revenue.accounting import accounting_lines
from sync_core.revenue.allocation import (
    conversion_terms,
    convert_half_even,
    fix_group_totals,
    largest_remainder,
)
from sync_core.revenue.balances import (
    CREDIT_NOTE,
    CREDIT_NOTE_VOID,
    INVOICE_LINE,
    INVOICE_VOID,
    complete,
)
from sync_core.revenue.closing import apply_closed_periods
from sync_core.revenue.contra import contra_sources
from sync_core.revenue.credits import resolve_all_credits, spread_credits, void_rows
from sync_core.revenue.input_rules import _exceptions
from sync_core.revenue.inputs import Checked, check_inputs
from sync_core.revenue.periods import month_of_ns, months_to_timestamps, timestamps_to_months
from sync_core.revenue.schedule import Weights, method_codes, ratable_weights


@dataclass(frozen=True)
class RecognitionResult:
    schedule: pd.DataFrame  # one row per (source line, recognition month); see balances
    accounting_lines: pd.DataFrame  # business-event journal lines; see accounting
    quarantine: pd.DataFrame  # exception rows: what could not be recognized, and why


def recognize(
    invoices: pd.DataFrame,
    invoice_lines: pd.DataFrame,
    credit_notes: pd.DataFrame,
    credit_note_lines: pd.DataFrame,
    usage_events: pd.DataFrame,
    legal_entities: pd.DataFrame,
    payments: pd.DataFrame | None = None,
    *,
    disputes: pd.DataFrame | None = None,
    closed_through: dict[str, pd.Timestamp] | None = None,
    booked: pd.DataFrame | None = None,
) -> RecognitionResult:
    """Recognize a batch of canonical documents.

    ``payments`` (optional) adds the payment and refund journals; ``disputes`` (optional)
    the dispute journals (:mod:`~sync_core.revenue.contra`). ``closed_through`` (entity
    -> last closed month) moves changes to closed months into the first open month as
    corrections before the journals are written (see :func:`apply_closed_periods`).
    """
    chk = check_inputs(
        invoices, invoice_lines, credit_notes, credit_note_lines, usage_events,
        legal_entities, payments, disputes,
    )  # fmt: skip
    sources, rows = build_sources(chk)
    schedule = complete(sources, rows)
    if closed_through:
        schedule = apply_closed_periods(schedule, closed_through, booked)
    lines = accounting_lines(schedule, chk.invoices, chk.credit_notes, chk.payments,
                             contra=chk.contra, disputes=chk.disputes)  # fmt: skip
    return RecognitionResult(schedule, lines, chk.quarantine())


# ---------------------------------------------------------------------------------------------


def build_sources(chk: Checked) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sources, rows) for :func:`complete`, from checked inputs."""
    inv = chk.invoices.set_index("invoice_id")
    lines = chk.lines.copy()
    for col in ("entity_id", "currency", "functional_currency", "fx_rate", "method", "period",
                "is_void", "voided_ns"):  # fmt: skip
        lines["inv_" + col] = lines["invoice_id"].map(inv[col])
    n_lines = len(lines)
    num, den = conversion_terms(
        lines["inv_fx_rate"], lines["currency"], lines["inv_functional_currency"]
    )
    amount = lines["amount"].to_numpy(np.int64)
    w = _line_weights(lines, chk.usage)
    rec = largest_remainder(amount, w.counts, w.weights, w.totals)
    owner = w.row_line
    target = convert_half_even(amount, num, den)
    rec_f = _functional(rec, owner, num, den, target, w.counts)

    parts_src = [_source_frame(
        lines, INVOICE_LINE, lines["line_key"], lines["invoice_id"], None,
        lines["inv_period"], amount, target,
    )]  # fmt: skip
    parts_rows = [_rows(owner, w.months, rec, rec_f)]
    n_src = n_lines

    # credit notes: one source per (note, line)
    credits, stuck = resolve_all_credits(chk.credit_notes, chk.credit_lines, lines)
    if len(stuck):
        notes = chk.credit_notes
        chk.exceptions.append(_exceptions(
            notes, notes["credit_note_id"].isin(stuck).to_numpy(), "credit_notes",
            "lines_to_credit", "the invoice has no line to spread the credit over",
        ))  # fmt: skip
    cn = chk.credit_notes.set_index("credit_note_id")
    line_idx = pd.Index(lines["line_key"]).get_indexer(credits["line_key"])
    x = credits["amount"].to_numpy(np.int64)
    n_cr = len(credits)
    c_doc = timestamps_to_months(credits["credit_note_id"].map(cn["period"]))
    codes = method_codes(lines["inv_method"].fillna("day").to_numpy(object), n_lines)
    c_owner, c_month, c_rec, c_counts = spread_credits(
        -x, line_idx, w, credits["ps_ns"].to_numpy(np.int64),
        credits["pe_ns"].to_numpy(np.int64), codes[line_idx],
    )  # fmt: skip
    c_target = -convert_half_even(x, num[line_idx], den[line_idx])
    c_rec_f = _functional(c_rec, c_owner, num[line_idx], den[line_idx], c_target, c_counts)
    early = c_month < c_doc[c_owner]  # service already delivered: earned, in the note's month
    c_rows = _rows(c_owner + n_src, np.maximum(c_month, c_doc[c_owner]), c_rec, c_rec_f,
                   np.where(early, c_rec, 0), np.where(early, c_rec_f, 0))  # fmt: skip
    c_lines = lines.iloc[line_idx].reset_index(drop=True)
    c_ids = credits["source_id"]
    parts_src.append(_source_frame(
        c_lines, CREDIT_NOTE, c_ids, credits["credit_note_id"], None,
        credits["credit_note_id"].map(cn["period"]), -x, c_target,
    ))  # fmt: skip
    parts_rows.append(c_rows)
    cr_start = n_src
    n_src += n_cr

    # voided invoices: reverse every line of the invoice from the void month on
    void_lines = np.flatnonzero(lines["inv_is_void"].to_numpy(bool))
    if void_lines.size:
        v_month = month_of_ns(lines["inv_voided_ns"].to_numpy(np.int64))
        sel = np.isin(owner, void_lines)
        new_id = np.full(n_lines, -1, dtype=np.int64)
        new_id[void_lines] = n_src + np.arange(void_lines.size)
        m, r, rf = void_rows(w.months[sel], v_month[owner[sel]], rec[sel], rec_f[sel])
        parts_rows.append(_rows(new_id[owner[sel]], m, r, rf))
        vl = lines.iloc[void_lines].reset_index(drop=True)
        parts_src.append(_source_frame(
            vl, INVOICE_VOID, vl["line_key"] + "/void", vl["invoice_id"], vl["line_key"],
            months_to_timestamps(v_month[void_lines]), -amount[void_lines],
            -target[void_lines],
        ))  # fmt: skip
        n_src += void_lines.size

    # voided credit notes: reverse the note's rows, the earned part in the void month
    c_void = credits["credit_note_id"].map(cn["status"]).eq("void").to_numpy()
    if c_void.any():
        vc = np.flatnonzero(c_void)
        w_month = month_of_ns(credits["credit_note_id"].map(cn["voided_ns"]).to_numpy(np.int64))
        cr = c_rows
        sel = np.isin(cr["src"].to_numpy() - cr_start, vc)
        own = cr["src"].to_numpy()[sel] - cr_start
        new_id = np.full(n_cr, -1, dtype=np.int64)
        new_id[vc] = n_src + np.arange(vc.size)
        m, r, rf, k, kf = void_rows(
            cr["month"].to_numpy()[sel], w_month[own],
            *(cr[c].to_numpy()[sel] for c in ("recognized", "recognized_functional",
                                               "contra_revenue", "contra_revenue_functional")),
        )  # fmt: skip
        parts_rows.append(_rows(new_id[own], m, r, rf, k, kf))
        vcl = c_lines.iloc[vc].reset_index(drop=True)
        parts_src.append(_source_frame(
            vcl, CREDIT_NOTE_VOID, c_ids.iloc[vc].reset_index(drop=True) + "/void",
            credits["credit_note_id"].iloc[vc].reset_index(drop=True),
            c_ids.iloc[vc].reset_index(drop=True), months_to_timestamps(w_month[vc]),
            x[vc], -c_target[vc],
        ))  # fmt: skip
        n_src += vc.size

    # refunds without a credit note, disputes, uncollectible invoices
    contra = contra_sources(chk.contra, lines, w, num, den, n_src)
    if contra is not None:
        parts_src.append(contra[0])
        parts_rows.append(contra[1])
        n_src += len(contra[0])

    sources = pd.concat(parts_src, ignore_index=True)
    rows = pd.concat(parts_rows, ignore_index=True)
    return sources, rows


def _line_weights(lines: pd.DataFrame, usage: pd.DataFrame) -> Weights:
    """Weights per (line, month): usage quantities for usage lines with events in their
    period, the service period by the entity's method otherwise."""
    n = len(lines)
    start = lines["start_ns"].to_numpy(np.int64)
    end = lines["end_ns"].to_numpy(np.int64)
    codes = method_codes(lines["inv_method"].fillna("day").to_numpy(object), n)
    ratable = ratable_weights(start, end, codes)
    is_usage = (lines["line_type"] == "usage").to_numpy() & lines["subscription_item_id"].notna()
    if not is_usage.any() or usage.empty:
        return ratable
    ul = pd.DataFrame(
        {
            "line": np.flatnonzero(is_usage),
            "item": lines["subscription_item_id"].to_numpy()[is_usage],
        }
    )
    ev = ul.merge(usage, on="item")
    ev = ev[(ev["ts"] >= start[ev["line"]]) & (ev["ts"] < end[ev["line"]]) & (ev["quantity"] > 0)]
    if ev.empty:
        return ratable
    ev = ev.assign(month=month_of_ns(ev["ts"].to_numpy(np.int64)))
    q = ev.groupby(["line", "month"], sort=True)["quantity"].sum().reset_index()
    by_usage = np.zeros(n, dtype=bool)
    by_usage[q["line"].unique()] = True
    # rows: ratable rows of the other lines + usage rows, sorted by (line, month)
    r_line = ratable.row_line
    keep = ~by_usage[r_line]
    line_all = np.concatenate([r_line[keep], q["line"].to_numpy(np.int64)])
    month_all = np.concatenate([ratable.months[keep], q["month"].to_numpy(np.int64)])
    weight_all = np.concatenate([ratable.weights[keep], q["quantity"].to_numpy(np.int64)])
    order = np.lexsort((month_all, line_all))
    line_all, month_all, weight_all = line_all[order], month_all[order], weight_all[order]
    counts = np.bincount(line_all, minlength=n)
    totals = np.zeros(n, dtype=np.int64)
    np.add.at(totals, line_all, weight_all)
    return Weights(counts, month_all, weight_all, totals)


def _functional(rec, owner, num, den, target, counts) -> np.ndarray:
    """Rows converted half-even at their source's rate, then fixed to sum to ``target``."""
    n_row_num, n_row_den = num[owner], den[owner]
    parts = convert_half_even(rec, n_row_num, n_row_den)
    return fix_group_totals(parts, rec, n_row_num, n_row_den, target, counts)


def _rows(src, month, rec, rec_f, contra=None, contra_f=None) -> pd.DataFrame:
    zeros = np.zeros(len(rec), dtype=np.int64)
    return pd.DataFrame(
        {
            "src": np.asarray(src, dtype=np.int64),
            "month": np.asarray(month, dtype=np.int64),
            "recognized": rec,
            "recognized_functional": rec_f,
            "contra_revenue": zeros if contra is None else contra,
            "contra_revenue_functional": zeros if contra_f is None else contra_f,
            "correction": False,
            "original_month": -1,
        }
    )


def _source_frame(lines, source_type, source_id, document_id, reverses, document_period,
                  billed, billed_f) -> pd.DataFrame:  # fmt: skip
    """Sources built from (a selection of) line records, one per row of ``lines``."""
    n = len(lines)
    return pd.DataFrame(
        {
            "entity_id": lines["inv_entity_id"].to_numpy(),
            "source_type": source_type,
            "source_id": np.asarray(source_id, dtype=object),
            "document_id": np.asarray(document_id, dtype=object),
            "invoice_id": lines["invoice_id"].to_numpy(),
            "line_key": lines["line_key"].to_numpy(),
            "reverses": np.asarray(reverses, dtype=object)
            if reverses is not None
            else np.full(n, None, dtype=object),
            "currency": lines["currency"].to_numpy(),
            "functional_currency": lines["inv_functional_currency"].to_numpy(),
            "fx_rate": lines["inv_fx_rate"].to_numpy(),
            "document_period": pd.to_datetime(
                pd.Series(document_period).reset_index(drop=True), utc=True
            ).dt.as_unit("ns"),
            "billed_total": np.asarray(billed, dtype=np.int64),
            "billed_total_functional": np.asarray(billed_f, dtype=np.int64),
        }
    )
