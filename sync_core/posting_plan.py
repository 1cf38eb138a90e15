"""Exactly-once posting plan: what to post, reverse, hold or keep waiting (pure functions).

Given a period's proposed journals (``sync_core.proposal``) and what the ERP
already holds, the plan is:

- a journal never posted gets version 1;
- a journal posted with the same content is left alone (a retry or replay posts nothing);
- a journal posted with other content (a changed or voided document, a late revenue change)
  gets a reversing journal of the posted version and then the new version: never an edit or a
  delete of a posted journal;
- a journal posted for the period whose key is no longer proposed at all (a month's revenue
  that a full refund or cancellation netted to zero) is *stale*: it gets its reversing journal,
  so the GL never keeps what the subledger no longer has;
- a journal dated in a closed or locked ERP period either moves to the first open period as a
  marked correction or is held, by the entity's policy;
- a payment, refund, credit note or void waits until its invoice's journal is posted;
- journals that broke a posting rule are held whole, with reason and owner.

The plan reads of the ledger only what these rules look at (:func:`ledger_view`): the history
of the proposed keys, the period's journals and the invoices that payments wait for; never the
entity's other periods. It is computed column-wise: one entry per proposed journal key, its
newest ledger version matched by key, and a mask per rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sync_core.money import checked_sum

POLICIES = ("next_open", "hold")
# a held journal, as the exception queue takes it
HELD_COLUMNS = ["entity_id", "period", "journal_key", "document_id", "event", "reason_code",
                "message", "owner"]  # fmt: skip
HEADER_COLUMNS = ["external_id", "entity_id", "erp_subsidiary_id", "period", "source_period",
                  "event", "document_id", "version", "currency", "total_debit", "line_count",
                  "content_hash", "reverses", "correction", "run_id", "memo",
                  "transaction_date"]  # fmt: skip
WAITS_FOR_INVOICE = {"payment", "refund", "credit_note", "credit_note_void", "invoice_void",
                     "invoice_uncollectible", "dispute", "dispute_won"}  # fmt: skip
# the values of a journal's first line that its headers and held rows carry
_HEAD = ("entity_id", "period", "event", "document_id", "erp_subsidiary_id", "currency", "memo",
         "transaction_date", "invoice_id")  # fmt: skip
_HASH_COLS = ["account", "erp_account", "erp_customer_id", "debit", "credit", "currency",
              "debit_functional", "credit_functional"]  # fmt: skip


@dataclass(frozen=True)
class PostingPlan:
    headers: pd.DataFrame  # one row per journal to post (ledger header columns)
    lines: pd.DataFrame  # their lines
    held: pd.DataFrame  # exception rows: entity_id, period, journal_key, reason_code, ...
    unchanged: list[str]  # journal keys already posted with the same content


def content_hash(lines: pd.DataFrame) -> pd.Series:
    """A stable hash per journal key of its lines' accounting content."""
    cols = [c for c in _HASH_COLS if c in lines]
    ordered = lines.sort_values(["journal_key", "account", "currency", "debit", "credit"])
    values = ordered[cols].astype(object)
    # a null reads "nan" whether it came as None (from storage) or NaN (from pandas); the
    # line's text is its columns joined by "|", the journal's its lines joined by newlines
    text = values.where(values.notna(), "nan").astype(str)
    row = np.array(["|".join(r) for r in zip(*(text[c].tolist() for c in cols))], dtype=object)
    # sorted by key first, so each key's lines are one run, in the order the sort gave them
    keyed = ordered["journal_key"].notna().to_numpy()
    keys, rows = ordered["journal_key"].to_numpy()[keyed], row[keyed].tolist()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else []
    bounds = zip(starts, [*starts[1:], len(keys)])
    return pd.Series(
        [hashlib.sha256("\n".join(rows[a:b]).encode()).hexdigest()[:32] for a, b in bounds],
        index=pd.Index(keys[starts], name="journal_key"),
        dtype=object,
    )


def plan_documents(proposed: pd.DataFrame) -> set[str]:
    """The documents whose ledger journals the plan of ``proposed`` looks at: the documents of
    its journals, and the invoices its payments, refunds, credits and voids wait for."""
    if proposed.empty:
        return set()
    docs = set(proposed["document_id"].dropna())
    if "invoice_id" in proposed:
        waits = proposed.loc[proposed["event"].isin(WAITS_FOR_INVOICE), "invoice_id"]
        docs |= {i for i in waits.dropna() if isinstance(i, str)}
    return docs


