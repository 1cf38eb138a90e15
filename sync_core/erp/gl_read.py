"""Reading the GL back from a NetSuite-style REST ERP (SuiteQL), in the SQL ledger's shape.

:meth:`sync_core.erp.rest.RestErpClient.read_journals` runs :func:`journals_query` through
``POST {base}/query/v1/suiteql`` and turns the rows into the two frames that
:class:`~sync_core.erp.ledger.SqlLedger` returns (``journals()`` headers and ``lines()``), so
reconciliation reads either target the same way. What the ERP knows decides what is filled:

- the canonical account comes back from the ERP account number through the entity's chart
  (``config/erp.yaml``); a number that maps from two canonical accounts cannot be told apart
  and is an error; a number that maps from none is kept as ``unmapped:<number>``, so it shows
  as a difference instead of vanishing;
- the posting period is the ERP's; the period the events belong to is not an ERP field, so
  ``source_period`` is the posting period (the posting log keeps the real one);
- a reversal is recognised by its external id (``...-v1-REV`` reverses ``...-v1``);
- functional (base-currency) amounts are the ERP's accounting-line ``debit``/``credit`` when
  it reports them; else, for a journal in the functional currency, the transaction amounts;
  else null (a foreign-currency journal whose base amounts the ERP does not expose).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.erp.ledger import JOURNAL_COLS, LINE_COLS, SqlLedger, journal_lines, journals
from sync_core.posting import EVENT_CODES

_EVENT_OF_CODE = {code: event for event, code in EVENT_CODES.items()}
_VERSION = re.compile(r"^(?P<key>.+)-v(?P<version>\d+)(?P<rev>-REV)?$")


def ledger_journals(engine: sa.Engine, entity_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(journals, lines) of one entity from the SQL ledger (or the REST target's posting log),
    the lines selected by a join on the entity rather than a list of external ids."""
    heads = SqlLedger(engine).journals(entity_id)
    q = (
        sa.select(journal_lines)
        .join(journals, journal_lines.c.external_id == journals.c.external_id)
        .where(journals.c.entity_id == entity_id)
        .order_by(journal_lines.c.external_id, journal_lines.c.line_no)
    )
    with engine.connect() as conn:
        res = conn.execute(q)
        lines = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    return heads, lines


def ledger_movements(engine: sa.Engine, entity_id: str, through=None) -> pd.DataFrame:
    """The SQL ledger's lines of one entity summed per posting month, account and currency
    (``sync_core.reconcile.balances.MOVEMENT_COLUMNS``), computed in the database; the
    months through ``through`` when given. Every SQL ledger line has its functional amounts."""
    money = ("debit", "credit", "debit_functional", "credit_functional")
    keys = [journals.c.entity_id, journals.c.period, journal_lines.c.account,
            journal_lines.c.currency, journal_lines.c.functional_currency]  # fmt: skip
    q = (
        sa.select(
            *keys,
            *(sa.cast(sa.func.sum(journal_lines.c[c]), sa.BigInteger).label(c) for c in money),
        )  # fmt: skip
        .join(journals, journal_lines.c.external_id == journals.c.external_id)
        .where(journals.c.entity_id == entity_id)
        .group_by(*keys)
    )
    if through is not None:
        q = q.where(journals.c.period <= pd.Timestamp(through).date())
    with engine.connect() as conn:
        res = conn.execute(q)
        df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    df["period"] = pd.to_datetime(df["period"], utc=True)
    return df.astype({c: "int64" for c in money})


def ledger_slice(engine: sa.Engine, entity_id: str, documents) -> pd.DataFrame:
    """The journals of one entity that a month's completeness and reconciling items look at:
    every journal of ``documents`` (their whole history) and every journal posted in a later
    period than its events' (a correction moved out of a closed period: a timing item until
    that period), read by the ledger's indexes rather than in full."""
    heads = SqlLedger(engine).journals(entity_id, documents=set(documents))
    q = sa.select(journals).where(journals.c.entity_id == entity_id,
                                  journals.c.period != journals.c.source_period)  # fmt: skip
    with engine.connect() as conn:
        res = conn.execute(q)
        moved = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    moved = moved[~moved["external_id"].isin(heads["external_id"])]
    if moved.empty:
        return heads
    return pd.concat([heads, moved], ignore_index=True).sort_values("external_id",
                                                                    ignore_index=True)  # fmt: skip


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def journals_query(subsidiary: str) -> str:
    """SuiteQL for every journal line of a subsidiary, in a stable order (paging needs one)."""
    return (
        "SELECT t.id, t.externalid, t.postingperiod, t.trandate, t.currency, t.memo, "
        "t.createddate, tl.subsidiary, tl.id AS line, tal.account, tl.debitforeignamount, "
        "tl.creditforeignamount, tal.debit, tal.credit, tl.entity, tl.custcol_correlation_id "
        "FROM transaction t "
        "JOIN transactionline tl ON tl.transaction = t.id "
        "JOIN transactionaccountingline tal ON tal.transaction = tl.transaction "
        "AND tal.transactionline = tl.id "
        f"WHERE t.type = 'Journal' AND tl.subsidiary = {_literal(subsidiary)} "
        "ORDER BY t.id, tl.id"
    )


