"""Posting rules: accounting lines -> ERP journals with deterministic external ids.

Pure functions on DataFrames. One journal per source-document event (invoice finalized,
payment, credit note, refund, void) and one revenue journal per entity x period x currency,
summarized by account. A journal that fails a posting rule (unbalanced, unmapped account,
customer without an ERP id) is held whole as an exception; nothing is half-posted.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

from sync_core.contracts.validate import Quarantine
from sync_core.money import checked_group_sum

# Default chart of accounts: canonical account -> ERP account number (README, "Posting").
DEFAULT_CHART: dict[str, str] = {
    "AccountsReceivable": "1100",
    "UnbilledAccountsReceivable": "1150",
    "Cash": "1000",
    "CustomerBalance": "2150",
    "ExternalCustomerBalance": "2170",  # credit owed to customers, settled outside the platform
    "DeferredRevenue": "2400",
    "TaxLiability": "2300",
    "Revenue": "4000",
    "CreditNotes": "4900",
    "Refunds": "4910",
    "Disputes": "4920",
    "BadDebt": "4930",  # contra revenue: earned revenue of invoices marked uncollectible
    "RefundsPayable": "2160",  # clearing: refunds a credit note owes, until paid
    "Recoverables": "7100",  # gain: disputes won, uncollectible invoices paid after all
    "Fees": "6100",  # expense: dispute fees, on a cash basis
    "FxGainLoss": "7900",
}
EVENT_CODES = {
    "invoice_finalized": "INV",
    "invoice_void": "INVVOID",
    "payment": "PAY",
    "refund": "RFND",
    "credit_note": "CN",
    "credit_note_void": "CNVOID",
    "dispute": "DSP",
    "dispute_won": "DSPWON",
    "invoice_uncollectible": "INVUNC",
    "revenue": "REV",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

JOURNAL_COLUMNS = [
    "entity_id", "period", "journal_key", "line_no", "event", "document_id", "account",
    "erp_account", "erp_subsidiary_id", "erp_customer_id", "debit", "credit", "currency",
    "debit_functional", "credit_functional", "functional_currency", "correlation_id",
    "memo", "transaction_date", "invoice_id",
]  # fmt: skip
HOLD_COLUMNS = ["reason_code", "owner", "message"]
EVENT_LABELS = {
    "invoice_finalized": "Invoice finalized", "invoice_void": "Invoice voided",
    "payment": "Payment", "refund": "Refund", "credit_note": "Credit note",
    "credit_note_void": "Credit note voided", "revenue": "Revenue recognized",
    "invoice_uncollectible": "Invoice marked uncollectible", "dispute": "Dispute opened",
    "dispute_won": "Dispute won",
}  # fmt: skip


def journal_memo(event: str, document_id: str) -> str:
    """The memo a controller reads in the ERP: what happened to which document."""
    return f"{EVENT_LABELS.get(event, event.replace('_', ' ').capitalize())} {document_id}"


def journal_key(entity_id: str, event: str, document_id: str) -> str:
    """Deterministic key of a (document, event) journal: letters, digits, ``_`` and ``-``.

    The ERP external id is the key plus its version (``-v1``, ``-v2`` after a change) and, for
    a reversing journal, ``-REV`` (``sync_core.posting_plan``).
    """
    raw = str(document_id)
    doc = _UNSAFE.sub("_", raw)
    if doc != raw:  # ``in.1003`` and ``in_1003`` must not share a journal
        doc = f"{doc}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return f"{entity_id}-{EVENT_CODES.get(event, event.upper())}-{doc}"


def journal_lines(
    lines: pd.DataFrame,
    document_customers: pd.Series,
    customers: pd.DataFrame,
    subsidiary: str | None,
    chart: dict[str, str] | None = None,
    held_invoices: dict[str, tuple[str, str, str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every journal line of the period, held ones included (``reason_code``, ``owner``,
    ``message`` set on each line of a held journal), and one exception row per hold.

    ``held_invoices`` (invoice id -> (reason, owner, message)) names invoices whose own
    journal cannot post: their share of the month's revenue is taken out of the revenue
    journal into a journal of its own (``REV-YYYYMM-CUR-<invoice>``), held with them
    (``document_held``), so the GL never releases deferred revenue that was never booked.
    """
    chart = DEFAULT_CHART if chart is None else chart
    if lines.empty:
        empty = pd.DataFrame(columns=JOURNAL_COLUMNS + HOLD_COLUMNS)
        return empty, Quarantine.empty()
    df = _summarized(lines, held_invoices or {})
    df["journal_key"] = [
        journal_key(e, ev, d) for e, ev, d in zip(df["entity_id"], df["event"], df["document_id"])
    ]
    erp_ids = customers.set_index("customer_id")["erp_customer_id"] if len(customers) else {}
    cust = df["source_document"].map(document_customers)
    df["erp_customer_id"] = cust.map(erp_ids) if len(customers) else None
    df["erp_account"] = df["account"].map(chart)
    df["erp_subsidiary_id"] = subsidiary
    df["memo"] = [journal_memo(ev, d) for ev, d in zip(df["event"], df["document_id"])]
    # a total order: lines on one account keep the same numbers whatever the input order
    df = df.sort_values(
        ["journal_key", "account", "currency", "correlation_id", "debit", "credit",
         "debit_functional", "credit_functional"],
        kind="stable",
    )  # fmt: skip
    df["line_no"] = df.groupby("journal_key").cumcount() + 1
    holds = _rule_holds(df, cust, held_invoices or {})
    df = df.join(holds.drop_duplicates("source_id").set_index("source_id")[["rule", "owner",
                 "message"]].rename(columns={"rule": "reason_code"}), on="journal_key")  # fmt: skip
    return df[JOURNAL_COLUMNS + HOLD_COLUMNS].reset_index(drop=True), _exception_rows(df, holds)


