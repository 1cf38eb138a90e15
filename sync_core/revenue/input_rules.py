"""Row-rule primitives of the engine's input checks: exception rows, first-failure-wins rule
sets, exact integer parsing and accounting periods. Shared by ``inputs``, ``credit_inputs``
and ``contra_inputs``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.contracts.validate import EXCEPTION_COLUMNS
from sync_core.money import MAX_AMOUNT
from sync_core.revenue.periods import instants_ns, is_nat, month_of_ns

OWNER = "integration"
RATE_PATTERN = r"^\d+(\.\d+)?$"
SOURCE_ID = {
    "invoices": "invoice_id",
    "invoice_lines": "line_key",
    "credit_notes": "credit_note_id",
    "credit_note_lines": "credit_note_line_id",
    "payments": "payment_id",
    "legal_entities": "entity_id",
    "disputes": "dispute_id",
}


def empty_exceptions() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in EXCEPTION_COLUMNS})
    out["period"] = pd.Series(dtype="datetime64[ns, UTC]")
    return out


_NONE = empty_exceptions()  # shared "no exception" value: filtered out, never modified


def _exceptions(df: pd.DataFrame, mask, object_type: str, rule: str, message) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return _NONE
    bad = df.loc[mask]
    msg = message(bad) if callable(message) else message
    period = bad["period"] if "period" in bad else pd.Series(pd.NaT, index=bad.index)
    return pd.DataFrame(
        {
            "entity_id": bad["entity_id"].astype("object"),
            "period": pd.to_datetime(period, utc=True, errors="coerce").dt.as_unit("ns"),
            "object_type": object_type,
            "source_id": bad[SOURCE_ID[object_type]].astype("object"),
            "rule": rule,
            "message": msg,
            "owner": OWNER,
        }
    ).reset_index(drop=True)


class Rules:
    """Row rules over one frame, first failure wins: a row that breaks a rule gets one exception
    row (``object_type``, rule name, message) in ``exc`` and is skipped by the later rules;
    ``bad`` marks every row that broke one."""

    def __init__(self, df: pd.DataFrame, object_type: str, exc: list):
        self.df, self.object_type, self.exc = df, object_type, exc
        self.bad = np.zeros(len(df), dtype=bool)

    def __call__(self, mask, name: str, message) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        self.exc.append(_exceptions(self.df, mask, self.object_type, name, message))
        self.bad |= mask


def _integers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, ok mask): NaN, non-numbers, non-integers and amounts beyond the
    contract's bound (|v| <= MAX_AMOUNT, sync_core.money) are not ok."""
    s = pd.Series(values, copy=False)
    if s.dtype.kind in "iu":
        ok = ((s <= MAX_AMOUNT) & (s >= -MAX_AMOUNT)).fillna(False).to_numpy(dtype=bool)
        return np.where(ok, s.to_numpy(dtype=np.int64, na_value=0), 0), ok
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(num) & (num == np.floor(num)) & (np.abs(num) <= MAX_AMOUNT)
    out = np.zeros(len(s), dtype=np.int64)
    if s.dtype == object:  # exact Python integers stay exact
        for i in np.flatnonzero(ok):
            v = s.iat[i]
            out[i] = int(v) if isinstance(v, (int, np.integer)) else int(num[i])
    else:
        out[ok] = num[ok].astype(np.int64)
    return out, ok


def _month_start(ns: np.ndarray) -> pd.Series:
    from sync_core.revenue.periods import months_to_timestamps

    out = pd.Series(pd.NaT, index=range(len(ns)), dtype="datetime64[ns, UTC]")
    ok = ~is_nat(ns)
    if ok.any():
        out[ok] = months_to_timestamps(month_of_ns(ns[ok])).to_numpy()
    return out


def _period(df: pd.DataFrame, ts_col: str) -> pd.Series:
    """The record's accounting period: its ``period`` if set, else the month of ``ts_col``."""
    given = pd.to_datetime(df["period"], utc=True, errors="coerce").dt.as_unit("ns")
    derived = _month_start(instants_ns(df[ts_col]))
    derived.index = df.index
    return given.where(given.notna(), derived)