def canonical_accounts(accounts: dict[str, str]) -> dict[str, str]:
    """ERP account number -> canonical account; two canonical accounts on one number is an
    error (the GL read could not tell them apart)."""
    out: dict[str, str] = {}
    for canonical, number in accounts.items():
        if str(number) in out:
            raise ValueError(
                f"ERP account {number} is mapped from {out[str(number)]} and {canonical}: "
                "the GL read back cannot tell them apart; map them to distinct accounts"
            )
        out[str(number)] = canonical
    return out


def _parse_external_id(eid: str, entity_id: str) -> dict:
    m = _VERSION.match(eid)
    key = m["key"] if m else eid
    rest = key[len(entity_id) + 1 :] if key.startswith(f"{entity_id}-") else key
    code, _, doc = rest.partition("-")
    return {
        "version": int(m["version"]) if m else 0,
        "reverses": eid[:-4] if m and m["rev"] else None,
        "event": _EVENT_OF_CODE.get(code, code.lower()),
        "document_id": doc or rest,
    }


def _int(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="raise").astype("Int64")


def journal_frames(rows: list[dict], entity_id: str, accounts: dict[str, str],
                   functional_currency: str) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(journals, lines) of ``entity_id`` from :func:`journals_query` rows (module docstring);
    journals whose external id does not start with ``{entity_id}-`` are not the entity's."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=JOURNAL_COLS), pd.DataFrame(columns=LINE_COLS)
    df = df[df["externalid"].str.startswith(f"{entity_id}-")]
    if df.empty:
        return pd.DataFrame(columns=JOURNAL_COLS), pd.DataFrame(columns=LINE_COLS)
    return _headers(df, entity_id), _lines(df, accounts, functional_currency)


def _headers(df: pd.DataFrame, entity_id: str) -> pd.DataFrame:
    first = df.drop_duplicates("externalid")
    parsed = pd.DataFrame([_parse_external_id(e, entity_id) for e in first["externalid"]])
    period = pd.to_datetime(first["postingperiod"] + "-01").dt.date.to_numpy()
    debit = _int(df["debitforeignamount"].fillna(0)).groupby(df["externalid"]).sum()
    h = pd.DataFrame(
        {"external_id": first["externalid"].to_numpy(), "entity_id": entity_id,
         "erp_subsidiary_id": first["subsidiary"].to_numpy(), "period": period,
         "source_period": period, "event": parsed["event"].to_numpy(),
         "document_id": parsed["document_id"].to_numpy(),
         "version": parsed["version"].to_numpy(), "currency": first["currency"].to_numpy(),
         "total_debit": first["externalid"].map(debit).to_numpy(np.int64),
         "line_count": first["externalid"].map(df["externalid"].value_counts()).to_numpy(),
         "content_hash": None, "reverses": parsed["reverses"].to_numpy(), "correction": None,
         "run_id": None, "memo": first.get("memo"),
         "transaction_date": pd.to_datetime(first["trandate"]).dt.date.to_numpy(),
         "posted_at": pd.to_datetime(first["createddate"], utc=True).to_numpy()}
    )  # fmt: skip
    return h.reindex(columns=JOURNAL_COLS).reset_index(drop=True)


def _lines(df: pd.DataFrame, accounts: dict[str, str], functional: str) -> pd.DataFrame:
    by_number = canonical_accounts(accounts)
    debit, credit = (
        _int(df["debitforeignamount"].fillna(0)),
        _int(df["creditforeignamount"].fillna(0)),
    )
    same = (df["currency"] == functional).to_numpy()
    base_d = _int(df["debit"]) if "debit" in df else pd.Series(pd.NA, index=df.index, dtype="Int64")
    base_c = (
        _int(df["credit"]) if "credit" in df else pd.Series(pd.NA, index=df.index, dtype="Int64")
    )
    out = pd.DataFrame(
        {"external_id": df["externalid"].to_numpy(), "line_no": _int(df["line"]).to_numpy(),
         "account": [by_number.get(a, f"unmapped:{a}") for a in df["account"]],
         "erp_account": df["account"].to_numpy(), "erp_customer_id": df.get("entity"),
         "debit": debit.to_numpy(), "credit": credit.to_numpy(),
         "currency": df["currency"].to_numpy(),
         "debit_functional": base_d.where(base_d.notna(), debit.where(same)).to_numpy(),
         "credit_functional": base_c.where(base_c.notna(), credit.where(same)).to_numpy(),
         "functional_currency": functional,
         "correlation_id": df.get("custcol_correlation_id")}
    )  # fmt: skip
    return out.reindex(columns=LINE_COLS).reset_index(drop=True)