def _summarized(lines: pd.DataFrame, held_invoices: dict) -> pd.DataFrame:
    """Revenue lines summarized by account into one journal per month and currency (and one
    per held invoice); document journals keep their lines. Each line is made one-sided."""
    df = lines.copy()
    for col in ("invoice_id", "transaction_date"):
        if col not in df:
            df[col] = None if col == "invoice_id" else (df["period"] + pd.offsets.MonthEnd(0))
    df["source_document"] = df["document_id"]
    is_rev = df["event"] == "revenue"
    month_cur = df["period"].dt.strftime("%Y%m") + "-" + df["currency"]
    own = is_rev & df["document_id"].isin(set(held_invoices))
    df.loc[is_rev, "document_id"] = "REV-" + month_cur[is_rev]
    df.loc[own, "document_id"] = df.loc[own, "document_id"] + "-" + df.loc[own, "source_document"]
    df.loc[is_rev & ~own, "source_document"] = None
    df.loc[is_rev, "transaction_date"] = df.loc[is_rev, "period"] + pd.offsets.MonthEnd(0)
    amount_cols = ["debit", "credit", "debit_functional", "credit_functional"]
    keys = ["entity_id", "period", "event", "document_id", "currency", "functional_currency",
            "account"]  # fmt: skip
    rev = (
        df[is_rev]
        .groupby(keys, as_index=False, sort=True, dropna=False)
        .agg(**{c: (c, "sum") for c in amount_cols}, correlation_id=("document_id", "first"),
             source_document=("source_document", "first"),
             invoice_id=("source_document", "first"),
             transaction_date=("transaction_date", "max"))
    )  # fmt: skip
    df = pd.concat([df[~is_rev], rev], ignore_index=True)
    net = df["debit"] - df["credit"]
    net_f = df["debit_functional"] - df["credit_functional"]
    df["debit"], df["credit"] = net.clip(lower=0), (-net).clip(lower=0)
    df["debit_functional"], df["credit_functional"] = net_f.clip(lower=0), (-net_f).clip(lower=0)
    return df[(df[amount_cols] != 0).any(axis=1)].copy()


