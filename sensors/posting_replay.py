"""Replays open posting exceptions that something can now fix, through the same idempotent
posting path.

The policy is ``sync_core.erp.replay_policy`` (what each reason waits for, backoff, run keys);
this sensor only reads the state the rows wait for and asks for the runs it says are due:

- ``erp_unavailable`` rows on their backoff timer (``next_attempt_at`` in the queue);
- ``waiting_for_invoice`` rows once their invoice's journal is in the posting log;
- rows that need a person when what they wait for changed since the last evaluation: the
  entity's customers' ERP ids (warehouse ``customers``), its ERP periods and revenue close,
  its approvals, or ``config/erp.yaml`` (the chart and mappings), each compared with the
  fingerprint kept in the cursor (JSON ``{state key: fingerprint}``). Never on a timer.

Runs are tagged ``sync/trigger=replay`` (one at a time, by the run queue's tag limit) with a
negative ``dagster/priority``, so an operator's run is dequeued first.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from resources import WarehouseResource
from resources.erp import ErpResource
from sync_assets.jobs import posting_replay_job
from sync_assets.partitions import partition_key
from sync_core.erp import replay_policy as policy
from sync_core.erp.approvals import proposal_approvals
from sync_core.erp.config import DEFAULT_PATH

REPLAY_PRIORITY = "-10"  # below operator runs, schedules and micro-batches (priority 0)


def observe(erp: ErpResource, warehouse: WarehouseResource, needed: dict) -> dict[str, str]:
    """The current fingerprint of every state the open rows wait for (``needed``:
    ``replay_policy.needed_state``)."""
    out: dict[str, str] = {}
    if needed[policy.CONFIG]:
        path = Path(erp.config_path) if erp.config_path else DEFAULT_PATH
        out[policy.CONFIG] = policy.fingerprint([path.read_bytes().hex()])
    wh = warehouse.get() if needed[policy.CUSTOMERS] or needed[policy.PERIODS] else None
    for entity in sorted(needed[policy.CUSTOMERS]):
        c = wh.read("customers", entity, columns=["customer_id", "erp_customer_id"])
        known = c[c["erp_customer_id"].notna()]
        out[policy.state_key(policy.CUSTOMERS, entity)] = policy.fingerprint(
            f"{a}={b}" for a, b in zip(known["customer_id"], known["erp_customer_id"], strict=True)
        )
    closed_through = wh.closed_through() if needed[policy.PERIODS] else {}
    for entity in sorted(needed[policy.PERIODS]):
        months = [f"{p:%Y-%m}" for p in erp.closed_periods(entity)]
        out[policy.state_key(policy.PERIODS, entity)] = policy.fingerprint(
            [*months, f"revenue closed through {closed_through.get(entity)}"]
        )
    if needed[policy.APPROVAL]:
        erp.approvals()  # creates the table when missing
        t = proposal_approvals
        with erp.engine().connect() as conn:
            rows = conn.execute(sa.select(t.c.entity_id, t.c.period, t.c.fingerprint)).all()
        for entity in sorted(needed[policy.APPROVAL]):
            out[policy.state_key(policy.APPROVAL, entity)] = policy.fingerprint(
                f"{p}:{f}" for e, p, f in rows if e == entity
            )
    return out


@dg.sensor(
    job=posting_replay_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute: a posting_replay run per entity x period whose open exceptions "
    "are due (ERP unavailable: backoff timer; the rest: when what they wait for changed).",
)
def posting_replay_sensor(
    context: dg.SensorEvaluationContext, erp: ErpResource, warehouse: WarehouseResource
):
    before = json.loads(context.cursor) if context.cursor else {}
    queue = erp.queue()
    rows = queue.open()
    if rows.empty:
        return dg.SkipReason("the posting exception queue is empty")
    needed = policy.needed_state(rows)
    after = observe(erp, warehouse, needed)
    posted = queue.posted_invoices(needed[policy.INVOICE])
    replays = policy.plan_replays(rows, datetime.now(UTC), before, after, posted)
    # only what the open rows wait for now: the cursor does not grow with history (a state
    # needed again later counts as changed once, as on the first evaluation)
    cursor = json.dumps(after, sort_keys=True)
    if not replays:
        waiting = rows.apply(
            lambda r: policy.schedule(r["reason_code"], r["owner"], r["attempts"],
                                      r["last_seen"])[0], axis=1)  # fmt: skip
        counts = ", ".join(f"{k}: {v}" for k, v in waiting.value_counts().sort_index().items())
        return dg.SensorResult(
            skip_reason=f"{len(rows)} open exceptions, none due ({counts})", cursor=cursor
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=r.run_key,
                partition_key=partition_key(r.entity_id, r.period),
                tags={
                    "sync/trigger": "replay",
                    "dagster/priority": REPLAY_PRIORITY,
                    "sync/replay_because": ",".join(r.because),
                },  # fmt: skip
            )
            for r in replays
        ],
        cursor=cursor,
    )
