"""Account balances through the end of a period, from the GL and from the billing subledger.

A balance is signed, debit positive, in integer minor units, per (entity, canonical account,
currency kind, currency):

- kind ``functional``: in the legal entity's functional currency (the ERP's base currency);
- kind ``transaction``: in each transaction currency.

**GL** (:func:`gl_balances`): every journal line whose journal was *posted* in a period up to
and including ``P`` (``ledger_journals.period``; a correction moved out of a closed ERP period
counts where it was posted, a reversal is a journal of its own with its lines already
swapped). Functional balances are ``debit_functional - credit_functional``; a GL read that
does not know the functional amount of a line (a REST ERP that keeps foreign amounts only)
leaves them null, and :func:`functional_known` tells the caller not to compare that kind.

**Subledger** (:func:`subledger_balances`):

- ``DeferredRevenue`` = - sum of ``deferred_balance`` over the schedule rows of ``P`` (a
  credit balance), ``UnbilledAccountsReceivable`` = + sum of ``unbilled_balance`` there: the
  balance at a month's end sits on the rows of that month;
- ``Revenue`` = - sum of ``recognized - contra_revenue`` over every schedule row up to ``P``
  (cumulative: the ledger is never closed to retained earnings);
- every other account (AR, tax liability, cash, contra revenue, customer balance, refunds,
  FX, and accounts added later) = the sum of the engine's accounting lines up to ``P``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BALANCE_COLUMNS = ["entity_id", "account", "kind", "currency", "balance"]
KINDS = ("functional", "transaction")
SCHEDULE_ACCOUNTS = ("DeferredRevenue", "UnbilledAccountsReceivable", "Revenue")
_MONEY = ["debit", "credit", "debit_functional", "credit_functional"]


def month(period) -> pd.Timestamp:
    """The first of the month of ``period`` as a UTC timestamp."""
    t = pd.Timestamp(period)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return pd.Timestamp(year=t.year, month=t.month, day=1, tz="UTC")


def as_months(values: pd.Series) -> pd.Series:
    """A column of dates, timestamps or strings as UTC month starts (for comparisons)."""
    s = pd.Series(values)
    # a tz-aware column as it is: to_datetime would look for duplicates to cache first
    ts = s.dt.tz_convert("UTC") if isinstance(s.dtype, pd.DatetimeTZDtype) else pd.to_datetime(
        s, utc=True)  # fmt: skip
    # truncated to the month in numpy: the pandas accessors cost ~100x more per value
    starts = ts.dt.tz_convert(None).to_numpy("datetime64[ns]").astype("datetime64[M]")
    return pd.Series(starts.astype("datetime64[ns]"), index=ts.index).dt.tz_localize("UTC")


def empty_balances() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in BALANCE_COLUMNS})
    out["balance"] = pd.Series(dtype=np.int64)
    return out


def _net(df: pd.DataFrame, debit: str, credit: str) -> pd.Series:
    return df[debit].astype(np.int64) - df[credit].astype(np.int64)


def _group(df: pd.DataFrame, amount: pd.Series, currency: str, kind: str) -> pd.DataFrame:
    if df.empty:
        return empty_balances()
    g = (
        pd.DataFrame(
            {
                "entity_id": df["entity_id"].to_numpy(),
                "account": df["account"].to_numpy(),
                "currency": df[currency].to_numpy(),
                "balance": amount.to_numpy(np.int64),
            }
        )  # fmt: skip
        .groupby(["entity_id", "account", "currency"], as_index=False)["balance"]
        .sum()
    )
    g["kind"] = kind
    return g[BALANCE_COLUMNS]


def line_balances(lines: pd.DataFrame) -> pd.DataFrame:
    """Functional and transaction balances of journal or accounting lines (debit positive);
    lines with a null functional amount count in the transaction kind only."""
    if lines.empty:
        return empty_balances()
    known = lines[lines["debit_functional"].notna() & lines["credit_functional"].notna()]
    parts = [
        _group(known, _net(known, "debit_functional", "credit_functional"),
               "functional_currency", "functional"),
        _group(lines, _net(lines, "debit", "credit"), "currency", "transaction"),
    ]  # fmt: skip
    return _tidy(pd.concat(parts, ignore_index=True))


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({"balance": np.int64})
    return df.sort_values(["entity_id", "account", "kind", "currency"]).reset_index(drop=True)


def posted_through(journals: pd.DataFrame, lines: pd.DataFrame, period) -> pd.DataFrame:
    """The lines of journals posted in ``period`` or before, with the journal's entity."""
    if journals.empty or lines.empty:
        return lines.iloc[:0].assign(entity_id=pd.Series(dtype=object))
    head = journals[as_months(journals["period"]) <= month(period)]
    keep = head[["external_id", "entity_id"]]
    return lines.drop(columns=["entity_id"], errors="ignore").merge(keep, on="external_id")


