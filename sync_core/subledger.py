"""The subledger's journal view: the engine's accounting lines with who, what and when.

``sync_core.revenue.accounting`` writes business-event lines (event, document, account,
amounts). Before they are persisted per entity x month, each line gets:

- ``customer_id``: the customer of its document (an invoice, credit note or payment; a revenue
  line's document is its invoice), so a held customer holds every journal of the document;
- ``invoice_id``: the invoice the document settles or reduces (a payment's or a credit note's
  invoice, an invoice's own id), so dependent journals can wait for their invoice;
- ``transaction_date``: the day of the event (finalized, issued, voided, paid), or the month's
  last day for the month's revenue, as sent to the ERP (``tranDate``).
"""

from __future__ import annotations

import pandas as pd

DATE_OF_EVENT = {
    "invoice_finalized": ("invoices", "invoice_id", "finalized_at"),
    "invoice_void": ("invoices", "invoice_id", "voided_at"),
    "credit_note": ("credit_notes", "credit_note_id", "issued_at"),
    "credit_note_void": ("credit_notes", "credit_note_id", "voided_at"),
    "payment": ("payments", "payment_id", "created_at"),
    "refund": ("payments", "payment_id", "created_at"),
    "invoice_uncollectible": ("invoices", "invoice_id", "uncollectible_at"),
    "dispute": ("disputes", "dispute_id", "created_at"),
    "dispute_won": ("disputes", "dispute_id", "closed_at"),
}
_ID = {"invoices": "invoice_id", "credit_notes": "credit_note_id", "payments": "payment_id",
       "disputes": "dispute_id"}  # fmt: skip


def _indexed(frames: dict[str, pd.DataFrame], name: str, col: str) -> pd.Series:
    df = frames.get(name)
    if df is None or df.empty or col not in df:
        return pd.Series(dtype=object)
    return df.drop_duplicates(_ID[name], keep="last").set_index(_ID[name])[col]


def document_customers(frames: dict[str, pd.DataFrame]) -> pd.Series:
    """Document id (invoice, credit note, payment, dispute) -> customer id."""
    parts = [_indexed(frames, name, "customer_id") for name in _ID]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts) if parts else pd.Series(dtype=object)


def document_invoices(frames: dict[str, pd.DataFrame]) -> pd.Series:
    """Document id -> the invoice it belongs to (an invoice is its own)."""
    inv = frames.get("invoices")
    parts = [pd.Series(inv["invoice_id"].to_numpy(), index=inv["invoice_id"].to_numpy())
             if inv is not None and len(inv) else pd.Series(dtype=object),
             _indexed(frames, "credit_notes", "invoice_id"),
             _indexed(frames, "disputes", "invoice_id")]  # fmt: skip
    pays = frames.get("payments")
    if pays is not None and len(pays):
        notes = parts[1]
        by_note = pays["credit_note_id"].map(notes) if "credit_note_id" in pays else None
        own = pays["invoice_id"]
        if by_note is not None:
            own = own.where(own.notna(), by_note)
        parts.append(pd.Series(own.to_numpy(), index=pays["payment_id"].to_numpy()))
    parts = [p[~p.index.duplicated(keep="last")] for p in parts if len(p)]
    return pd.concat(parts) if parts else pd.Series(dtype=object)


def with_sources(lines: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``lines`` plus ``customer_id``, ``invoice_id`` and ``transaction_date``."""
    out = lines.copy()
    out["customer_id"] = out["document_id"].map(document_customers(frames)).astype(object)
    out["invoice_id"] = out["document_id"].map(document_invoices(frames)).astype(object)
    month_end = (out["period"] + pd.offsets.MonthEnd(0)).dt.normalize()
    date = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    for event, (name, _, col) in DATE_OF_EVENT.items():
        sel = out["event"] == event
        if sel.any():
            when = pd.to_datetime(_indexed(frames, name, col), utc=True, errors="coerce")
            date[sel] = out.loc[sel, "document_id"].map(when).dt.floor("D").to_numpy()
    # an event dated outside its accounting period (a correction) is dated in the period
    inside = (date >= out["period"]) & (date <= month_end)
    out["transaction_date"] = date.where(inside, month_end).dt.as_unit("ns")
    return out
