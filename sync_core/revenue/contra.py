"""Refunds without a credit note, disputes and uncollectible invoices as schedule sources.

The rule (Stripe Revenue Recognition: methodology/refunds-and-disputes, examples/contra):
when a payment is refunded, disputed (its funds withdrawn) or its invoice is marked
uncollectible, in the month ``M`` of that event

- revenue already recognized (the months before ``M``) is offset by contra revenue in
  ``M``: ``Refunds``, ``Disputes`` or ``BadDebt``;
- deferred revenue not yet recognized is cleared in ``M``;
- nothing more is recognized for what was taken back.

A partial refund or dispute works proportionally: its net amount (the refund less its share
of the invoice's tax, ``gross x tax / total``, half-even) is spread over the invoice's lines in
proportion to their amounts, then over each line's own months, exactly as a credit note
without lines (:mod:`~sync_core.revenue.credits`). Stripe's example: 9 USD refunded on Feb 1
of a 90 USD Jan-Mar invoice takes 3.10 (10 % of January's 31) to ``Refunds`` and 10 % off every
later month (25.20 in February, 27.90 in March).

An uncollectible invoice cancels everything the invoice still has (its net less its credit
notes, refunds and disputes): the later months in full, but of the months already earned
only the unpaid share ``E x (D - tax written off) / N`` goes to ``BadDebt`` (``D`` the amount
due when marked, ``N`` the net still on the invoice). The paid share of the cleared deferred
revenue is a gain (``Recoverables``, see :mod:`~sync_core.revenue.contra_journals`). Stripe's
example: 31 USD from Jan 15, 11 USD paid, marked on Feb 15: ``BadDebt`` 11 (17 x 20 / 31),
``Recoverables`` 5.

Each event is one source per invoice line it touches (``source_type`` ``refund``,
``dispute`` or ``uncollectible``; ``document_id`` the payment, dispute or invoice id),
billing the (negative) amount it removes in its own month, like a credit note.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import convert_half_even, group_starts, largest_remainder
from sync_core.revenue.credits import resolve_credits, spread_over_line
from sync_core.revenue.periods import timestamps_to_months

REFUND, DISPUTE, UNCOLLECTIBLE = "refund", "dispute", "uncollectible"
CONTRA_SOURCES = (REFUND, DISPUTE, UNCOLLECTIBLE)
CONTRA_ACCOUNT = {REFUND: "Refunds", DISPUTE: "Disputes", UNCOLLECTIBLE: "BadDebt"}

# one row per event, built by sync_core.revenue.contra_inputs
EVENT_COLUMNS = [
    "event_id", "source_type", "invoice_id", "entity_id", "period", "gross", "net", "tax",
    "currency", "fx_rate", "earned_num", "earned_den",
]  # fmt: skip


def empty_events() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})
    for c in ("gross", "net", "tax", "earned_num", "earned_den"):
        out[c] = pd.Series(dtype=np.int64)
    out["period"] = pd.Series(dtype="datetime64[ns, UTC]")
    return out


def split_tax(gross: np.ndarray, tax: np.ndarray, total: np.ndarray) -> np.ndarray:
    """The tax share of ``gross`` taken back from an invoice: ``gross x tax / total``,
    half-even (0 when the invoice has no positive total)."""
    gross, tax, total = (np.asarray(a, dtype=np.int64) for a in (gross, tax, total))
    ok = total > 0
    out = np.zeros(len(gross), dtype=np.int64)
    if ok.any():
        out[ok] = convert_half_even(gross[ok], tax[ok], total[ok])
    return out


def contra_sources(events: pd.DataFrame, lines: pd.DataFrame, w, num, den, n_src: int):
    """``(sources, rows)`` of the events, sources numbered from ``n_src`` (``None`` when there
    are none). ``lines``, ``w``, ``num``, ``den``: the engine's line table, line weights and
    conversion terms (:func:`sync_core.revenue.engine.build_sources`)."""
    from sync_core.revenue.engine import _functional, _rows, _source_frame

    if events is None or events.empty:
        return None
    spread = _spread_events(events, lines)
    if spread.empty:
        return None
    ev = events.set_index("event_id")
    line_idx = pd.Index(lines["line_key"]).get_indexer(spread["line_key"])
    x = spread["amount"].to_numpy(np.int64)
    doc = timestamps_to_months(spread["event_id"].map(ev["period"]))
    owner, month, rec = spread_over_line(
        -x, line_idx, group_starts(w.counts), w.counts, w.months, w.weights, w.totals
    )
    early = month < doc[owner]
    rec = _scale_earned(rec, owner, early, spread, ev)
    billed = np.bincount(owner, weights=rec, minlength=len(spread)).astype(np.int64)
    target = convert_half_even(billed, num[line_idx], den[line_idx])
    rec_f = _functional(rec, owner, num[line_idx], den[line_idx], target, w.counts[line_idx])
    rows = _rows(owner + n_src, np.maximum(month, doc[owner]), rec, rec_f,
                 np.where(early, rec, 0), np.where(early, rec_f, 0))  # fmt: skip
    s_lines = lines.iloc[line_idx].reset_index(drop=True)
    ids = spread["event_id"] + "/" + spread["line_key"]
    sources = _source_frame(
        s_lines, spread["event_id"].map(ev["source_type"]).to_numpy(), ids, spread["event_id"],
        None, spread["event_id"].map(ev["period"]), billed, target,
    )  # fmt: skip
    return sources, rows


def _spread_events(events: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """``(event_id, line_key, amount)``: each event's net over its invoice's lines, in
    proportion to their amounts (a credit note without lines)."""
    as_notes = pd.DataFrame(
        {
            "credit_note_id": events["event_id"].astype(object).to_numpy(),
            "invoice_id": events["invoice_id"].to_numpy(),
            "subtotal": events["net"].to_numpy(np.int64),
        }
    )
    no_lines = pd.DataFrame(
        {
            "credit_note_id": pd.Series(dtype=object),
            "invoice_line_key": pd.Series(dtype=object),
            "amount": pd.Series(dtype=np.int64),
        }
    )
    spread, _ = resolve_credits(as_notes, no_lines, lines)  # nothing to spread: held upstream
    return spread.rename(columns={"credit_note_id": "event_id"})


def _scale_earned(rec, owner, early, spread, ev) -> np.ndarray:
    """An uncollectible invoice offsets only the unpaid share of what was earned: the earned
    rows of each event are scaled by ``earned_num / earned_den`` (half-even on the event's
    total, then split back over its rows by largest remainder)."""
    num = spread["event_id"].map(ev["earned_num"]).to_numpy(np.int64)[owner]
    den = spread["event_id"].map(ev["earned_den"]).to_numpy(np.int64)[owner]
    sel = np.flatnonzero(early & (num != den))
    if sel.size == 0:
        return rec
    event_code = pd.factorize(spread["event_id"].to_numpy()[owner[sel]])[0]
    order = np.argsort(event_code, kind="stable")
    sel, event_code = sel[order], event_code[order]
    counts = np.bincount(event_code)
    earned = np.bincount(event_code, weights=rec[sel], minlength=len(counts)).astype(np.int64)
    first = group_starts(counts)
    kept = -convert_half_even(-earned, num[sel][first], den[sel][first])
    out = rec.copy()
    out[sel] = largest_remainder(kept, counts, np.abs(rec[sel]))
    return out
