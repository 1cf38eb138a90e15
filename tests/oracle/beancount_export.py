"""The SQL ledger as a beancount file, checked by beancount itself: an oracle that shares no code
with the posting pipeline (test-side code, not product code).

Export (``ledger_text``)
- One transaction per journal of ``ledger_journals``: dated the first day of the period it was
  posted in, narration ``"<event> <document_id>"``, metadata ``external_id``.
- One posting per line of ``ledger_journal_lines``: account ``<Root>:<Entity>:<Account>``
  (``Assets:US01:AccountsReceivable``, ``Liabilities:US01:DeferredRevenue``,
  ``Income:US01:Revenue``, ...), amount ``debit - credit`` in the transaction currency, written
  with the currency's ISO 4217 digits (``sync_core.money.exponent``: 2618 EUR -> ``26.18``).
  The root comes from ``ACCOUNT_ROOTS``, else from the ERP account number's first digit.
- Every account is opened on the day of its first posting.
- ``option "tolerance_multiplier" "0"``: a transaction must balance exactly.

Balance assertions (``subledger_balances`` -> ``balance_text``): for each entity x month x
currency, on the first day of the next month (beancount checks the balance before that day),
with tolerance ``~ 0``:
- ``DeferredRevenue`` = ``revenue_rollforward.closing_deferred`` (a credit balance);
- ``UnbilledAccountsReceivable`` = the month's sum of ``revenue_schedules.unbilled_balance``;
- ``AccountsReceivable`` from the documents, cumulative: + invoice ``total`` (less
  ``balance_applied`` when the column exists) in its period, - the same in the month it is
  voided; - a pre-payment credit note's ``total`` in its period, + it back in the month it is
  voided (a post-payment note is settled by refund, credit balance or outside the platform, not
  by AR); - every succeeded payment of an invoice in its period; an invoice marked
  uncollectible is written off (its open AR to zero in that month; a later payment is a
  recovery, not AR);
- minus the reconciling items: documents the engine excluded with an ``exceptions`` row of
  stage ``recognition`` (e.g. a payment of a quarantined invoice: in ``payments``, in no
  journal); and from ``erp_postings``, lines of journals held instead of posted
  (``posting_status != 'posted'``, never in the GL) and lines posted in a later period than
  their own (in the GL only from ``posting_period``).

``check(text)`` runs beancount's loader (parse, booking, the bean-check validations, balance
assertions) and returns its errors.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import sqlalchemy as sa
from beancount import loader

from sync_core.money import exponent

ACCOUNT_ROOTS = {
    "Cash": "Assets",
    "AccountsReceivable": "Assets",
    "UnbilledAccountsReceivable": "Assets",
    "CustomerBalance": "Liabilities",
    "RefundsPayable": "Liabilities",
    "ExternalCustomerBalance": "Liabilities",
    "TaxLiability": "Liabilities",
    "DeferredRevenue": "Liabilities",
    "Revenue": "Income",
    "CreditNotes": "Income",
    "Refunds": "Income",
    "Disputes": "Income",
    "BadDebt": "Income",
    "Recoverables": "Income",
    "Fees": "Expenses",
    "FxGainLoss": "Expenses",
}
_ROOT_BY_DIGIT = {"1": "Assets", "2": "Liabilities", "3": "Equity", "4": "Income", "5": "Income"}
HEADER = 'option "tolerance_multiplier" "0"\noption "title" "SQL ledger export"\n'


# ------------------------------------------------------------------------------ reading


def _month(values) -> pd.Series:
    """Any date / timestamp column (SQLite text, PostgreSQL date or timestamptz) -> the naive
    first day of its month."""
    ts = pd.to_datetime(pd.Series(values), utc=True, format="mixed")
    return ts.dt.tz_convert(None).dt.to_period("M").dt.to_timestamp()


def read_table(engine: sa.Engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        res = conn.execute(sa.text(f"SELECT * FROM {name}"))
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def ledger_frames(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(journals, lines) of the SQL ledger, ordered."""
    journals = read_table(engine, "ledger_journals").sort_values("external_id")
    lines = read_table(engine, "ledger_journal_lines").sort_values(["external_id", "line_no"])
    return journals.reset_index(drop=True), lines.reset_index(drop=True)


# ------------------------------------------------------------------------------ export


def account_name(entity: str, account: str, erp_account: str | None = None) -> str:
    root = ACCOUNT_ROOTS.get(account) or _ROOT_BY_DIGIT.get(str(erp_account or "")[:1])
    if root is None:
        root = "Expenses"
    return f"{root}:{entity}:{account}"


def units(minor: int, currency: str) -> str:
    """Minor units as a beancount number with the currency's ISO digits (2618 EUR -> 26.18)."""
    e = exponent(currency)
    return f"{Decimal(int(minor)).scaleb(-e):.{e}f}"


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def ledger_text(journals: pd.DataFrame, lines: pd.DataFrame, functional: bool = False) -> str:
    """The ledger as beancount directives: opens, then one transaction per journal; with
    ``functional``, every posting in the entity's functional currency instead (each journal
    must balance there too: FX gain / loss lines carry only a functional amount)."""
    return _ledger(journals, lines, functional)[0]


