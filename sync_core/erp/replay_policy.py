"""What the posting replay may retry, and when: pure functions over exception-queue rows.

Every open row of ``posting_exceptions`` waits for something. What it waits for decides when
the replay sensor asks for a run of its partition (``sensors/posting_replay.py``):

| reason | waits for | replayed |
|---|---|---|
| ``erp_unavailable`` (429, 5xx, ``CONCURRENCY_LIMIT_EXCEEDED``, timeouts, no answer) | time | on a timer: ``base x 2^(attempts-1)`` after it was last seen, capped; after ``max_attempts`` it *gave up*: still open, no longer retried, its owner is told |
| ``waiting_for_invoice`` | its invoice | when the invoice's journal is in the posting log |
| ``customer_erp_id`` | master data | when the entity's customers' ERP ids change |
| ``invalid_reference`` | master data / mapping | when the customers' ERP ids or ``config/erp.yaml`` change |
| ``account_mapped`` and the integration refusals (``invalid_login``, ``insufficient_permission``, ``invalid_content``, ``invalid_id``, ``unbalanced``, ``erp_rejected``) | the chart / the configuration | when ``config/erp.yaml`` changes (its hash) |
| ``period_closed``, ``period_locked`` | finance | when the entity's ERP periods or revenue close change (a period reopens) |
| ``awaiting_approval`` | a controller | when an approval of the entity is recorded |
| ``document_held``, ``journal_balanced`` | the source document | never: the billing runs that bring the changed document re-propose it |

A reason not listed waits for what its owner can change (never a timer). A row that needs a
person is never retried on a timer: its attempts only count the runs that saw it.

The run key of a replay is the partition plus what it replays *for*: the due times of its
timer rows, the invoices that posted, the fingerprints that changed. The same state asks for
the same run (the daemon launches it once); a run that sees a timer row again moves its due
time and so the next key. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

TIMER = "timer"  # retried on a timer, with backoff
GAVE_UP = "gave_up"  # a timer row past max_attempts: open, not retried, its owner told
CUSTOMERS = "customer_erp_ids"
CONFIG = "erp_config"
PERIODS = "erp_periods"
INVOICE = "invoice_posted"
APPROVAL = "approval"
SOURCE = "source_change"
CHANGE_TRIGGERS = (CUSTOMERS, CONFIG, PERIODS, APPROVAL)  # compared with a fingerprint

WAITS_FOR: dict[str, tuple[str, ...]] = {
    "erp_unavailable": (TIMER,), "TIMEOUT": (TIMER,), "CONNECTION_ERROR": (TIMER,),
    "waiting_for_invoice": (INVOICE,),
    "customer_erp_id": (CUSTOMERS,),
    "invalid_reference": (CUSTOMERS, CONFIG),
    "account_mapped": (CONFIG,),
    "invalid_login": (CONFIG,), "insufficient_permission": (CONFIG,),
    "invalid_content": (CONFIG,), "invalid_id": (CONFIG,), "unbalanced": (CONFIG,),
    "erp_rejected": (CONFIG,),
    "period_closed": (PERIODS,), "period_locked": (PERIODS,),
    "awaiting_approval": (APPROVAL,),
    "document_held": (SOURCE,), "journal_balanced": (SOURCE,),
}  # fmt: skip
BY_OWNER = {"integration": (CONFIG,), "master_data": (CUSTOMERS, CONFIG),
            "finance": (PERIODS, CONFIG)}  # fmt: skip
# "invoice in_1 has no posted journal yet" (posting plan), "invoice in_1 was refused by the
# ERP in this run" (poster)
_INVOICE = re.compile(r"\binvoice (\S+) (?:has no posted journal|was refused)")


@dataclass(frozen=True)
class Backoff:
    """Timer retries: ``base_s x 2^(attempts-1)`` after the last attempt, at most ``cap_s``;
    no more automatic retries once a row has ``max_attempts``."""

    base_s: int = 300
    cap_s: int = 6 * 3600
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        n = max(int(attempts), 1) - 1
        return timedelta(seconds=min(self.base_s * 2 ** min(n, 32), self.cap_s))


DEFAULT_BACKOFF = Backoff()


def waits_for(reason: str | None, owner: str | None) -> tuple[str, ...]:
    """What a row with this reason (and owner) waits for (module docstring)."""
    return WAITS_FOR.get(str(reason), BY_OWNER.get(str(owner), (CONFIG,)))


def schedule(reason, owner, attempts: int, last_seen: datetime,
             backoff: Backoff = DEFAULT_BACKOFF) -> tuple[str, datetime | None]:  # fmt: skip
    """(``replay``, ``next_attempt_at``) of a row as the queue stores them: ``timer`` and
    its due time, ``gave_up`` past ``max_attempts``, else the triggers it waits for
    (``customer_erp_ids``, ``erp_config,...``) and no due time."""
    triggers = waits_for(reason, owner)
    if TIMER not in triggers:
        return ",".join(triggers), None
    if int(attempts) >= backoff.max_attempts:
        return GAVE_UP, None
    return TIMER, pd.Timestamp(last_seen).to_pydatetime() + backoff.delay(attempts)


def fingerprint(values: Iterable) -> str:
    """A short stable digest of ``values`` (sorted by their text)."""
    text = "\n".join(sorted(str(v) for v in values))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def state_key(trigger: str, entity_id: str) -> str:
    """The cursor key of a trigger's fingerprint: the configuration is one for all entities."""
    return CONFIG if trigger == CONFIG else f"{trigger}:{entity_id}"