def _rule_holds(df: pd.DataFrame, cust: pd.Series, held_invoices: dict) -> pd.DataFrame:
    """One row per (journal, broken rule): source_id (journal key), rule, owner, message."""
    held = []
    for (eid, cur), row in journal_balance_problems(df).iterrows():
        held.append((eid, "journal_balanced", "integration",
                     f"debits {row['debit']} != credits {row['credit']} {cur}"))  # fmt: skip
    for eid, acct in (
        df.loc[df["erp_account"].isna(), ["journal_key", "account"]]
        .drop_duplicates()
        .itertuples(index=False)
    ):
        held.append((eid, "account_mapped", "finance", f"account {acct} has no ERP account"))
    needs_customer = df["event"] != "revenue"
    missing = df[needs_customer & df["erp_customer_id"].isna()]
    for eid, d, c in (
        missing[["journal_key", "document_id"]]
        .assign(c=cust[missing.index])
        .drop_duplicates("journal_key")
        .itertuples(index=False)
    ):
        held.append(
            (eid, "customer_erp_id", "master_data", f"customer {c!r} of {d} has no ERP customer id")
        )
    own = df[(df["event"] == "revenue") & df["source_document"].isin(set(held_invoices))]
    for eid, inv in (
        own[["journal_key", "source_document"]].drop_duplicates().itertuples(index=False)
    ):
        reason, owner, why = held_invoices[inv]
        held.append(
            (
                eid,
                "document_held",
                owner,
                f"revenue of invoice {inv} waits for its invoice journal ({reason}: {why})",
            )
        )
    return pd.DataFrame(held, columns=["source_id", "rule", "owner", "message"])


def _exception_rows(df: pd.DataFrame, holds: pd.DataFrame) -> pd.DataFrame:
    if holds.empty:
        return Quarantine.empty()
    first = df.drop_duplicates("journal_key").set_index("journal_key")
    h = holds.copy()
    for col in ("entity_id", "period", "document_id", "event"):
        h[col] = h["source_id"].map(first[col])
    h["object_type"] = "journal"
    cols = ["entity_id", "period", "object_type", "source_id", "rule", "message", "owner",
            "document_id", "event"]  # fmt: skip
    return h[cols].reset_index(drop=True)


def journal_balance_problems(journals: pd.DataFrame) -> pd.DataFrame:
    """Journals (per currency) whose debits and credits differ: empty when all balance."""
    if journals.empty:
        return journals
    bal = checked_group_sum(journals, ["journal_key", "currency"],
                            ["debit", "credit", "debit_functional", "credit_functional"],
                            "journal balance")  # fmt: skip
    return bal[
        (bal["debit"] != bal["credit"]) | (bal["debit_functional"] != bal["credit_functional"])
    ]


def line_sources(
    accounting_lines: pd.DataFrame, lines: pd.DataFrame, headers: pd.DataFrame
) -> pd.DataFrame:
    """Drill-down rows of the summarized revenue lines about to post: one per (posted line,
    schedule source), with the source's amounts, so GL line -> schedule row -> invoice line is
    one join. ``lines``: journal lines with ``external_id`` and ``line_no``; ``headers``:
    their journal headers (``event``, ``reverses``)."""
    cols = ["external_id", "line_no", "source_id", "invoice_id", "debit", "credit",
            "debit_functional", "credit_functional"]  # fmt: skip
    rev_heads = headers[(headers["event"] == "revenue") & headers["reverses"].isna()]
    acc = (
        accounting_lines[accounting_lines["event"] == "revenue"] if len(accounting_lines) else None
    )
    if acc is None or acc.empty or rev_heads.empty or lines.empty:
        return pd.DataFrame(columns=cols)
    posted = lines[lines["external_id"].isin(set(rev_heads["external_id"]))]
    posted = posted.assign(journal_key=posted["external_id"].str.replace(r"-v\d+$", "", regex=True))
    where = posted.set_index(["journal_key", "account"])[["external_id", "line_no"]]
    month_cur = acc["period"].dt.strftime("%Y%m") + "-" + acc["currency"]
    own = [journal_key(e, "revenue", f"REV-{m}-{d}") for e, m, d in
           zip(acc["entity_id"], month_cur, acc["document_id"], strict=True)]  # fmt: skip
    main = [journal_key(e, "revenue", f"REV-{m}") for e, m in
            zip(acc["entity_id"], month_cur, strict=True)]  # fmt: skip
    keys = set(posted["journal_key"])
    acc = acc.assign(journal_key=[o if o in keys else m for o, m in zip(own, main, strict=True)])
    hit = acc.join(where, on=["journal_key", "account"], how="inner")
    out = hit.groupby(["external_id", "line_no", "correlation_id"], as_index=False).agg(
        invoice_id=("document_id", "first"), debit=("debit", "sum"), credit=("credit", "sum"),
        debit_functional=("debit_functional", "sum"),
        credit_functional=("credit_functional", "sum"),
    )  # fmt: skip
    return out.rename(columns={"correlation_id": "source_id"})[cols]
