"""Reading the GL back, in the SQL ledger's shape: from the SQL ledger, or from NetSuite by
SuiteQL.

The SQL ledger path (:func:`ledger_journals`, :func:`ledger_movements`, :func:`ledger_slice`)
queries the ledger tables. For NetSuite, :func:`read_gl` (behind
:meth:`sync_core.erp.rest.RestErpClient.read_journals`) runs :func:`journals_query` over
``transaction`` / ``transactionline`` / ``transactionaccountingline`` through
``POST {base}/query/v1/suiteql``, paged, restricted to the entity's subsidiary, the posting
periods through the reconciled month and the chart's accounts, and turns the rows into the
two frames :class:`~sync_core.erp.ledger.SqlLedger` returns (``journals()`` headers and
``lines()``), so reconciliation reads either target the same way:

- NetSuite answers internal ids; :class:`~sync_core.erp.internal_ids.InternalIds` maps them
  back: accounts to their number and through the entity's chart (``config/erp.yaml``) to the
  canonical account (a number mapped from two canonical accounts cannot be told apart and is
  an error), currencies to ISO codes, posting periods to months, customers to their
  ``entityid`` (``erp_customer_id``);
- amounts are NetSuite's decimal strings, parsed exactly back to integer minor units of the
  transaction currency (``debitforeignamount`` / ``creditforeignamount``) and of the
  functional currency (the accounting line's ``debit`` / ``credit``); where the ERP reports
  no base amount, a journal in the functional currency takes its transaction amounts, any
  other none;
- the posting period is the ERP's; the period the events belong to is not an ERP field, so
  ``source_period`` is the posting period (the posting log keeps the real one);
- a reversal is recognised by its external id (``...-v1-REV`` reverses ``...-v1``); the
  correlation id comes from the entity's custom line field, or the line memo's ``[corr ...]``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_core.erp.internal_ids import literal, parse_date
from sync_core.erp.ledger import JOURNAL_COLS, LINE_COLS, SqlLedger, journal_lines, journals
from sync_core.erp.netsuite_body import to_minor_units
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


def journals_query(
    subsidiary: str,
    periods: list[str] | None = None,
    accounts: list[str] | None = None,
    correlation_field: str | None = None,
) -> str:
    """SuiteQL for the journal lines of a subsidiary (internal id), in a stable order (paging
    needs one); restricted to the posting periods and accounts (internal ids) given."""
    corr = f", tl.{correlation_field} AS correlation" if correlation_field else ""
    where = ["t.type = 'Journal'", f"tl.subsidiary = {literal(subsidiary)}", "tal.posting = 'T'"]
    if periods is not None:
        where.append(f"t.postingperiod IN ({', '.join(map(literal, periods)) or 'NULL'})")
    if accounts is not None:
        where.append(f"tal.account IN ({', '.join(map(literal, accounts)) or 'NULL'})")
    return (
        "SELECT t.id, t.externalid, t.postingperiod, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS "
        "trandate, t.currency, t.memo, "
        "t.createddate, tl.subsidiary, tl.id AS line, tl.entity, tl.memo AS linememo, "
        f"tl.debitforeignamount, tl.creditforeignamount, tal.account, tal.debit, tal.credit{corr} "
        "FROM transaction t "
        "JOIN transactionline tl ON tl.transaction = t.id "
        "JOIN transactionaccountingline tal ON tal.transaction = tl.transaction "
        "AND tal.transactionline = tl.id "
        f"WHERE {' AND '.join(where)} ORDER BY t.id, tl.id"
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


def read_gl(
    client,
    entity_id: str,
    subsidiary: str,
    accounts: dict[str, str],
    functional_currency: str,
    through=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(journals, lines) of ``entity_id`` read from NetSuite through ``client`` (a
    :class:`~sync_core.erp.rest.RestErpClient`); module docstring. ``subsidiary`` is the
    entity's ``erp_subsidiary_id``, ``accounts`` its chart, ``through`` the last month read
    (every month when None)."""
    ids = client.ids
    by_number = canonical_accounts(accounts)
    ids.prefetch(entity_id, {"accounts": set(by_number), "subsidiaries": {str(subsidiary)}})
    sub = ids.ref(entity_id, "subsidiaries", subsidiary)
    if sub is None:
        raise ValueError(f"subsidiary {subsidiary!r} of {entity_id} has no NetSuite internal id")
    account_ids = {iid: n for n in by_number
                   if (iid := ids.ref(entity_id, "accounts", n)) is not None}  # fmt: skip
    last = None if through is None else pd.Timestamp(through).strftime("%Y-%m")
    periods = [p.id for p in ids.periods() if last is None or f"{p.start:%Y-%m}" <= last]
    field = ids.config.correlation_field(entity_id)
    rows = client.suiteql(journals_query(sub, periods, sorted(account_ids), field))
    df = pd.DataFrame(rows)
    if df.empty or not df["externalid"].fillna("").str.startswith(f"{entity_id}-").any():
        return pd.DataFrame(columns=JOURNAL_COLS), pd.DataFrame(columns=LINE_COLS)
    df = df[df["externalid"].fillna("").str.startswith(f"{entity_id}-")].copy()
    df["currency"] = df["currency"].map(ids.keys_of("currencies", df["currency"]))
    df["postingperiod"] = df["postingperiod"].map(lambda p: ids.key_of("periods", p))
    df["subsidiary"] = str(subsidiary)
    if "entity" in df:
        found = ids.keys_of("customers", df["entity"].dropna())
        df["entity"] = df["entity"].map(lambda e: None if pd.isna(e) else found.get(str(e)))
    number = df["account"].map(lambda a: account_ids.get(str(a)) or ids.key_of("accounts", a))
    df["account"] = [by_number.get(n, f"unmapped:{n}") for n in number]
    df["erp_account"] = number
    df["correlation"] = df["correlation"] if field else df.get("linememo", pd.Series(
        None, index=df.index)).map(_memo_correlation)  # fmt: skip
    return _headers(df, entity_id), _lines(df, functional_currency)


