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
| dispute (when the ``disputes`` table exists) | opened in ``P`` | each ``dispute*`` event |

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
DISPUTE_EVENTS = "dispute*"  # every event whose name starts with "dispute"


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


def expected_postings(period, invoices, credit_notes, payments, disputes=None) -> pd.DataFrame:
    """The (document, event) pairs of ``period`` that need a posting (table above). Each
    frame holds the entity's documents of every period (voids are found by ``voided_at``)."""
    p = month(period)
    parts = []
    for df, kind, id_col, ev, void_ev, date_col in (
        (invoices, "invoice", "invoice_id", "invoice_finalized", "invoice_void", "finalized_at"),
        (credit_notes, "credit_note", "credit_note_id", "credit_note", "credit_note_void",
         "issued_at"),
    ):  # fmt: skip
        if df is None or df.empty:
            continue
        parts.append(_rows(df, _in_month(df[date_col], p), kind, id_col, ev, "total"))
        void = (df["status"] == "void") & _in_month(df["voided_at"], p)
        parts.append(_rows(df, void, kind, id_col, void_ev, "total"))
    if payments is not None and len(payments):
        ok = (payments["status"] == "succeeded") & _in_month(payments["created_at"], p)
        parts.append(_rows(payments, ok, "payment", "payment_id", payments["kind"], "amount"))
    if disputes is not None and len(disputes):
        when = disputes["created_at"] if "created_at" in disputes else disputes["period"]
        amount = "amount" if "amount" in disputes else None
        d = disputes.assign(_amount=disputes[amount] if amount else 1)
        parts.append(_rows(d, _in_month(when, p), "dispute", "dispute_id", DISPUTE_EVENTS,
                           "_amount"))  # fmt: skip
    parts = [x for x in parts if len(x)]
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


def _family(event: pd.Series) -> pd.Series:
    return event.where(~event.astype(str).str.startswith("dispute"), DISPUTE_EVENTS)


def completeness(expected: pd.DataFrame, journals: pd.DataFrame, exceptions) -> pd.DataFrame:
    """Documents without exactly one live posting or open exception (OFFENDER_COLUMNS)."""
    if expected.empty:
        return pd.DataFrame(columns=OFFENDER_COLUMNS)
    key = ["entity_id", "document_id", "event"]
    live = live_postings(journals).assign(document_id=lambda d: d["document_id"].astype(str))
    opened = _open(exceptions)
    counts = _counts(expected, live, opened, key)
    out = expected.assign(family=_family(expected["event"]))
    out = out.merge(counts, on=["entity_id", "document_id", "family"], how="left")
    for c in ("live_postings", "open_exceptions", "max_live", "max_open"):
        out[c] = out[c].fillna(0).astype(np.int64)
    out["external_ids"] = out["external_ids"].fillna("")
    out["any_both"] = out["any_both"].astype("boolean").fillna(False).astype(bool)
    out["reason"] = [_reason(r) for r in out.itertuples(index=False)]
    out = out[out["reason"].notna()]
    return out[OFFENDER_COLUMNS].reset_index(drop=True)


def _open(exceptions) -> pd.DataFrame:
    if exceptions is None or exceptions.empty:
        return pd.DataFrame(columns=["entity_id", "document_id", "event", "journal_key"])
    o = exceptions[exceptions["status"] == "open"]
    return o[["entity_id", "document_id", "event", "journal_key"]].astype({"document_id": str})


def _counts(expected, live, opened, key) -> pd.DataFrame:
    """Per (entity, document, event family): live postings, open exceptions, and the most
    of either on one event (a dispute has several events)."""
    lv = live.assign(family=_family(live["event"]))
    op = opened.assign(family=_family(opened["event"]))
    per_event = pd.concat(
        [lv.groupby(key).agg(n_live=("external_id", "size"),
                             ids=("external_id", lambda s: ",".join(sorted(s)))),
         op.groupby(key).agg(n_open=("journal_key", "size"))], axis=1
    ).fillna({"n_live": 0, "n_open": 0, "ids": ""}).reset_index()  # fmt: skip
    per_event["family"] = _family(per_event["event"])
    per_event["both"] = (per_event["n_live"] > 0) & (per_event["n_open"] > 0)
    g = per_event.groupby(["entity_id", "document_id", "family"])
    return g.agg(
        live_postings=("n_live", "sum"), open_exceptions=("n_open", "sum"),
        max_live=("n_live", "max"), max_open=("n_open", "max"), any_both=("both", "any"),
        external_ids=("ids", lambda s: ",".join(x for x in s if x)),
    ).reset_index()  # fmt: skip


def _reason(r) -> str | None:
    if r.max_live > 1:
        return "posted_twice"
    if r.max_open > 1:
        return "held_twice"
    if r.any_both:
        return "posted_and_held"
    if r.live_postings == 0 and r.open_exceptions == 0 and r.amount != 0:
        return "no_posting"
    return None
