"""Reconciling items: the known, listed reasons why the GL differs from the subledger at the
end of a period ``P``. Each has an amount per account, a reason code and an owner.

- ``held``: a journal of a period up to ``P`` that the posting rules or the ERP held
  (``erp_postings.posting_status = 'held'``, with ``reason_code`` and ``owner``). The
  subledger has it, the GL does not. When an earlier version of the same journal is live in
  the GL (a changed document whose new version is held), the item is the change: the held
  lines minus the live version's lines.
- ``timing``: a journal whose events belong to a period up to ``P`` but that was posted in a
  later ERP period (a correction moved out of a closed period by the ``next_open`` policy, or
  its reversal): ``ledger_journals.source_period <= P < period``. It reaches the GL next
  period; until then it is a timing difference owned by finance.

Amounts are signed, debit positive, per (journal, account, currency), in the transaction and
the functional currency.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.reconcile.balances import as_months, month

ITEM_COLUMNS = ["entity_id", "period", "item_type", "account", "document_id", "event",
                "journal_key", "external_id", "currency", "amount", "functional_currency",
                "amount_functional", "reason_code", "owner", "source_period",
                "posting_period"]  # fmt: skip
TIMING_REASON, TIMING_OWNER = "posted_in_later_period", "finance"
NO_EXCEPTION_REASON = "held_without_exception"  # a held line the queue does not explain
_GROUP = ["journal_key", "external_id", "account", "currency", "functional_currency"]


def empty_items() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in ITEM_COLUMNS})
    for c in ("amount", "amount_functional"):
        out[c] = pd.Series(dtype=np.int64)
    for c in ("period", "source_period", "posting_period"):
        out[c] = pd.Series(dtype="datetime64[ns, UTC]")
    return out


def journal_key_of(external_id: str) -> str:
    """``US01-INV-in_1-v2`` and ``US01-INV-in_1-v2-REV`` -> ``US01-INV-in_1``."""
    base = external_id[:-4] if external_id.endswith("-REV") else external_id
    head, _, version = base.rpartition("-v")
    return head if version.isdigit() else base


def _signed(lines: pd.DataFrame) -> pd.DataFrame:
    df = lines.copy()
    df["amount"] = df["debit"].astype(np.int64) - df["credit"].astype(np.int64)
    df["amount_functional"] = df["debit_functional"].astype(np.int64) - df[
        "credit_functional"
    ].astype(np.int64)
    return df


def _summed(df: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """Per (journal, account, currency), keeping the first value of the ``keep`` columns."""
    df = df.copy()
    for c in _GROUP:
        df[c] = df[c].astype(object).where(df[c].notna(), "")
    agg = {"amount": "sum", "amount_functional": "sum", **{c: "first" for c in keep}}
    out = df.groupby(_GROUP, as_index=False, sort=True).agg(agg)
    out = out.replace({"external_id": {"": None}})
    return out[(out["amount"] != 0) | (out["amount_functional"] != 0)]


def held_items(postings: pd.DataFrame, period, exceptions: pd.DataFrame | None = None,
               journals: pd.DataFrame | None = None, lines: pd.DataFrame | None = None):  # fmt: skip
    """Held journal lines of periods up to ``period`` (module docstring).

    ``postings``: ``erp_postings`` rows; ``exceptions``: ``posting_exceptions`` rows, used for
    the reason and owner when a posting row carries none; ``journals``/``lines``: the ledger
    (posting log), to net a live earlier version of a held journal.
    """
    p = month(period)
    if postings is None or postings.empty:
        return empty_items()
    held = postings[(postings["posting_status"] == "held") & (as_months(postings["period"]) <= p)]
    if held.empty:
        return empty_items()
    held = _signed(held.assign(source_period=as_months(held["period"]), external_id=None))
    held = _with_reasons(held, exceptions)
    keep = ["entity_id", "document_id", "event", "reason_code", "owner", "source_period"]
    parts = [_summed(held, keep)]
    live = _live_versions(set(held["journal_key"]), journals, lines, p)
    if len(live):
        why = held.drop_duplicates("journal_key").set_index("journal_key")
        live = live.assign(
            reason_code=live["journal_key"].map(why["reason_code"]),
            owner=live["journal_key"].map(why["owner"]),
            amount=-live["amount"], amount_functional=-live["amount_functional"],
        )  # fmt: skip
        parts.append(_summed(live, keep + ["posting_period"]))
    out = pd.concat(parts, ignore_index=True).assign(item_type="held", period=p)
    return _shaped(out)


def _with_reasons(held: pd.DataFrame, exceptions: pd.DataFrame | None) -> pd.DataFrame:
    held = held.copy()
    for c in ("reason_code", "owner"):
        if c not in held:
            held[c] = None
    if exceptions is not None and len(exceptions):
        open_ = exceptions[exceptions["status"] == "open"].drop_duplicates("journal_key")
        by_key = open_.set_index("journal_key")
        for c in ("reason_code", "owner"):
            held[c] = held[c].where(held[c].notna(), held["journal_key"].map(by_key[c]))
    held["reason_code"] = held["reason_code"].fillna(NO_EXCEPTION_REASON)
    held["owner"] = held["owner"].fillna("integration")
    return held


def _live_versions(keys: set[str], journals, lines, p: pd.Timestamp) -> pd.DataFrame:
    """Lines of live (not reversed, not reversing) journals of ``keys`` posted up to ``p``."""
    if not keys or journals is None or lines is None or journals.empty:
        return pd.DataFrame()
    reversed_ids = set(journals["reverses"].dropna())
    j = journals[journals["reverses"].isna() & ~journals["external_id"].isin(reversed_ids)]
    j = j.assign(journal_key=j["external_id"].map(journal_key_of))
    j = j[j["journal_key"].isin(keys) & (as_months(j["period"]) <= p)]
    if j.empty:
        return pd.DataFrame()
    head = j[["external_id", "journal_key", "entity_id", "document_id", "event"]].assign(
        source_period=as_months(j["source_period"]), posting_period=as_months(j["period"])
    )
    return _signed(lines.drop(columns=["entity_id"], errors="ignore").merge(head, on="external_id"))


def timing_items(journals: pd.DataFrame, lines: pd.DataFrame, period) -> pd.DataFrame:
    """Journals of periods up to ``period`` posted in a later ERP period (module docstring)."""
    p = month(period)
    if journals is None or journals.empty or lines is None or lines.empty:
        return empty_items()
    src, posted = as_months(journals["source_period"]), as_months(journals["period"])
    late = journals[(src <= p) & (posted > p)]
    if late.empty:
        return empty_items()
    head = late[["external_id", "entity_id", "document_id", "event"]].assign(
        journal_key=late["external_id"].map(journal_key_of),
        source_period=as_months(late["source_period"]), posting_period=as_months(late["period"]),
    )  # fmt: skip
    df = _signed(lines.drop(columns=["entity_id"], errors="ignore").merge(head, on="external_id"))
    keep = ["entity_id", "document_id", "event", "source_period", "posting_period"]
    out = _summed(df, keep).assign(
        item_type="timing", period=p, reason_code=TIMING_REASON, owner=TIMING_OWNER
    )
    return _shaped(out)


def reconciling_items(postings, journals, lines, period, exceptions=None, entity_id=None):
    """Held and timing items of one entity at the end of ``period`` (ITEM_COLUMNS)."""
    if entity_id is not None:
        postings = _of(postings, entity_id)
        journals = _of(journals, entity_id)
    parts = [held_items(postings, period, exceptions, journals, lines),
             timing_items(journals, lines, period)]  # fmt: skip
    parts = [x for x in parts if len(x)]
    if not parts:
        return empty_items()
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["item_type", "account", "journal_key"]).reset_index(drop=True)


def _of(df: pd.DataFrame | None, entity_id: str):
    return df if df is None or df.empty else df[df["entity_id"] == entity_id]


def _shaped(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reindex(columns=ITEM_COLUMNS)
    for c in ("amount", "amount_functional"):
        out[c] = out[c].astype(np.int64)
    for c in ("period", "source_period", "posting_period"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out