def invoice_of(message) -> str | None:
    """The invoice a ``waiting_for_invoice`` row waits for, from its message."""
    m = _INVOICE.search(str(message or ""))
    return m.group(1) if m else None


def needed_state(rows: pd.DataFrame) -> dict[str, set[str]]:
    """trigger -> entities whose fingerprint the sensor must read for ``rows``; ``invoice``
    -> the ``entity|invoice`` pairs whose posting it must look up."""
    out: dict[str, set[str]] = {t: set() for t in (*CHANGE_TRIGGERS, INVOICE)}
    for r in rows.itertuples(index=False):
        for t in waits_for(r.reason_code, r.owner):
            if t in CHANGE_TRIGGERS:
                out[t].add(r.entity_id)
            elif t == INVOICE and (inv := invoice_of(r.message)):
                out[INVOICE].add(f"{r.entity_id}|{inv}")
    return out


@dataclass(frozen=True)
class Replay:
    """One run of ``entity_id`` x ``period`` (``YYYY-MM-01``) for these ``reasons``."""

    entity_id: str
    period: str
    run_key: str
    because: tuple[str, ...]  # the kinds of trigger, sorted (timer, customer_erp_ids, ...)
    journals: int  # open rows it is due for


def _month(value) -> str:
    return f"{pd.Timestamp(value):%Y-%m}-01"


def _due_at(row, backoff: Backoff) -> tuple[str, datetime | None]:
    replay, due = schedule(row.reason_code, row.owner, row.attempts, row.last_seen, backoff)
    stored = getattr(row, "next_attempt_at", None)
    if replay == TIMER and stored is not None and not pd.isna(stored):
        due = pd.Timestamp(stored).to_pydatetime()
    return replay, due


def _aware(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t


def plan_replays(
    rows: pd.DataFrame,
    now: datetime,
    before: Mapping[str, str],
    after: Mapping[str, str],
    posted_invoices: set[str] | frozenset = frozenset(),
    backoff: Backoff = DEFAULT_BACKOFF,
) -> list[Replay]:
    """The replays due for the open ``rows`` at ``now``: a timer row whose due time passed,
    a ``waiting_for_invoice`` row whose ``entity|invoice`` is in ``posted_invoices``, a row
    waiting for a change whose fingerprint in ``after`` differs from ``before`` (the sensor
    cursor; a fingerprint never seen counts as changed, so what changed before the sensor
    first looked is replayed once). One :class:`Replay` per partition, sorted."""
    due: dict[tuple[str, str], list[tuple[str, str]]] = {}
    now = _aware(now)
    for r in rows.itertuples(index=False):
        replay, at = _due_at(r, backoff)
        tokens = []
        if replay == TIMER and at is not None and _aware(at) <= now:
            tokens.append((TIMER, f"{r.journal_key}@{_aware(at).isoformat()}"))
        for t in replay.split(","):
            if t in CHANGE_TRIGGERS:
                k = state_key(t, r.entity_id)
                if after.get(k) is not None and after.get(k) != before.get(k):
                    tokens.append((t, f"{k}={after[k]}"))
            elif t == INVOICE and (inv := invoice_of(r.message)):
                if f"{r.entity_id}|{inv}" in posted_invoices:
                    tokens.append((INVOICE, f"{r.entity_id}|{inv}"))
        if tokens:
            due.setdefault((r.entity_id, _month(r.period)), []).append(tokens)
    out = []
    for (entity, period), per_row in sorted(due.items()):
        flat = sorted({tok for toks in per_row for tok in toks})
        digest = fingerprint(f"{kind}:{value}" for kind, value in flat)
        out.append(Replay(entity, period, f"replay-{entity}-{period}-{digest}",
                          tuple(sorted({kind for kind, _ in flat})), len(per_row)))  # fmt: skip
    return out
