"""Recognition against the warehouse: refresh an entity's document store, derive its months.

:func:`refresh` reads the entity's canonical documents, hashes each document
(:mod:`sync_core.revenue.documents`), recognizes only the documents that are new or changed
(:mod:`sync_core.revenue.incremental`) in batches of at most ``BATCH`` documents, and
replaces their rows in the document store (:mod:`sync_core.warehouse.documents`).
:func:`derive` builds a month's schedule rows, rollforward, waterfall, accounting lines and
quarantine from the stored rows of that month (and the month before it, for the opening
balances): its cost is the month's rows, not the entity's history.

``rebuild=True`` recognizes every document again: the full rebuild the incremental path is
tested against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from sync_core.revenue import deferred_waterfall, rollforward
from sync_core.revenue.documents import DOCUMENT_FRAMES, document_hashes, document_keys
from sync_core.revenue.incremental import Plan, plan, recognize_documents
from sync_core.warehouse.documents import DocumentStore

UPSTREAM = list(DOCUMENT_FRAMES)  # the canonical objects a document is made of
BATCH = 20_000  # documents recognized at once: bounds the engine's memory


def entity_history(wh, entity: str) -> dict[str, pd.DataFrame]:
    """Every canonical document of one legal entity, as the engine takes them."""
    frames = {name: wh.read(name, entity) for name in UPSTREAM}
    frames["legal_entities"] = wh.read("legal_entities").query("entity_id == @entity")
    return frames


def _settings(entities: pd.DataFrame) -> str:
    cols = ["entity_id", "functional_currency", "recognition_method"]
    return json.dumps(entities[[c for c in cols if c in entities]].astype(str).to_dict("records"))


@dataclass(frozen=True)
class Refresh:
    documents: int
    recognized: int
    removed: int
    reused: int


def refresh(wh, entity: str, rebuild: bool = False) -> Refresh:
    """Bring the entity's document store up to date with its canonical documents."""
    frames = entity_history(wh, entity)
    keys = document_keys(frames)
    hashes = document_hashes(frames, keys, _settings(frames["legal_entities"]))
    store = DocumentStore(wh)
    closed = wh.closed_through().get(entity)
    todo: Plan = plan(hashes, store.index(entity), closed, rebuild=rebuild)
    removed = todo.removed
    for i in range(0, max(len(todo.changed), 1 if removed else 0), BATCH):
        batch = todo.changed[i : i + BATCH]
        booked = store.booked(entity, closed, batch) if closed is not None and batch else None
        rec = recognize_documents(frames, keys, batch, hashes, entity, closed, booked)
        store.replace(entity, removed, rec)
        removed = []
    return Refresh(len(hashes), len(todo.changed), len(todo.removed), todo.reused)


def derive(wh, entity: str, periods: list[pd.Timestamp]) -> dict[str, pd.DataFrame]:
    """The months' outputs from the document store: ``revenue_schedules``,
    ``revenue_rollforward``, ``deferred_revenue_waterfall``, ``accounting_lines`` and
    ``quarantine``, each with a ``period`` column holding only ``periods``."""
    first, last = min(periods), max(periods)
    rows = DocumentStore(wh).months(entity, first - pd.DateOffset(months=1), last)
    sched = rows["schedule"]
    wanted = pd.DatetimeIndex(periods)
    in_range = lambda df: df[df["period"].isin(wanted)].reset_index(drop=True)  # noqa: E731
    roll = rollforward(sched)
    return {
        "revenue_schedules": in_range(sched),
        "revenue_rollforward": in_range(roll) if len(roll) else roll,
        "deferred_revenue_waterfall": deferred_waterfall(in_range(sched)),
        "accounting_lines": in_range(rows["accounting_lines"]),
        "quarantine": in_range(rows["quarantine"]),
    }