def ledger_view(ledger, entity_id: str, period, documents: Iterable[str]) -> pd.DataFrame:
    """The entity's ledger journals :func:`plan_postings` reads for one period: every journal
    of ``documents`` (:func:`plan_documents`) and of the documents with a journal whose events
    belong to ``period`` (``source_period``: the stale candidates, a correction posted to a
    later period included). A journal key is (entity, event, document), so each key in the
    view comes with its whole history (versions and reversals), and the plan over the view is
    the plan over the entity's whole ledger, read by the (entity, document) and
    (entity, source period) indexes instead of in full."""
    docs = set(documents)
    if period is not None:
        docs |= ledger.period_documents(entity_id, period)
    return ledger.journals(entity_id, documents=docs)


def first_open_period(period: pd.Timestamp, closed: set[pd.Timestamp]) -> pd.Timestamp:
    p = period
    while p in closed:
        p = p + pd.offsets.MonthBegin(1)
    return p


def plan_postings(
    proposed: pd.DataFrame,
    posted: pd.DataFrame,
    closed_periods: set[pd.Timestamp],
    policy: str = "next_open",
    run_id: str | None = None,
    *,
    period: pd.Timestamp | None = None,
    known_keys: set[str] | frozenset = frozenset(),
) -> PostingPlan:
    """Plan one entity's postings. ``proposed``: journal lines with ``journal_key``;
    ``posted``: the ledger's journal headers of the entity (may be empty).

    With ``period``, live journals of that period (by ``source_period``) whose key is neither
    in ``proposed`` nor in ``known_keys`` (journals proposed but held) are reversed as stale.
    Headers come in the order of the journals in ``proposed``, a journal's reversal right
    before its new version, then the stale reversals by key; held rows and ``unchanged`` in
    the same journal order.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown period policy {policy!r}; expected one of {POLICIES}")
    keep = set(known_keys) | set(proposed.get("journal_key", []))
    stale = _stale_reversals(posted, period, keep, closed_periods, policy, run_id)
    if proposed.empty:
        return _plan(*stale, [], None)
    j = _journals(proposed)
    _match_ledger(j, posted)
    todo = ~j["unchanged"]
    waiting = todo & _waits_for_invoice(j)
    closed, moved = _closed(j["period"], closed_periods)
    closed &= todo & ~waiting
    hold = closed & (policy == "hold")
    rows, parts = _post_rows(j, np.flatnonzero(todo & ~waiting & ~hold), closed, moved, run_id)
    held = _held_rows(j, waiting, hold)
    unchanged = j["key"][j["unchanged"]].tolist()
    return _plan(rows + stale[0], parts + stale[1], held + stale[2], unchanged, proposed)


def _plan(rows, parts, held, unchanged, proposed) -> PostingPlan:
    return PostingPlan(
        headers=pd.DataFrame(rows, columns=HEADER_COLUMNS),  # dtypes inferred from the rows
        lines=_assemble_lines(parts, proposed),
        held=pd.DataFrame(held) if held else pd.DataFrame(columns=HELD_COLUMNS),
        unchanged=unchanged,
    )


def _journals(proposed: pd.DataFrame) -> dict[str, np.ndarray]:
    """The proposal by journal, as column arrays in order of each key's first line: that
    line's head values (``_HEAD``, boxed like a row of the frame; None for a missing column),
    the key, its lines (positions ``order[starts[i]:starts[i + 1]]``, ascending), their count,
    content hash and debit totals (:func:`_debit_totals`)."""
    codes, keys = pd.factorize(proposed["journal_key"].to_numpy(object))
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(keys))
    starts = np.concatenate([[0], np.cumsum(counts)])
    first = proposed.iloc[order[starts[:-1]]]
    j = {c: first[c].astype(object).to_numpy() if c in first else np.full(len(keys), None)
         for c in _HEAD}  # fmt: skip
    hashes, debits = content_hash(proposed), proposed["debit"].to_numpy()
    j.update(key=keys, order=order, starts=starts, counts=counts, debits=debits,
             hash=hashes.to_numpy()[hashes.index.get_indexer(keys)],
             totals=_debit_totals(debits[order], starts))  # fmt: skip
    return j


def _match_ledger(j: dict, posted: pd.DataFrame) -> None:
    """Adds to ``j`` each journal's newest ledger version (``prev_*``, meaningful where
    ``has_prev``), whether it is live (a version already reversed, a change half posted, is
    not in the ERP's books any more) and unchanged, and the invoices with a posted journal."""
    newest = _newest(posted)
    at = np.full(len(j["key"]), -1) if newest is None else newest.index.get_indexer(j["key"])
    for c in ("external_id", "version", "content_hash", "total_debit", "line_count"):
        j[f"prev_{c}"] = at if newest is None else newest[c].to_numpy(object)[at]
    reversed_ids = set(posted["reverses"].dropna()) if len(posted) else set()
    j["has_prev"] = at >= 0
    j["live"] = j["has_prev"] & ~pd.Series(j["prev_external_id"]).isin(reversed_ids).to_numpy()
    j["unchanged"] = j["live"] & (j["prev_content_hash"] == j["hash"])
    invoices = posted.loc[posted["event"] == "invoice_finalized"] if len(posted) else None
    j["posted_invoices"] = set() if invoices is None else set(invoices["document_id"])


def _debit_totals(debits: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 sum, exact) of each run ``starts[i]:starts[i + 1]`` of ``debits``: the check of
    :func:`checked_sum` (a float64 sum near the int64 edge, or far from the int64 sum, which
    wrapped); the others (and every non-int64 column) go through ``checked_sum``."""
    if debits.dtype.kind != "i":
        return np.zeros(len(starts) - 1, np.int64), np.zeros(len(starts) - 1, bool)
    fast = np.add.reduceat(debits.astype(np.int64), starts[:-1])
    approx = np.add.reduceat(debits.astype(np.float64), starts[:-1])
    return fast, (np.abs(approx) < 2.0**62) & (np.abs(approx - fast) <= 2.0**40)


def _waits_for_invoice(j: dict) -> np.ndarray:
    """A payment, refund, credit or void whose invoice has no journal, posted or proposed."""
    now = set(j["document_id"][j["event"] == "invoice_finalized"])
    inv = j["invoice_id"]
    is_id = np.fromiter((isinstance(i, str) for i in inv), bool, len(inv))
    known = pd.Series(inv).isin(j["posted_invoices"] | now).to_numpy()
    return pd.Series(j["event"]).isin(WAITS_FOR_INVOICE).to_numpy() & is_id & ~known


def _closed(periods: np.ndarray, closed_periods) -> tuple[np.ndarray, np.ndarray]:
    """Per value: whether it is a closed period, and the period it posts in (the first open
    one when closed, else itself); each distinct period is looked up once."""
    codes, uniques = pd.factorize(periods, use_na_sentinel=False)
    shut = np.array([u in closed_periods for u in uniques], dtype=bool)
    to = np.empty(len(uniques), dtype=object)
    to[:] = [first_open_period(u, closed_periods) if c else u for u, c in zip(uniques, shut)]
    return shut[codes], np.where(shut[codes], to[codes], periods)


def _held_rows(j: dict, waiting: np.ndarray, hold: np.ndarray) -> list[dict]:
    rows = []
    for i in np.flatnonzero(waiting | hold):
        head = {c: j[c][i] for c in ("entity_id", "period", "document_id", "event")}
        if waiting[i]:
            message = f"invoice {j['invoice_id'][i]} has no posted journal yet"
            rows.append(_held(head, j["key"][i], "waiting_for_invoice", "integration", message))
        else:
            message = f"ERP period {head['period']:%Y-%m} is closed"
            rows.append(_held(head, j["key"][i], "period_closed", "finance", message))
    return rows


def _post_rows(j: dict, post: np.ndarray, closed, moved, run_id) -> tuple[list, list]:
    """Header rows (tuples of HEADER_COLUMNS) and line parts of the journals ``post``: for
    each, the reversal of its live version (if any) right before its new version."""
    live = j["live"][post]
    at = np.repeat(post, 1 + live)  # the journal of each header row
    rev = np.zeros(len(at), bool)
    rev[(np.cumsum(1 + live) - 1 - live)[live]] = True  # a live journal's first row
    version = [int(v) + 1 if p else 1 for v, p in zip(j["prev_version"][post], j["has_prev"][post])]
    eid = [f"{k}-v{v}" for k, v in zip(j["key"][post], version)]
    fast, exact = j["totals"]
    total = fast[post].tolist()
    for k in np.flatnonzero(~exact[post]):  # exactly, or AmountOverflow naming the journal
        rows = j["order"][j["starts"][post[k]] : j["starts"][post[k] + 1]]
        total[k] = checked_sum(j["debits"][rows], f"total debit of {eid[k]}")
    prev = {c: j[f"prev_{c}"][at[rev]] for c in ("external_id", "version", "total_debit",
                                                 "line_count")}  # fmt: skip

    def pick(new, reversal):  # one column: new-version values, reversal values
        out = np.empty(len(at), dtype=object)
        out[~rev], out[rev] = new, reversal
        return out

    when = moved[at]
    cols = {c: j[c][at] for c in ("entity_id", "erp_subsidiary_id", "event", "document_id",
                                  "currency")}  # fmt: skip
    cols.update(
        external_id=pick(eid, [f"{e}-REV" for e in prev["external_id"]]),
        period=when,
        source_period=j["period"][at],
        version=pick(version, [int(v) for v in prev["version"]]),
        total_debit=pick(total, [int(v) for v in prev["total_debit"]]),
        line_count=pick(j["counts"][post].tolist(), [int(v) for v in prev["line_count"]]),
        content_hash=pick(j["hash"][post], "reversal"),
        reverses=pick(None, prev["external_id"]),
        correction=closed[at].tolist(),
        run_id=[run_id] * len(at),
        memo=pick(j["memo"][post], [f"Reversal of {e}" for e in prev["external_id"]]),
        transaction_date=_transaction_dates(pick(j["transaction_date"][post], None), when),
    )
    starts, order = j["starts"].tolist(), j["order"]
    parts = [("reverse", src, e) if r else ("new", order[starts[i] : starts[i + 1]], e)
             for i, r, src, e in zip(at.tolist(), rev.tolist(), cols["reverses"],
                                     cols["external_id"])]  # fmt: skip
    return list(zip(*(cols[c] for c in HEADER_COLUMNS))), parts


def _stale_reversals(posted, period, keep: set[str], closed_periods, policy, run_id):
    """(header rows, line parts, held rows) reversing the live journals of ``period`` whose
    key is not in ``keep``, by key."""
    if period is None or posted is None or posted.empty:
        return [], [], []
    newest = _newest(posted)
    cand = newest[~newest.index.isin(keep)
                  & ~newest["external_id"].isin(set(posted["reverses"].dropna()))]  # fmt: skip
    codes, sources = pd.factorize(cand["source_period"].to_numpy(object), use_na_sentinel=False)
    mine = np.array([_utc(s) == period for s in sources], dtype=bool)[codes]
    headers, parts, held = [], [], []
    for key, prev in sorted(zip(cand.index[mine], cand[mine].to_dict("records"))):
        source = _utc(prev["source_period"])
        when, correction = source, False
        if when in closed_periods:
            if policy == "hold":
                held.append(_held({**prev, "period": source}, key, "period_closed", "finance",
                                  f"ERP period {source:%Y-%m} is closed; the stale journal "
                                  f"{prev['external_id']} waits for its reversal"))  # fmt: skip
                continue
            when, correction = first_open_period(when, closed_periods), True
        eid, rev_key = prev["external_id"], f"{prev['external_id']}-REV"
        headers.append((rev_key, prev["entity_id"], prev.get("erp_subsidiary_id"), when, source,
                        prev["event"], prev["document_id"], int(prev["version"]),
                        prev["currency"], int(prev["total_debit"]), int(prev["line_count"]),
                        "reversal", eid, correction, run_id, f"Reversal of {eid}",
                        _transaction_date(None, when)))  # fmt: skip
        parts.append(("reverse", eid, rev_key))
    return headers, parts, held


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _newest(posted: pd.DataFrame | None) -> pd.DataFrame | None:
    """The newest non-reversal version of each journal key in the ledger, indexed by key
    (and with a ``journal_key`` column); None for an empty ledger."""
    if posted is None or posted.empty:
        return None
    live = posted[posted["reverses"].isna()].copy()
    live["journal_key"] = live["external_id"].str.replace(r"-v\d+$", "", regex=True)
    newest = live.sort_values("version").drop_duplicates("journal_key", keep="last")
    return newest.set_index(newest["journal_key"].rename(None))


def latest_versions(posted: pd.DataFrame) -> dict[str, dict]:
    """journal key -> the newest non-reversal version in the ledger (the planner itself
    works on the frame, :func:`_newest`)."""
    newest = _newest(posted)
    return {} if newest is None else {r["journal_key"]: r for r in newest.to_dict("records")}


def _held(head, key, code, owner, message) -> dict:
    values = (head["entity_id"], head["period"], key, head["document_id"], head["event"], code,
              message, owner)  # fmt: skip
    return dict(zip(HELD_COLUMNS, values, strict=True))


def _transaction_date(date, period: pd.Timestamp) -> pd.Timestamp:
    """The event's day when it falls in the posting period, else the posting period's last day
    (a reversal, or a correction moved out of a closed period)."""
    end = (_utc(period) + pd.offsets.MonthEnd(0)).normalize()
    if date is None or pd.isna(date):
        return end
    d = _utc(date)
    return d if _utc(period) <= d <= end else end


def _transaction_dates(dates: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """:func:`_transaction_date` of each (date, period) pair, computed once per distinct pair."""
    if not len(dates):
        return np.empty(0, dtype=object)
    dc, du = pd.factorize(dates, use_na_sentinel=False)
    pc, pu = pd.factorize(periods, use_na_sentinel=False)
    pairs, inverse = np.unique(dc * len(pu) + pc, return_inverse=True)
    out = np.empty(len(pairs), dtype=object)
    out[:] = [_transaction_date(du[p // len(pu)], pu[p % len(pu)]) for p in pairs]
    return out[inverse]


def _assemble_lines(parts, proposed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Lines of new journals (``("new", positions in proposed, external id)``), and
    placeholders for reversals that the caller fills from the ledger (``reversal_lines``),
    in the order of ``parts``: all new lines taken from ``proposed`` at once, all
    placeholders in one frame, the two concatenated (the kind of the first part first, as a
    concatenation part by part orders its columns) and put in the order of ``parts``."""
    if not parts:
        return pd.DataFrame()
    is_new = np.array([kind == "new" for kind, _, _ in parts], dtype=bool)
    new = [(src, eid) for (_, src, eid), n in zip(parts, is_new) if n]
    rev = [(src, eid) for (_, src, eid), n in zip(parts, is_new) if not n]
    sizes = np.array([len(src) if n else 1 for (_, src, _), n in zip(parts, is_new)], int)
    blocks = {}
    if new:
        pos = np.concatenate([rows for rows, _ in new])
        ids = np.repeat([eid for _, eid in new], sizes[is_new])
        blocks[True] = proposed.iloc[pos].assign(external_id=ids)
    if rev:
        blocks[False] = pd.DataFrame({"external_id": [e for _, e in rev],
                                      "reverses": [r for r, _ in rev]})  # fmt: skip
    first = bool(is_new[0])
    out = pd.concat([blocks[k] for k in (first, not first) if k in blocks], ignore_index=True)
    if len(blocks) == 1:
        return out
    row_new = np.repeat(is_new, sizes)
    take = np.empty(len(row_new), dtype=np.int64)
    offset = {first: 0, not first: len(blocks[first])}
    take[row_new] = offset[True] + np.arange(row_new.sum())
    take[~row_new] = offset[False] + np.arange(len(rev))
    return out.take(take).reset_index(drop=True)


def reversal_lines(original_lines: pd.DataFrame, reversal_id: str) -> pd.DataFrame:
    """The lines of a reversing journal: debits and credits swapped, same accounts."""
    r = original_lines.copy()
    r["external_id"] = reversal_id
    r[["debit", "credit"]] = original_lines[["credit", "debit"]].to_numpy()
    r[["debit_functional", "credit_functional"]] = original_lines[
        ["credit_functional", "debit_functional"]
    ].to_numpy()
    return r
