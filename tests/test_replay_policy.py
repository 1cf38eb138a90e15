"""The replay policy (sync_core.erp.replay_policy): what is retried when."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from sync_core.erp import replay_policy as rp

NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def row(key, reason, owner, attempts=1, seen=NOW, message="", period="2025-03-01", **kw):
    return {"entity_id": "US01", "period": pd.Timestamp(period), "journal_key": key,
            "reason_code": reason, "owner": owner, "attempts": attempts, "last_seen": seen,
            "message": message, **kw}  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "owner", "waits"),
    [
        ("erp_unavailable", "integration", (rp.TIMER,)),
        ("waiting_for_invoice", "integration", (rp.INVOICE,)),
        ("customer_erp_id", "master_data", (rp.CUSTOMERS,)),
        ("invalid_reference", "master_data", (rp.CUSTOMERS, rp.CONFIG)),
        ("account_mapped", "finance", (rp.CONFIG,)),
        ("period_closed", "finance", (rp.PERIODS,)),
        ("period_locked", "finance", (rp.PERIODS,)),
        ("invalid_login", "integration", (rp.CONFIG,)),
        ("insufficient_permission", "integration", (rp.CONFIG,)),
        ("invalid_content", "integration", (rp.CONFIG,)),
        ("awaiting_approval", "finance", (rp.APPROVAL,)),
        ("document_held", "integration", (rp.SOURCE,)),
        ("something_new", "finance", (rp.PERIODS, rp.CONFIG)),  # by owner, never a timer
    ],
)
def test_what_each_reason_waits_for(reason, owner, waits):
    assert rp.waits_for(reason, owner) == waits


def test_backoff_doubles_from_five_minutes_caps_at_six_hours_then_gives_up():
    delays = [rp.schedule("erp_unavailable", "integration", n, NOW)[1] - NOW for n in range(1, 10)]
    assert delays[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert max(delays) == timedelta(hours=6) and delays[-1] == timedelta(hours=6)
    assert rp.schedule("erp_unavailable", "integration", 10, NOW) == (rp.GAVE_UP, None)
    # a reason that needs a person has no due time, however many attempts
    assert rp.schedule("customer_erp_id", "master_data", 500, NOW) == ("customer_erp_ids", None)


def test_plan_replays_timer_due_and_stable_keys():
    rows = pd.DataFrame([
        row("A", "erp_unavailable", "integration", seen=NOW - timedelta(minutes=6)),
        row("B", "erp_unavailable", "integration", seen=NOW - timedelta(minutes=1),
            period="2025-04-01"),
        row("C", "erp_unavailable", "integration", attempts=10, seen=NOW - timedelta(days=9),
            period="2025-05-01"),
    ])  # fmt: skip
    (due,) = rp.plan_replays(rows, NOW, {}, {})
    assert (due.entity_id, due.period, due.because, due.journals) == (
        "US01", "2025-03-01", ("timer",), 1)  # fmt: skip
    assert rp.plan_replays(rows, NOW + timedelta(minutes=1), {}, {})[0].run_key == due.run_key
    later = rp.plan_replays(rows, NOW + timedelta(minutes=5), {}, {})
    assert [r.period for r in later] == ["2025-03-01", "2025-04-01"]  # C gave up


def test_plan_replays_on_changed_fingerprints_and_posted_invoices():
    rows = pd.DataFrame([
        row("A", "customer_erp_id", "master_data"),
        row("B", "period_closed", "finance", period="2025-04-01"),
        row("C", "waiting_for_invoice", "integration", period="2025-05-01",
            message="invoice in_9 was refused by the ERP in this run"),
        row("D", "document_held", "integration", period="2025-06-01"),
    ])  # fmt: skip
    need = rp.needed_state(rows)
    assert need[rp.CUSTOMERS] == {"US01"} and need[rp.INVOICE] == {"US01|in_9"}
    state = {"customer_erp_ids:US01": "c1", "erp_periods:US01": "p1"}
    assert [r.period for r in rp.plan_replays(rows, NOW, {}, state)] == [
        "2025-03-01", "2025-04-01"]  # never looked at: once  # fmt: skip
    assert rp.plan_replays(rows, NOW, state, state) == []
    moved = {**state, "erp_periods:US01": "p2"}
    (r,) = rp.plan_replays(rows, NOW, state, moved, set())
    assert (r.period, r.because) == ("2025-04-01", ("erp_periods",))
    (inv,) = rp.plan_replays(rows, NOW, state, state, {"US01|in_9"})
    assert (inv.period, inv.because) == ("2025-05-01", ("invoice_posted",))
    assert rp.invoice_of("invoice in_7 has no posted journal yet") == "in_7"
