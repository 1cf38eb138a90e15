"""Posting rules: accounting lines -> ERP journals with deterministic external ids.

Pure functions on DataFrames. One journal per source-document event (invoice finalized,
payment, credit note, refund, void) and one revenue journal per entity x period x currency,
summarized by account. A journal that fails a posting rule (unbalanced, unmapped account,
customer without an ERP id) is held whole as an exception; nothing is half-posted.
"""

from __future__ import annotations

import re

import pandas as pd

from sync_core.contracts.validate import Quarantine

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
    "FxGainLoss": "7900",
    "BadDebt": "4930",  # contra revenue: earned revenue of invoices marked uncollectible
    "RefundsPayable": "2160",  # clearing: refunds a credit note owes, until paid
    "Recoverables": "7100",  # gain: disputes won, uncollectible invoices paid after all
    "Fees": "6100",  # expense: dispute fees, on a cash basis
}
EVENT_CODES = {
    "invoice_finalized": "INV",
    "invoice_void": "INVVOID",
    "payment": "PAY",
    "refund": "RFND",
    "credit_note": "CN",
    "credit_note_void": "CNVOID",
    "revenue": "REV",
    "dispute": "DSP",
    "dispute_won": "DSPWON",
    "invoice_uncollectible": "INVUNC",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

JOURNAL_COLUMNS = [
    "entity_id", "period", "journal_key", "line_no", "event", "document_id", "account",
    "erp_account", "erp_subsidiary_id", "erp_customer_id", "debit", "credit", "currency",
    "debit_functional", "credit_functional", "functional_currency", "correlation_id",
]  # fmt: skip


def journal_key(entity_id: str, event: str, document_id: str) -> str:
    """Deterministic key of a (document, event) journal: letters, digits, ``_`` and ``-``.

    The ERP external id is the key plus its version (``-v1``, ``-v2`` after a change) and, for
    a reversing journal, ``-REV`` (``sync_core.posting_plan``).
    """
    doc = _UNSAFE.sub("_", str(document_id))
    return f"{entity_id}-{EVENT_CODES.get(event, event.upper())}-{doc}"


def build_journals(
    lines: pd.DataFrame,
    document_customers: pd.Series,
    customers: pd.DataFrame,
    subsidiary: str | None,
    chart: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn one period's accounting lines into journal lines (and held journals).

    ``document_customers`` maps a document id (invoice, credit note, payment) to its
    customer; ``customers`` carries the ERP crosswalk (customer_id -> erp_customer_id).
    Returns (journal lines, exception rows for journals that were held).
    """
    chart = DEFAULT_CHART if chart is None else chart
    if lines.empty:
        return pd.DataFrame(columns=JOURNAL_COLUMNS), Quarantine.empty()
    df = lines.copy()
    is_rev = df["event"] == "revenue"
    df.loc[is_rev, "document_id"] = (
        "REV-" + df.loc[is_rev, "period"].dt.strftime("%Y%m") + "-" + df.loc[is_rev, "currency"]
    )
    amount_cols = ["debit", "credit", "debit_functional", "credit_functional"]
    keys = ["entity_id", "period", "event", "document_id", "currency", "functional_currency",
            "account"]  # fmt: skip
    # the revenue journal is summarized by account; document journals keep their lines
    rev = (
        df[is_rev]
        .groupby(keys, as_index=False, sort=True)
        .agg(**{c: (c, "sum") for c in amount_cols}, correlation_id=("document_id", "first"))
    )
    doc = df[~is_rev]
    df = pd.concat([doc, rev], ignore_index=True)
    # net debit and credit per account so each line is one-sided
    net = df["debit"] - df["credit"]
    net_f = df["debit_functional"] - df["credit_functional"]
    df["debit"], df["credit"] = net.clip(lower=0), (-net).clip(lower=0)
    df["debit_functional"], df["credit_functional"] = net_f.clip(lower=0), (-net_f).clip(lower=0)
    df = df[(df[amount_cols] != 0).any(axis=1)]

    df["journal_key"] = [
        journal_key(e, ev, d) for e, ev, d in zip(df["entity_id"], df["event"], df["document_id"])
    ]
    erp_ids = customers.set_index("customer_id")["erp_customer_id"] if len(customers) else {}
    cust = df["document_id"].map(document_customers)
    df["erp_customer_id"] = cust.map(erp_ids) if len(customers) else None
    df["erp_account"] = df["account"].map(chart)
    df["erp_subsidiary_id"] = subsidiary
    # a total order: lines on one account keep the same numbers whatever the input order
    df = df.sort_values(
        ["journal_key", "account", "currency", "correlation_id", "debit", "credit",
         "debit_functional", "credit_functional"],
        kind="stable",
    )  # fmt: skip
    df["line_no"] = df.groupby("journal_key").cumcount() + 1

    held = []
    jd = df.groupby(["journal_key", "currency"])
    bal = jd[["debit", "credit", "debit_functional", "credit_functional"]].sum()
    unbalanced = bal[
        (bal["debit"] != bal["credit"]) | (bal["debit_functional"] != bal["credit_functional"])
    ]
    for (eid, cur), row in unbalanced.iterrows():
        held.append(
            (
                eid,
                "journal_balanced",
                "integration",
                f"debits {row['debit']} != credits {row['credit']} {cur}",
            )
        )
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
    if held:
        h = pd.DataFrame(held, columns=["source_id", "rule", "owner", "message"])
        first = df.drop_duplicates("journal_key").set_index("journal_key")
        h["entity_id"] = h["source_id"].map(first["entity_id"])
        h["period"] = h["source_id"].map(first["period"])
        h["document_id"] = h["source_id"].map(first["document_id"])
        h["event"] = h["source_id"].map(first["event"])
        h["object_type"] = "journal"
        exceptions = h[["entity_id", "period", "object_type", "source_id", "rule", "message",
                        "owner", "document_id", "event"]]  # fmt: skip
        df = df[~df["journal_key"].isin(set(h["source_id"]))]
    else:
        exceptions = Quarantine.empty()
    return df[JOURNAL_COLUMNS].reset_index(drop=True), exceptions.reset_index(drop=True)


def journal_balance_problems(journals: pd.DataFrame) -> pd.DataFrame:
    """Journals (per currency) whose debits and credits differ: empty when all balance."""
    if journals.empty:
        return journals
    bal = journals.groupby(["journal_key", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]
    ].sum()
    return bal[
        (bal["debit"] != bal["credit"]) | (bal["debit_functional"] != bal["credit_functional"])
    ]
