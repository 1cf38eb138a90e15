"""Incremental recognition: recognize only the documents that changed, keep the rest.

The stored state of a legal entity is one *document index* row per document (its content
hash, the revenue close it was recognized under, its last month) and the document's rows:
schedule rows, accounting lines and quarantined records, each with its ``document_key``.
:func:`plan` compares the index with the documents as they are now:

- a document whose hash is new or differs is recognized again (**changed**);
- a stored document that no longer exists loses its rows (**removed**);
- a document recognized before the entity's revenue close moved into its months is
  recognized again too: the close turns what changed in a newly closed month into
  corrections in the first open month, measured against what was booked;
- every other document keeps its stored rows (**reused**).

:func:`recognize_documents` runs the engine over the changed documents only (documents are
independent, :mod:`sync_core.revenue.documents`) and tags every output row with its
document. A month's schedule, rollforward, waterfall and accounting lines are then read
from the stored rows of that month (``sync_core.warehouse.documents``). A full rebuild is
the same call with every document changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sync_core.revenue.documents import (
    DocumentKeys,
    keyed,
    line_keys,
    quarantine_keys,
    schedule_keys,
    select,
)
from sync_core.revenue.engine import recognize
from sync_core.subledger import with_sources

INDEX_COLUMNS = ["entity_id", "document_key", "content_hash", "closed_through", "last_period"]


@dataclass(frozen=True)
class Plan:
    changed: list[str]
    removed: list[str]
    reused: int


def plan(
    hashes: pd.Series,
    stored: pd.DataFrame,
    closed_through: pd.Timestamp | None,
    rebuild: bool = False,
) -> Plan:
    """What to recognize again (see the module docstring). ``stored``: the index rows."""
    idx = stored.set_index("document_key") if len(stored) else None
    removed = sorted(set(idx.index) - set(hashes.index)) if idx is not None else []
    if rebuild or idx is None:
        return Plan(sorted(hashes.index), removed, 0)
    old_hash = idx["content_hash"].reindex(hashes.index)
    changed = old_hash.isna().to_numpy() | (old_hash.to_numpy() != hashes.to_numpy())
    if closed_through is not None:
        floor = pd.Timestamp("1900-01-01", tz="UTC")
        was = pd.to_datetime(idx["closed_through"], utc=True).reindex(hashes.index).fillna(floor)
        last = pd.to_datetime(idx["last_period"], utc=True).reindex(hashes.index).fillna(floor)
        # the close moved past what the document was recognized under, into its months
        changed |= ((was < closed_through) & (last > was)).to_numpy()
    ch = sorted(hashes.index[changed])
    return Plan(ch, removed, int(len(hashes) - len(ch)))


@dataclass(frozen=True)
class Recognized:
    schedule: pd.DataFrame
    accounting_lines: pd.DataFrame
    quarantine: pd.DataFrame
    index: pd.DataFrame  # INDEX_COLUMNS, one row per recognized document


def recognize_documents(
    frames: dict[str, pd.DataFrame],
    keys: DocumentKeys,
    documents: list[str],
    hashes: pd.Series,
    entity: str,
    closed_through: pd.Timestamp | None = None,
    booked: pd.DataFrame | None = None,
) -> Recognized:
    """The engine over ``documents`` of ``frames`` (one entity, ``legal_entities`` included),
    every output row tagged with its ``document_key``; ``booked`` = the schedule rows already
    booked for closed months (only those of these documents matter)."""
    part = select(frames, keys, documents)
    closed = {entity: closed_through} if closed_through is not None else None
    result = recognize(**part, closed_through=closed, booked=booked if closed else None)
    sched = keyed(result.schedule, schedule_keys(result.schedule))
    lines = with_sources(result.accounting_lines, part)
    lines = keyed(lines, line_keys(lines, keys))
    quarantine = keyed(result.quarantine, quarantine_keys(result.quarantine, keys))
    last = sched.groupby("document_key")["period"].max() if len(sched) else pd.Series()
    index = pd.DataFrame({
        "entity_id": entity,
        "document_key": documents,
        "content_hash": hashes.reindex(documents).to_numpy(object),
        "closed_through": closed_through,
        "last_period": pd.to_datetime(pd.Series(documents).map(last), utc=True).to_numpy(),
    })  # fmt: skip
    index["closed_through"] = pd.to_datetime(index["closed_through"], utc=True)
    index["last_period"] = pd.to_datetime(index["last_period"], utc=True)
    return Recognized(sched, lines, quarantine, index[INDEX_COLUMNS])