# journal or accounting lines summed per month: what a balance through a month needs
MOVEMENT_COLUMNS = ["entity_id", "period", "account", "currency", "functional_currency", *_MONEY]


def movements(journals: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """GL lines summed per posting month (the journal's ``period``), account and currencies
    (MOVEMENT_COLUMNS); a line without its functional amounts is summed apart, with null
    functional sums. ``line_balances(through(movements(j, l), P))`` is ``gl_balances(j, l, P)``
    from a frame the size of the chart times the months (``sync_core.erp.gl_read`` computes
    the same in the SQL ledger)."""
    if journals.empty or lines.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in MOVEMENT_COLUMNS})
    head = journals[["external_id", "entity_id"]].assign(period=as_months(journals["period"]))
    df = lines.drop(columns=["entity_id", "period"], errors="ignore").merge(head, on="external_id")
    known = df["debit_functional"].notna() & df["credit_functional"].notna()
    keys = MOVEMENT_COLUMNS[:5]
    g = df[keys + _MONEY].assign(known=known, **{c: df[c].fillna(0).astype(np.int64)
                                                 for c in _MONEY})  # fmt: skip
    out = g.groupby([*keys, "known"], as_index=False, sort=True).sum()
    for c in ("debit_functional", "credit_functional"):
        out[c] = out[c].astype("Int64").where(out["known"])
    return out[MOVEMENT_COLUMNS]


def through(moves: pd.DataFrame, period) -> pd.DataFrame:
    """The rows of a per-month frame (movements, summed schedule rows) up to ``period``."""
    return moves[as_months(moves["period"]) <= month(period)] if len(moves) else moves


def gl_balances(journals: pd.DataFrame, lines: pd.DataFrame, period, entity_id=None):
    """GL balances at the end of ``period`` (see the module docstring).

    ``journals``: ledger headers (``external_id``, ``entity_id``, ``period``...); ``lines``:
    their lines (``account``, ``debit``, ``credit``, ``currency``, ``debit_functional``,
    ``credit_functional``, ``functional_currency``), as :class:`~sync_core.erp.ledger.SqlLedger`
    or :meth:`~sync_core.erp.rest.RestErpClient.read_journals` return them.
    """
    if entity_id is not None and len(journals):
        journals = journals[journals["entity_id"] == entity_id]
    return line_balances(posted_through(journals, lines, period))


def functional_known(lines: pd.DataFrame) -> bool:
    """Whether every line carries its functional amounts (the GL reports that kind)."""
    return bool(lines[["debit_functional", "credit_functional"]].notna().all().all())


def subledger_balances(schedule: pd.DataFrame, accounting: pd.DataFrame, period, entity_id):
    """Subledger balances of ``entity_id`` at the end of ``period`` (module docstring).

    ``schedule``: the entity's ``revenue_schedules`` rows (every period up to ``period`` at
    least); ``accounting``: its ``accounting_lines`` (same).
    """
    p = month(period)
    s = schedule[(schedule["entity_id"] == entity_id) & (as_months(schedule["period"]) <= p)]
    a = accounting[(accounting["entity_id"] == entity_id) & (as_months(accounting["period"]) <= p)]
    a = a[~a["account"].isin(SCHEDULE_ACCOUNTS)]
    parts = [_schedule_balances(s, p), line_balances(a)]
    return _tidy(pd.concat([x for x in parts if len(x)] or [empty_balances()], ignore_index=True))


def _schedule_balances(s: pd.DataFrame, p: pd.Timestamp) -> pd.DataFrame:
    if s.empty:
        return empty_balances()
    at_end = s[as_months(s["period"]) == p]
    out = []
    for suffix, kind, cur in (("_functional", "functional", "functional_currency"),
                              ("", "transaction", "currency")):  # fmt: skip
        for account, rows, amount in (
            ("DeferredRevenue", at_end, -at_end[f"deferred_balance{suffix}"]),
            ("UnbilledAccountsReceivable", at_end, at_end[f"unbilled_balance{suffix}"]),
            ("Revenue", s, -(s[f"recognized{suffix}"] - s[f"contra_revenue{suffix}"])),
        ):
            out.append(_group(rows.assign(account=account), amount, cur, kind))
    return pd.concat(out, ignore_index=True)
