"""Reconciliation: the billing subledger against the GL read back from the ERP (pure).

Per legal entity x period: balances per account on both sides
(:mod:`~sync_core.reconcile.balances`), the listed reconciling items that explain a
difference (:mod:`~sync_core.reconcile.items`), the unexplained drift with its severity by
materiality (:mod:`~sync_core.reconcile.drift`), and completeness: every document posted
exactly once or held with a reason (:mod:`~sync_core.reconcile.completeness`).
"""

from sync_core.reconcile.balances import (
    BALANCE_COLUMNS,
    KINDS,
    MOVEMENT_COLUMNS,
    functional_known,
    gl_balances,
    line_balances,
    movements,
    subledger_balances,
    through,
)
from sync_core.reconcile.completeness import (
    OFFENDER_COLUMNS,
    by_accounting_period,
    completeness,
    expected_postings,
    live_postings,
    quarantined,
)
from sync_core.reconcile.drift import DRIFT_COLUMNS, ERROR, PASS, WARN, drift, severity, worst
from sync_core.reconcile.items import ITEM_COLUMNS, reconciling_items

__all__ = [
    "BALANCE_COLUMNS",
    "DRIFT_COLUMNS",
    "ERROR",
    "ITEM_COLUMNS",
    "KINDS",
    "MOVEMENT_COLUMNS",
    "OFFENDER_COLUMNS",
    "PASS",
    "WARN",
    "by_accounting_period",
    "completeness",
    "drift",
    "expected_postings",
    "line_balances",
    "movements",
    "through",
    "functional_known",
    "gl_balances",
    "live_postings",
    "quarantined",
    "reconciling_items",
    "severity",
    "subledger_balances",
    "worst",
]
