"""Documents: the unit of incremental recognition.

A *document* is an invoice with everything that can change its schedule or its journals: its
lines, the credit notes on it (and their lines), the payments and refunds of it or of its
credit notes, the disputes of those payments, and the usage events that fall inside its
usage lines' service periods. Nothing else moves a document's rows: the engine
(:func:`~sync_core.revenue.recognize`) treats documents independently, so recognizing a set
of documents gives exactly the rows a full run gives for them (``tests/revenue/
test_documents_incremental.py`` holds that against a full run of the demo platform).

A payment, credit note or dispute that names no invoice is a document of its own
(``payment:<id>``, ...): an unapplied payment, a refund of one.

Each document gets a *content hash* over every input row it is made of and the legal entity's
settings (functional currency, recognition method). A document whose hash is unchanged since
its schedule was stored is not recognized again; see :mod:`sync_core.revenue.incremental`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sync_core.contracts.validate import SOURCE_ID
from sync_core.revenue.periods import instants_ns

DOCUMENT_FRAMES = ("invoices", "invoice_lines", "credit_notes", "credit_note_lines",
                   "usage_events", "payments", "disputes")  # fmt: skip
_MASK32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class DocumentKeys:
    """The document each input row belongs to. ``rows[name]`` holds ``row`` (position in the
    frame) and ``document_key``; a usage event can belong to several documents (an item
    billed on two invoices whose periods overlap) or to none (outside every billed period)."""

    rows: dict[str, pd.DataFrame]
    ids: pd.Series  # (object id -> document key) for invoices, notes, payments, disputes, lines


def _keys(df: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(len(df)), "document_key": key.to_numpy(object)})


def _or_own(primary: pd.Series, kind: str, own_id: pd.Series) -> pd.Series:
    own = kind + ":" + own_id.astype(str)
    return primary.where(primary.notna(), own).astype(object)


def document_keys(frames: dict[str, pd.DataFrame]) -> DocumentKeys:
    """Assign every row of the engine's input frames to its document."""
    get = lambda n: frames.get(n) if frames.get(n) is not None else pd.DataFrame()  # noqa: E731
    inv, lines, notes = get("invoices"), get("invoice_lines"), get("credit_notes")
    note_lines, pays, disputes = get("credit_note_lines"), get("payments"), get("disputes")
    rows: dict[str, pd.DataFrame] = {}
    ids: list[pd.Series] = []

    def col(df, name):
        return df[name] if name in df else pd.Series([None] * len(df), index=df.index)

    rows["invoices"] = _keys(inv, col(inv, "invoice_id"))
    rows["invoice_lines"] = _keys(lines, col(lines, "invoice_id"))
    note_key = _or_own(col(notes, "invoice_id"), "credit_note", col(notes, "credit_note_id"))
    rows["credit_notes"] = _keys(notes, note_key)
    by_note = pd.Series(note_key.to_numpy(), index=col(notes, "credit_note_id").to_numpy())
    by_note = by_note[~by_note.index.duplicated(keep="last")]
    nl_key = _or_own(col(note_lines, "credit_note_id").map(by_note), "credit_note",
                     col(note_lines, "credit_note_id"))  # fmt: skip
    rows["credit_note_lines"] = _keys(note_lines, nl_key)
    pay_key = col(pays, "invoice_id")
    pay_key = pay_key.where(pay_key.notna(), col(pays, "credit_note_id").map(by_note))
    pay_key = _or_own(pay_key, "payment", col(pays, "payment_id"))
    rows["payments"] = _keys(pays, pay_key)
    by_pay = pd.Series(pay_key.to_numpy(), index=col(pays, "payment_id").to_numpy())
    by_pay = by_pay[~by_pay.index.duplicated(keep="last")]
    d_key = col(disputes, "invoice_id")
    d_key = d_key.where(d_key.notna(), col(disputes, "payment_id").map(by_pay))
    rows["disputes"] = _keys(disputes, _or_own(d_key, "dispute", col(disputes, "dispute_id")))
    rows["usage_events"] = _usage_keys(get("usage_events"), lines)

    for name in DOCUMENT_FRAMES:  # the ids a quarantine row names (not usage: never quarantined)
        df, id_col = get(name), SOURCE_ID[name]
        if name == "usage_events":
            continue
        if len(df) and id_col in df:
            ids.append(pd.Series(rows[name]["document_key"].to_numpy(),
                                 index=df[id_col].astype(str).to_numpy()))  # fmt: skip
    every = pd.concat(ids) if ids else pd.Series(dtype=object)
    return DocumentKeys(rows, every[~every.index.duplicated(keep="last")])


