"""Completeness: every billing document of a period reached the ERP exactly once, or waits in
the exception queue with a reason. Never none, never two.

The documents of an entity x period ``P`` and the posting each one needs:

| document | in scope when | posting (event) |
|---|---|---|
| invoice | finalized in ``P`` | ``invoice_finalized`` |
| invoice, voided | voided in ``P`` | ``invoice_void`` |
| credit note | issued in ``P`` | ``credit_note`` |
| credit note, voided | voided in ``P`` | ``credit_note_void`` |
| payment (``kind = payment``, succeeded) | created in ``P`` | ``payment`` |
| refund (``kind = refund``, succeeded) | created in ``P`` | ``refund`` |
| invoice marked uncollectible | ``uncollectible_at`` in ``P`` | ``invoice_uncollectible`` |
| dispute (when the ``disputes`` table exists) | opened in ``P`` | ``dispute`` |
| dispute won | closed in ``P`` | ``dispute_won`` |

A document whose accounting lines the engine put in another month (a change that landed in a
closed revenue period is booked in the first open month, as a correction) is checked in the
month of its lines (:func:`by_accounting_period`), where its journal is proposed.

A *live posting* is a ledger journal that is not a reversal and whose external id no reversal
names; an *open exception* is a ``posting_exceptions`` row with ``status = 'open'``. Per
document and event there must be exactly one of the two. Offenders:

- ``no_posting``: neither (a document that vanished between billing and the ERP). A document
  whose amount is zero has nothing to post and is exempt from this one;
- ``posted_twice``: two live postings (two versions live, or a duplicate);
- ``posted_and_held``: a live posting and an open exception at the same time;
- ``held_twice``: two open exceptions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.reconcile.balances import as_months, month

EXPECTED_COLUMNS = ["entity_id", "period", "document_type", "document_id", "event", "amount"]
OFFENDER_COLUMNS = [*EXPECTED_COLUMNS, "live_postings", "open_exceptions", "external_ids",
                    "reason"]  # fmt: skip


def _in_month(values: pd.Series, p: pd.Timestamp) -> pd.Series:
    return (as_months(values) == p).fillna(False).astype(bool)


def _rows(df, mask, doc_type, id_col, event, amount_col) -> pd.DataFrame:
    sel = df[mask]
    return pd.DataFrame(
        {"entity_id": sel["entity_id"].to_numpy(), "document_type": doc_type,
         "document_id": sel[id_col].astype(str).to_numpy(),
         "event": event if isinstance(event, str) else np.asarray(event)[mask.to_numpy()],
         "amount": sel[amount_col].fillna(0).astype(np.int64).to_numpy()}
    )  # fmt: skip


def _dated(df, col: str, p: pd.Timestamp, extra=None) -> pd.Series:
    if df is None or df.empty or col not in df:
        return pd.Series(False, index=[] if df is None else df.index)
    mask = _in_month(df[col], p)
    return mask & extra if extra is not None else mask


def expected_postings(period, invoices, credit_notes, payments, disputes=None) -> pd.DataFrame:
    """The (document, event) pairs of ``period`` that need a posting (table above). Each
    frame holds the entity's documents of every period (voids, write-offs and dispute
    outcomes are found by their own dates)."""
    p = month(period)
    specs = []  # (frame, mask, document type, id column, event, amount column)
    if invoices is not None and len(invoices):
        void = invoices["status"] == "void"
        specs += [(invoices, _dated(invoices, "finalized_at", p), "invoice", "invoice_id",
                   "invoice_finalized", "total"),
                  (invoices, _dated(invoices, "voided_at", p, void), "invoice", "invoice_id",
                   "invoice_void", "total"),
                  (invoices, _dated(invoices, "uncollectible_at", p), "invoice", "invoice_id",
                   "invoice_uncollectible", "total")]  # fmt: skip
    if credit_notes is not None and len(credit_notes):
        void = credit_notes["status"] == "void"
        specs += [(credit_notes, _dated(credit_notes, "issued_at", p), "credit_note",
                   "credit_note_id", "credit_note", "total"),
                  (credit_notes, _dated(credit_notes, "voided_at", p, void), "credit_note",
                   "credit_note_id", "credit_note_void", "total")]  # fmt: skip
    if payments is not None and len(payments):
        ok = _dated(payments, "created_at", p, payments["status"] == "succeeded")
        specs.append((payments, ok, "payment", "payment_id", payments["kind"], "amount"))
    if disputes is not None and len(disputes):
        won = disputes["status"] == "won"
        specs += [(disputes, _dated(disputes, "created_at", p), "dispute", "dispute_id",
                   "dispute", "amount"),
                  (disputes, _dated(disputes, "closed_at", p, won), "dispute", "dispute_id",
                   "dispute_won", "amount")]  # fmt: skip
    parts = [_rows(*spec) for spec in specs if spec[1].any()]
    if not parts:
        return pd.DataFrame(columns=EXPECTED_COLUMNS)
    out = pd.concat(parts, ignore_index=True).assign(period=p)
    return out[EXPECTED_COLUMNS]


def live_postings(journals: pd.DataFrame) -> pd.DataFrame:
    """Journals that are not reversals and are not reversed."""
    if journals is None or journals.empty:
        return pd.DataFrame(columns=["entity_id", "document_id", "event", "external_id"])
    reversed_ids = set(journals["reverses"].dropna())
    live = journals[journals["reverses"].isna() & ~journals["external_id"].isin(reversed_ids)]
    return live[["entity_id", "document_id", "event", "external_id"]]


def completeness(expected: pd.DataFrame, journals: pd.DataFrame, exceptions) -> pd.DataFrame:
    """Documents without exactly one live posting or open exception (OFFENDER_COLUMNS)."""
    if expected.empty:
        return pd.DataFrame(columns=OFFENDER_COLUMNS)
    key = ["entity_id", "document_id", "event"]
    live = live_postings(journals).astype({"document_id": str}).sort_values("external_id")
    counts = pd.concat(
        [live.groupby(key).agg(live_postings=("external_id", "size"),
                               external_ids=("external_id", ",".join)),  # sorted above
         _open(exceptions).groupby(key).agg(open_exceptions=("journal_key", "size"))], axis=1,
    ).reset_index()  # fmt: skip
    out = expected.merge(counts, on=key, how="left")
    for c in ("live_postings", "open_exceptions"):
        out[c] = pd.to_numeric(out[c]).fillna(0).astype(np.int64)
    out["external_ids"] = out["external_ids"].fillna("")
    out["reason"] = _reasons(out)
    out = out[out["reason"].notna()]
    return out[OFFENDER_COLUMNS].reset_index(drop=True)


def by_accounting_period(expected: pd.DataFrame, accounting_lines: pd.DataFrame,
                         period, closed: bool = False) -> pd.DataFrame:  # fmt: skip
    """``expected`` with each (document, event) moved to the month its accounting lines are in:
    dropped when its lines are in another month, added when its lines are in ``period``
    though its own date is earlier. ``accounting_lines``: the entity's lines, every month.
    In a ``closed`` revenue month (kept as booked) a document without lines there belongs to
    the first open month, where the engine books it as a correction."""
    if accounting_lines is None or accounting_lines.empty:
        return expected.iloc[:0] if closed else expected
    p = month(period)
    key = ["document_id", "event"]
    where = accounting_lines.groupby(key)["period"].min()
    at = expected[key].merge(where.rename("at").reset_index(), on=key, how="left")["at"]
    here_or_absent = (as_months(at) == p) | (at.isna() & (not closed))
    keep = expected[here_or_absent.to_numpy()]
    here = accounting_lines[accounting_lines["period"] == p]
    moved = here[~here.set_index(key).index.isin(expected.set_index(key).index)]
    moved = moved[moved["event"].isin(_DOCUMENT_OF)]
    if moved.empty:
        return keep.reset_index(drop=True)
    extra = moved.groupby(["entity_id", *key], as_index=False)["debit"].sum()
    extra = extra.assign(period=p, document_type=extra["event"].map(_DOCUMENT_OF),
                         amount=extra["debit"])  # fmt: skip
    return pd.concat([keep, extra[EXPECTED_COLUMNS]], ignore_index=True)


_DOCUMENT_OF = {"invoice_finalized": "invoice", "invoice_void": "invoice",
                "invoice_uncollectible": "invoice", "credit_note": "credit_note",
                "credit_note_void": "credit_note", "payment": "payment", "refund": "payment",
                "dispute": "dispute", "dispute_won": "dispute"}  # fmt: skip


def quarantined(expected: pd.DataFrame, exceptions: pd.DataFrame) -> pd.DataFrame:
    """Documents the engine or the contract refused (``exceptions`` rows of stage ingest or
    recognition: a payment of a quarantined invoice, say) as open exceptions: they wait with
    a reason and an owner, so they count as one open exception each."""
    if expected.empty or exceptions is None or exceptions.empty:
        return pd.DataFrame(columns=["entity_id", "document_id", "event", "journal_key",
                                     "status"])  # fmt: skip
    refused = exceptions[exceptions["stage"].isin(["ingest", "recognition"])]
    refused = refused.drop_duplicates("source_id").astype({"source_id": str})
    hit = expected.merge(refused[["source_id", "rule"]], left_on="document_id",
                         right_on="source_id")  # fmt: skip
    return pd.DataFrame({"entity_id": hit["entity_id"], "document_id": hit["document_id"],
                         "event": hit["event"], "journal_key": "exception:" + hit["rule"],
                         "status": "open"})  # fmt: skip


def _open(exceptions) -> pd.DataFrame:
    if exceptions is None or exceptions.empty:
        return pd.DataFrame(columns=["entity_id", "document_id", "event", "journal_key"])
    o = exceptions[exceptions["status"] == "open"]
    return o[["entity_id", "document_id", "event", "journal_key"]].astype({"document_id": str})


def _reasons(counts: pd.DataFrame) -> np.ndarray:
    """The offender reason of each row (module docstring), None when it is complete."""
    live, held = counts["live_postings"].to_numpy(), counts["open_exceptions"].to_numpy()
    none = (live == 0) & (held == 0) & (counts["amount"].to_numpy() != 0)
    return np.select(
        [live > 1, held > 1, (live > 0) & (held > 0), none],
        ["posted_twice", "held_twice", "posted_and_held", "no_posting"],
        default=None,
    ).astype(object)
