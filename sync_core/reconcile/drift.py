"""Drift per account: what the subledger says, what the GL says, and what explains the gap.

For each (entity, account, kind, currency) of either side::

    drift = subledger - gl - reconciling

``reconciling`` is the signed sum of the listed reconciling items (held journals, corrections
posted into a later ERP period): they are known differences with a reason and an owner. What
is left is unexplained. Its severity follows the entity's materiality threshold for the
account, in minor units of the functional currency (``config/erp.yaml``, ``materiality``):

- ``|drift| == 0``: ``PASS``;
- ``0 < |drift| <= threshold``: ``WARN`` (immaterial, still a difference to look at);
- ``|drift| > threshold``: ``ERROR``.

Transaction-currency rows use the same number of minor units of their own currency.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sync_core.reconcile.balances import KINDS

PASS, WARN, ERROR = "PASS", "WARN", "ERROR"
SEVERITIES = (PASS, WARN, ERROR)
DRIFT_COLUMNS = ["entity_id", "account", "kind", "currency", "subledger", "gl", "reconciling",
                 "drift", "threshold", "severity"]  # fmt: skip
_KEY = ["entity_id", "account", "kind", "currency"]


def severity(drift: int, threshold: int) -> str:
    """``PASS`` at zero, ``WARN`` up to the threshold, ``ERROR`` above it."""
    d = abs(int(drift))
    return PASS if d == 0 else (WARN if d <= int(threshold) else ERROR)


def reconciling_balances(items: pd.DataFrame) -> pd.DataFrame:
    """Signed sums of reconciling items per (entity, account, kind, currency)."""
    if items is None or items.empty:
        return pd.DataFrame(columns=[*_KEY, "reconciling"])
    parts = [
        items.assign(kind="transaction", amt=items["amount"]),
        items.assign(kind="functional", currency=items["functional_currency"],
                     amt=items["amount_functional"]),
    ]  # fmt: skip
    both = pd.concat(parts, ignore_index=True)
    both = both[both["amt"].notna()]
    return (
        both.astype({"amt": np.int64})
        .groupby(_KEY, as_index=False)["amt"]
        .sum()
        .rename(columns={"amt": "reconciling"})
    )


def drift(
    subledger: pd.DataFrame,
    gl: pd.DataFrame,
    items: pd.DataFrame | None,
    materiality: Mapping[str, int],
    kinds=KINDS,
) -> pd.DataFrame:
    """One row per (entity, account, kind, currency) present on any side (DRIFT_COLUMNS).

    ``materiality``: account -> threshold (minor units), with ``"default"`` for the others.
    ``kinds``: the currency kinds to compare (``("transaction",)`` when the GL read does not
    carry functional amounts).
    """
    if "default" not in materiality:
        raise ValueError("materiality needs a 'default' threshold")
    s = subledger.rename(columns={"balance": "subledger"})[[*_KEY, "subledger"]]
    g = gl.rename(columns={"balance": "gl"})[[*_KEY, "gl"]]
    r = reconciling_balances(items)
    out = s.merge(g, on=_KEY, how="outer").merge(r, on=_KEY, how="outer")
    out = out[out["kind"].isin(list(kinds))]
    for c in ("subledger", "gl", "reconciling"):
        out[c] = pd.to_numeric(out[c]).fillna(0).astype(np.int64)
    out["drift"] = out["subledger"] - out["gl"] - out["reconciling"]
    out["threshold"] = [int(materiality.get(a, materiality["default"])) for a in out["account"]]
    out["severity"] = [severity(d, t) for d, t in zip(out["drift"], out["threshold"], strict=True)]
    out = out.sort_values(_KEY).reset_index(drop=True)
    return out[DRIFT_COLUMNS]


def worst(severities) -> str:
    """The worst severity of a list (``PASS`` for none)."""
    present = set(severities)
    return next((s for s in (ERROR, WARN) if s in present), PASS)