def _ledger(journals, lines, functional: bool = False) -> tuple[str, dict]:
    """(beancount text, {account: date opened})."""
    d, c, ccy = ("debit_functional", "credit_functional", "functional_currency") if functional else (
        "debit", "credit", "currency")  # fmt: skip
    head = journals.assign(date=_month(journals["period"]).dt.date)
    by_journal = {k: g for k, g in lines.groupby("external_id", sort=False)}
    opened: dict[str, object] = {}
    txns: list[str] = []
    for j in head.sort_values(["date", "external_id"]).itertuples(index=False):
        body = [
            f"{j.date} * {_quote(f'{j.event} {j.document_id}')}",
            f"  external_id: {_quote(j.external_id)}",
        ]
        for ln in by_journal.get(j.external_id, lines.iloc[:0]).itertuples(index=False):
            acct = account_name(j.entity_id, ln.account, ln.erp_account)
            opened.setdefault(acct, j.date)
            line = ln._asdict()
            amount = units(int(line[d]) - int(line[c]), line[ccy])
            body.append(f"  {acct}  {amount} {line[ccy]}")
        txns.append("\n".join(body))
    opens = [f"{d} open {a}" for a, d in sorted(opened.items(), key=lambda kv: (kv[1], kv[0]))]
    return HEADER + "\n" + "\n".join(opens) + "\n\n" + "\n\n".join(txns) + "\n", opened


def balance_text(expected: pd.DataFrame, opened: dict | None = None) -> str:
    """``balance`` directives (exact, ``~ 0``) the day after each month's end.

    ``expected``: entity_id, month, account, currency, amount (minor units, debit positive).
    A zero balance of an account the ledger has not opened by then is not asserted (nothing to
    check); a non-zero one is, and fails as an inactive account.
    """
    out = []
    for r in expected.sort_values(["month", "entity_id", "account", "currency"]).itertuples():
        day = (pd.Timestamp(r.month) + pd.offsets.MonthBegin(1)).date()
        acct = account_name(r.entity_id, r.account)
        if opened is not None and r.amount == 0 and not opened.get(acct, day) < day:
            continue
        out.append(f"{day} balance {acct}  {units(r.amount, r.currency)} ~ 0 {r.currency}")
    return "\n".join(out) + "\n"


def check(text: str) -> list:
    """beancount's loader over ``text``: parse, book, validate, assert. Its errors."""
    _, errors, _ = loader.load_string(text)
    return list(errors)


# ------------------------------------------------------------------------------ subledger


def _deferred(engine) -> pd.DataFrame:
    rf = read_table(engine, "revenue_rollforward")
    return pd.DataFrame(
        {
            "entity_id": rf["entity_id"],
            "month": _month(rf["period"]),
            "account": "DeferredRevenue",
            "currency": rf["currency"],
            "amount": -rf["closing_deferred"].astype("int64"),  # a credit balance
        }
    )


def _unbilled(engine) -> pd.DataFrame:
    s = read_table(engine, "revenue_schedules")
    s = s.assign(month=_month(s["period"]), amount=s["unbilled_balance"].astype("int64"))
    out = s.groupby(["entity_id", "month", "currency"], as_index=False)["amount"].sum()
    return out.assign(account="UnbilledAccountsReceivable")


def _instant(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True, format="mixed").dt.tz_convert(None)


def _moves(df, month, at, amount) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_id": df["entity_id"].to_numpy(),
            "invoice_id": df["invoice_id"].to_numpy(),
            "month": pd.Series(month).to_numpy(),
            "at": pd.Series(at).to_numpy(),
            "currency": df["currency"].to_numpy(),
            "amount": pd.Series(amount).to_numpy(dtype="int64"),
        }
    )


def _excluded(engine) -> set[tuple[str, str]]:
    """(object type, source id) of documents the engine excluded, each with an exception."""
    x = read_table(engine, "exceptions")
    x = x[x["stage"] == "recognition"]
    return set(zip(x["object_type"], x["source_id"].astype(str)))


def _kept(df: pd.DataFrame, object_type: str, id_col: str, excluded) -> pd.DataFrame:
    drop = [(object_type, str(i)) in excluded for i in df[id_col]]
    return df[~pd.Series(drop, index=df.index, dtype=bool)]


