"""Document-level rules that span a header and its lines (invoices, credit notes).

A document is accepted whole or quarantined whole: a bad line quarantines its header and
every sibling line, so nothing downstream ever sees (or posts) half a document.
"""

from __future__ import annotations

import pandas as pd

from sync_core.contracts.models import (
    CreditNoteLineModel,
    CreditNoteModel,
    InvoiceLineModel,
    InvoiceModel,
)
from sync_core.contracts.validate import SOURCE_ID, Quarantine, exception_rows, split_valid

DOCUMENTS = {
    "invoices": ("invoice_lines", "invoice_id", InvoiceModel, InvoiceLineModel),
    "credit_notes": ("credit_note_lines", "credit_note_id", CreditNoteModel, CreditNoteLineModel),
}


def validate_document(
    object_name: str, headers: pd.DataFrame, lines: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (valid headers, valid lines, exceptions) for invoices or credit notes."""
    line_object, key, header_model, line_model = DOCUMENTS[object_name]
    h_good, h_exc = split_valid(headers, header_model, object_name)
    l_good, l_exc = split_valid(lines, line_model, line_object)
    parts = [h_exc, l_exc]

    known = set(headers[key].dropna()) if key in headers else set()
    h_ids = set(h_good[key])
    # lines whose header is missing from the feed, or was itself quarantined
    orphan = ~l_good[key].isin(known)
    parts.append(
        exception_rows(
            l_good,
            orphan,
            line_object,
            "header_exists",
            lambda b: [f"no {object_name[:-1]} {k!r} in this entity and period" for k in b[key]],
        )
    )
    dropped = l_good[key].isin(known) & ~l_good[key].isin(h_ids)
    parts.append(
        exception_rows(
            l_good,
            dropped,
            line_object,
            "header_quarantined",
            lambda b: [f"{object_name[:-1]} {k!r} was quarantined" for k in b[key]],
        )
    )
    l_good = l_good[~orphan & ~dropped]

    # header-level rules against the lines
    line_id = SOURCE_ID[line_object]
    doc_of_line = dict(zip(lines[line_id], lines[key])) if len(lines) else {}
    bad_line_docs = set(l_exc["source_id"].map(doc_of_line).dropna()) if len(l_exc) else set()
    has_bad_line = h_good[key].isin(bad_line_docs)
    parts.append(
        exception_rows(
            h_good,
            has_bad_line,
            object_name,
            "lines_valid",
            "one or more lines of the document broke the contract",
        )
    )
    sums = l_good.groupby(key).agg(
        line_amount=("amount", "sum"), line_tax=("tax_amount", "sum"), line_count=("amount", "size")
    )
    merged = h_good.join(sums, on=key)
    line_amount = merged["line_amount"].fillna(0).astype("int64")
    line_tax = merged["line_tax"].fillna(0).astype("int64")
    totals_ok = (line_amount == merged["subtotal"]) & (line_tax == merged["tax"])
    if object_name == "credit_notes":  # a note without lines is spread over its invoice
        totals_ok |= merged["line_count"].fillna(0) == 0
    totals_bad = ~totals_ok & ~has_bad_line
    parts.append(
        exception_rows(
            merged.assign(line_amount=line_amount, line_tax=line_tax),
            totals_bad,
            object_name,
            "line_totals_match",
            lambda b: [
                f"header subtotal {s} and tax {t}, but its lines sum to {a} and {x}"
                for s, t, a, x in zip(b["subtotal"], b["tax"], b["line_amount"], b["line_tax"])
            ],
        )
    )
    cur = l_good.merge(h_good[[key, "currency"]], on=key, suffixes=("", "_header"))
    cur_bad_docs = set(cur.loc[cur["currency"] != cur["currency_header"], key])
    cur_bad = h_good[key].isin(cur_bad_docs)
    parts.append(
        exception_rows(
            h_good,
            cur_bad & ~has_bad_line & ~totals_bad,
            object_name,
            "line_currency_matches",
            "a line's currency differs from the document's",
        )
    )
    reject = has_bad_line | totals_bad | cur_bad
    rejected = set(h_good.loc[reject, key])
    sib = l_good[key].isin(rejected)
    parts.append(
        exception_rows(
            l_good,
            sib,
            line_object,
            "header_quarantined",
            lambda b: [f"{object_name[:-1]} {k!r} was quarantined" for k in b[key]],
        )
    )
    exc = (
        pd.concat([p for p in parts if not p.empty], ignore_index=True)
        if any(not p.empty for p in parts)
        else Quarantine.empty()
    )
    return (
        h_good[~reject].reset_index(drop=True),
        l_good[~sib].reset_index(drop=True),
        exc,
    )