def _usage_keys(usage: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Usage events -> the invoices whose usage lines on the same item cover the event."""
    empty = pd.DataFrame({"row": np.zeros(0, np.int64), "document_key": np.zeros(0, object)})
    if usage.empty or lines.empty or "line_type" not in lines:
        return empty
    ul = lines[(lines["line_type"] == "usage") & lines["subscription_item_id"].notna()]
    if ul.empty:
        return empty
    ul = pd.DataFrame({
        "item": ul["subscription_item_id"].to_numpy(object),
        "start": instants_ns(ul["period_start"]), "end": instants_ns(ul["period_end"]),
        "document_key": ul["invoice_id"].to_numpy(object),
    })  # fmt: skip
    ev = pd.DataFrame({"row": np.arange(len(usage)),
                       "item": usage["subscription_item_id"].to_numpy(object),
                       "ts": instants_ns(usage["timestamp"])})  # fmt: skip
    m = ev.merge(ul, on="item")
    m = m[(m["ts"] >= m["start"]) & (m["ts"] < m["end"])]
    return m[["row", "document_key"]].drop_duplicates().reset_index(drop=True)


def _row_hashes(df: pd.DataFrame) -> np.ndarray:
    if df.empty:
        return np.zeros(0, dtype=np.uint64)
    cols = sorted(df.columns)
    return pd.util.hash_pandas_object(df[cols], index=False).to_numpy(np.uint64)


def document_hashes(
    frames: dict[str, pd.DataFrame], keys: DocumentKeys, settings: str = ""
) -> pd.Series:
    """document key -> 16-hex content hash over its input rows and the entity ``settings``.

    Order-insensitive (rows are added, per frame, in two 32-bit halves without overflow),
    so a re-ingest that returns the same rows in another order changes nothing."""
    parts = []
    for i, name in enumerate(DOCUMENT_FRAMES):
        df, k = frames.get(name), keys.rows.get(name)
        if df is None or k is None or k.empty:
            continue
        h = _row_hashes(df.reset_index(drop=True))[k["row"].to_numpy()]
        part = pd.DataFrame({
            "document_key": k["document_key"].to_numpy(object),
            "lo": (h & _MASK32).astype(np.int64), "hi": (h >> np.uint64(32)).astype(np.int64),
            "n": 1,
        }).groupby("document_key", sort=False).sum()  # fmt: skip
        part["frame"] = i
        parts.append(part)
    if not parts:
        return pd.Series(dtype=object)
    allp = pd.concat(parts).reset_index()
    text = (allp["frame"].astype(str) + ":" + allp["lo"].astype(str) + ":"
            + allp["hi"].astype(str) + ":" + allp["n"].astype(str))  # fmt: skip
    allp["h"] = pd.util.hash_array(text.to_numpy(object)).astype(np.uint64)
    allp["lo2"] = (allp["h"].to_numpy(np.uint64) & _MASK32).astype(np.int64)
    allp["hi2"] = (allp["h"].to_numpy(np.uint64) >> np.uint64(32)).astype(np.int64)
    per = allp.groupby("document_key", sort=True)[["lo2", "hi2"]].sum()
    seed = settings + "|"
    final = pd.util.hash_array(
        (seed + per["lo2"].astype(str) + ":" + per["hi2"].astype(str)).to_numpy(object)
    ).astype(np.uint64)
    return pd.Series([f"{v:016x}" for v in final], index=per.index, dtype=object)


def select(frames: dict[str, pd.DataFrame], keys: DocumentKeys, wanted) -> dict[str, pd.DataFrame]:
    """The input frames restricted to the rows of the ``wanted`` documents."""
    wanted = pd.Index(list(wanted))
    out = {}
    for name, df in frames.items():
        k = keys.rows.get(name)
        if k is None:
            out[name] = df
            continue
        rows = np.unique(k["row"].to_numpy()[k["document_key"].isin(wanted).to_numpy()])
        out[name] = df.iloc[rows].reset_index(drop=True)
    return out


def keyed(df: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """``df`` with a ``document_key`` column."""
    return df.assign(document_key=np.asarray(key, dtype=object))


def schedule_keys(schedule: pd.DataFrame) -> pd.Series:
    """Every schedule row names its invoice: that is its document."""
    return schedule["invoice_id"].astype(object)


def line_keys(lines: pd.DataFrame, keys: DocumentKeys) -> pd.Series:
    """An accounting line's document id (invoice, credit note, payment, dispute) -> key."""
    return lines["document_id"].astype(str).map(keys.ids).astype(object)


def quarantine_keys(quarantine: pd.DataFrame, keys: DocumentKeys) -> pd.Series:
    """A quarantined record -> its document; a record of no document (a legal entity) ->
    ``legal_entity:<id>``."""
    key = quarantine["source_id"].astype(str).map(keys.ids)
    own = "legal_entity:" + quarantine["entity_id"].astype(str)
    return key.where(key.notna(), own).astype(object)
