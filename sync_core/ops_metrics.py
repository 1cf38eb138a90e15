"""Operations metrics of one legal entity x month, and the exception queue's open rows.

- event lag: a document's event (invoice finalized, voided, marked uncollectible, credit note
  issued or voided, payment or refund created, dispute opened or won) to its first journal in
  the posting log (``ledger_journals.posted_at``), p50 / p95 in seconds; the invoice
  finalized -> posted latency is the same for ``invoice_finalized`` journals only. The
  warehouse holds the documents' own times, not the billing system's event delivery times,
  so the lag includes the time the event took to reach the platform;
- failed posting rate: journals the ERP refused (posting exceptions of stage ``erp``, open or
  resolved) over journals attempted (refused or posted);
- open posting exceptions per owner with the age of the oldest, in days;
- period-close backlog: months before the current one whose revenue is not closed.

Percentiles interpolate linearly between ranks (``pandas.Series.quantile``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

# (document table, id column, event, time column) of every event that gets a journal
EVENT_TIMES = [
    ("invoices", "invoice_id", "invoice_finalized", "finalized_at"),
    ("invoices", "invoice_id", "invoice_void", "voided_at"),
    ("invoices", "invoice_id", "invoice_uncollectible", "uncollectible_at"),
    ("credit_notes", "credit_note_id", "credit_note", "issued_at"),
    ("credit_notes", "credit_note_id", "credit_note_void", "voided_at"),
    ("payments", "payment_id", None, "created_at"),  # the event is the payment's kind
    ("disputes", "dispute_id", "dispute", "created_at"),
    ("disputes", "dispute_id", "dispute_won", "closed_at"),
]
QUEUE_COLUMNS = ["entity_id", "period", "document_id", "journal_key", "reason_code", "owner",
                 "stage", "age_days", "attempts", "first_seen", "message"]  # fmt: skip


def _utc(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """p50 and p95 of ``values``, to the thousandth (None for both when there are none)."""
    s = pd.Series(list(values), dtype="float64").dropna()
    if s.empty:
        return {"p50": None, "p95": None}
    return {"p50": round(float(s.quantile(0.5)), 3), "p95": round(float(s.quantile(0.95)), 3)}


def event_times(documents: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """(document_id, event, event_at) of the documents' events, from their own times."""
    parts = []
    for table, id_col, event, at in EVENT_TIMES:
        df = documents.get(table)
        if df is None or df.empty or at not in df:
            continue
        when = _utc(df[at].to_numpy())
        kind = df["kind"].to_numpy() if event is None else np.full(len(df), event)
        part = pd.DataFrame({"document_id": df[id_col].astype(str).to_numpy(), "event": kind,
                             "event_at": when.to_numpy()})  # fmt: skip
        parts.append(part[part["event_at"].notna()])
    if not parts:
        return pd.DataFrame({"document_id": [], "event": [], "event_at": _utc([])})
    out = pd.concat(parts, ignore_index=True)
    out["event_at"] = _utc(out["event_at"])
    return out


def posting_lags(journals: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per (document, event): its event time, its first journal's ``posted_at`` and the lag
    in seconds. Reversals are not postings of an event; an event never posted has no row."""
    if journals is None or journals.empty or events.empty:
        return pd.DataFrame(columns=["document_id", "event", "event_at", "posted_at", "lag_s"])
    live = journals[journals["reverses"].isna()] if "reverses" in journals else journals
    first = (live.assign(posted_at=_utc(live["posted_at"].to_numpy()).to_numpy())
             .groupby(["document_id", "event"], as_index=False)["posted_at"].min())  # fmt: skip
    out = events.merge(first, on=["document_id", "event"], how="inner")
    out["posted_at"] = _utc(out["posted_at"])
    out["lag_s"] = (out["posted_at"] - out["event_at"]).dt.total_seconds()
    return out.sort_values(["document_id", "event"], ignore_index=True)


def lag_stats(lags: pd.DataFrame, event: str | None = None) -> dict:
    """``n``, ``p50_s`` and ``p95_s`` of the lags (of one ``event`` when given)."""
    rows = lags if event is None or lags.empty else lags[lags["event"] == event]
    p = percentiles(rows["lag_s"]) if len(rows) else percentiles([])
    return {"n": int(len(rows)), "p50_s": p["p50"], "p95_s": p["p95"]}


def failed_posting_rate(journals: pd.DataFrame, queue_rows: pd.DataFrame) -> dict:
    """Journals the ERP refused (queue rows of stage ``erp``, open or resolved: a refusal
    that a replay posted later still failed once) over journals attempted (refused or posted,
    by document and event; reversals are not counted)."""
    keys = ["document_id", "event"]
    posted = set()
    if journals is not None and len(journals):
        live = journals[journals["reverses"].isna()] if "reverses" in journals else journals
        posted = set(zip(live["document_id"], live["event"], strict=True))
    failed = set()
    if queue_rows is not None and len(queue_rows):
        erp = queue_rows[queue_rows["stage"] == "erp"]
        failed = set(zip(erp[keys[0]], erp[keys[1]], strict=True))
    attempted = len(posted | failed)
    return {"failed": len(failed), "attempted": attempted,
            "rate": (len(failed) / attempted) if attempted else 0.0}  # fmt: skip


def open_exceptions(queue_rows: pd.DataFrame, now) -> pd.DataFrame:
    """The open rows of the posting exception queue with their age in days (from
    ``first_seen`` to ``now``, one decimal), oldest first (QUEUE_COLUMNS)."""
    if queue_rows is None or queue_rows.empty:
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    rows = queue_rows[queue_rows["status"] == "open"].copy()
    first = _utc(rows["first_seen"].to_numpy())
    rows["first_seen"] = first.to_numpy()
    age = (pd.Timestamp(now).tz_convert("UTC") - first).dt.total_seconds() / 86_400
    rows["age_days"] = age.round(1).to_numpy()
    rows["attempts"] = rows["attempts"].astype(np.int64)
    rows = rows.sort_values(["age_days", "entity_id", "journal_key"],
                            ascending=[False, True, True], kind="stable")  # fmt: skip
    return rows[QUEUE_COLUMNS].reset_index(drop=True)


def by_owner(open_rows: pd.DataFrame) -> dict[str, dict]:
    """owner -> {"open": count, "oldest_days": age of its oldest open row}."""
    if open_rows.empty:
        return {}
    g = open_rows.groupby("owner")["age_days"].agg(["size", "max"])
    return {str(o): {"open": int(r["size"]), "oldest_days": float(r["max"])}
            for o, r in g.sort_index().iterrows()}  # fmt: skip


def close_backlog(periods: Iterable, closed_through, now) -> list[pd.Timestamp]:
    """The months of ``periods`` before the month of ``now`` that are not closed (after
    ``closed_through``, or every one when nothing is closed), oldest first."""
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    current = pd.Timestamp(year=now.year, month=now.month, day=1, tz="UTC")
    closed = None if closed_through is None else _utc([closed_through]).iloc[0]
    months = sorted(set(_utc(list(periods))))
    return [m for m in months if m < current and (closed is None or m > closed)]