def _ar_moves(engine) -> pd.DataFrame:
    """Documents' movements of AR (entity_id, month, currency, amount), not cumulated.

    An invoice marked uncollectible is written off: its AR goes to zero in that month, and a
    later payment of it is a recovery that does not touch AR."""
    excluded = _excluded(engine)
    inv = _kept(read_table(engine, "invoices"), "invoices", "invoice_id", excluded)
    applied = inv["balance_applied"].fillna(0) if "balance_applied" in inv else 0
    due = inv["total"].astype("int64") - pd.Series(applied, index=inv.index).astype("int64")
    cn = _kept(read_table(engine, "credit_notes"), "credit_notes", "credit_note_id", excluded)
    cn = cn[cn["type"] == "pre_payment"]
    pay = _kept(read_table(engine, "payments"), "payments", "payment_id", excluded)
    pay = pay[
        (pay["kind"] == "payment") & (pay["status"] == "succeeded") & pay["invoice_id"].notna()
    ]
    vi, vc = inv[inv["voided_at"].notna()], cn[cn["voided_at"].notna()]
    moves = pd.concat(
        [
            _moves(inv, _month(inv["period"]), _instant(inv["finalized_at"]), due),
            _moves(vi, _month(vi["voided_at"]), _instant(vi["voided_at"]), -due[vi.index]),
            _moves(cn, _month(cn["period"]), _instant(cn["issued_at"]), -cn["total"]),
            _moves(vc, _month(vc["voided_at"]), _instant(vc["voided_at"]), vc["total"]),
            _moves(pay, _month(pay["period"]), _instant(pay["created_at"]), -pay["amount"]),
        ],
        ignore_index=True,
    )
    if "uncollectible_at" not in inv or inv["uncollectible_at"].isna().all():
        return moves
    bad = inv[inv["uncollectible_at"].notna()]
    when = dict(zip(bad["invoice_id"], _instant(bad["uncollectible_at"])))
    cut = moves["invoice_id"].map(when)
    keep = cut.isna() | (moves["at"] <= cut)
    moves = moves[keep]
    open_ = moves[moves["invoice_id"].isin(when)].groupby("invoice_id")["amount"].sum()
    bad = bad.set_index("invoice_id").loc[open_.index].reset_index()
    written_off = _moves(
        bad, _month(bad["uncollectible_at"]), _instant(bad["uncollectible_at"]), -open_.to_numpy()
    )
    return pd.concat([moves, written_off], ignore_index=True)


def _cumulative(moves: pd.DataFrame, months: list[pd.Timestamp], account: str) -> pd.DataFrame:
    """Balances at each month end from movements: one row per (entity, currency) and month
    from its first movement on."""
    flows = moves.groupby(["entity_id", "currency", "month"])["amount"].sum()
    out = []
    for (entity, currency), g in flows.groupby(level=[0, 1]):
        series = g.droplevel([0, 1]).reindex(months, fill_value=0).cumsum()
        first = g.index.get_level_values("month").min()
        for month, amount in series[series.index >= first].items():
            out.append((entity, month, account, currency, int(amount)))
    return pd.DataFrame(out, columns=["entity_id", "month", "account", "currency", "amount"])


def reconciling_items(engine, months: list[pd.Timestamp]) -> pd.DataFrame:
    """What the GL lacks at each month end, per entity x account x currency (debit positive):
    held lines from their period on; lines posted late, from their period until posted."""
    p = read_table(engine, "erp_postings")
    if p.empty:
        return pd.DataFrame(columns=["entity_id", "month", "account", "currency", "amount"])
    p = p.assign(
        month=_month(p["period"]),
        posted=_month(p["posting_period"]) if "posting_period" in p else _month(p["period"]),
        net=p["debit"].astype("int64") - p["credit"].astype("int64"),
    )
    held = p["posting_status"] != "posted"
    rows = []
    for m in months:
        missing = (p["month"] <= m) & (held | (p["posted"] > m))
        g = p[missing].groupby(["entity_id", "account", "currency"])["net"].sum()
        rows += [(e, m, a, c, int(v)) for (e, a, c), v in g.items() if v]
    return pd.DataFrame(rows, columns=["entity_id", "month", "account", "currency", "amount"])


def subledger_balances(engine: sa.Engine, accounts=None) -> pd.DataFrame:
    """The GL balances the subledger implies: subledger minus reconciling items."""
    deferred, unbilled = _deferred(engine), _unbilled(engine)
    months = sorted(set(deferred["month"]) | set(unbilled["month"]))
    ar = _cumulative(_ar_moves(engine), months, "AccountsReceivable")
    keys = ["entity_id", "month", "account", "currency"]
    sub = pd.concat([deferred, unbilled, ar], ignore_index=True)
    sub = sub.groupby(keys, as_index=False)["amount"].sum()
    items = reconciling_items(engine, months)
    out = sub.merge(items, on=keys, how="left", suffixes=("", "_item"))
    item = pd.to_numeric(out["amount_item"]).fillna(0).astype("int64")
    out["amount"] = out["amount"].astype("int64") - item
    if accounts is not None:
        out = out[out["account"].isin(accounts)]
    return out[keys + ["amount"]].reset_index(drop=True)


def export(engine: sa.Engine, journals=None, lines=None) -> str:
    """The ledger (or the given ``journals`` / ``lines`` frames, e.g. tampered ones) and the
    subledger's balance assertions as one beancount file."""
    if journals is None or lines is None:
        journals, lines = ledger_frames(engine)
    text, opened = _ledger(journals, lines)
    return text + "\n" + balance_text(subledger_balances(engine), opened)