_CORR = re.compile(r"\[corr ([^\]]+)\]\s*$")


def _memo_correlation(memo) -> str | None:
    m = _CORR.search(memo) if isinstance(memo, str) else None
    return m[1] if m else None


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


def _minor(values: pd.Series, currencies: pd.Series) -> pd.Series:
    """NetSuite's decimal amounts (strings; null is 0) as integer minor units, exactly."""
    out = [0 if v is None or (not isinstance(v, str) and pd.isna(v)) else to_minor_units(v, c)
           for v, c in zip(values, currencies)]  # fmt: skip
    return pd.Series(out, index=values.index, dtype="Int64")


def _headers(df: pd.DataFrame, entity_id: str) -> pd.DataFrame:
    first = df.drop_duplicates("externalid")
    parsed = pd.DataFrame([_parse_external_id(e, entity_id) for e in first["externalid"]])
    period = pd.to_datetime(first["postingperiod"] + "-01").dt.date.to_numpy()
    debit = _minor(df["debitforeignamount"], df["currency"]).groupby(df["externalid"]).sum()
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
         "transaction_date": pd.to_datetime(first["trandate"].map(parse_date)).dt.date.to_numpy(),
         "posted_at": pd.to_datetime(first["createddate"], utc=True, format="mixed",
                                     errors="coerce").to_numpy()}
    )  # fmt: skip
    return h.reindex(columns=JOURNAL_COLS).reset_index(drop=True)


def _lines(df: pd.DataFrame, functional: str) -> pd.DataFrame:
    debit = _minor(df["debitforeignamount"], df["currency"])
    credit = _minor(df["creditforeignamount"], df["currency"])
    same = (df["currency"] == functional).to_numpy()
    reported = df["debit"].notna() | df["credit"].notna() if "debit" in df else None
    if reported is not None and reported.any():
        fc = pd.Series(functional, index=df.index)
        base_d = _minor(df["debit"], fc).where(reported)
        base_c = _minor(df["credit"], fc).where(reported)
    else:
        base_d = base_c = pd.Series(pd.NA, index=df.index, dtype="Int64")
    out = pd.DataFrame(
        {"external_id": df["externalid"].to_numpy(),
         "line_no": df.groupby("externalid").cumcount().to_numpy() + 1,
         "account": df["account"].to_numpy(), "erp_account": df["erp_account"].to_numpy(),
         "erp_customer_id": df.get("entity"),
         "debit": debit.to_numpy(), "credit": credit.to_numpy(),
         "currency": df["currency"].to_numpy(),
         "debit_functional": base_d.where(base_d.notna(), debit.where(same)).to_numpy(),
         "credit_functional": base_c.where(base_c.notna(), credit.where(same)).to_numpy(),
         "functional_currency": functional, "correlation_id": df["correlation"].to_numpy()}
    )  # fmt: skip
    return out.reindex(columns=LINE_COLS).reset_index(drop=True)
