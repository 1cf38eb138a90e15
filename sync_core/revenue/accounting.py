"""Business-event accounting lines (domain brief, "Default chart of accounts").

| event | lines |
|---|---|
| ``invoice_finalized`` | Dr CustomerBalance (``balance_applied``: paid from the customer's credit balance) + Dr AccountsReceivable (total - applied) / Cr DeferredRevenue (net not yet earned) / Cr UnbilledAccountsReceivable (net earned before billing) / Cr TaxLiability |
| ``revenue`` (per month) | Dr DeferredRevenue or UnbilledAccountsReceivable / Cr Revenue |
| ``payment`` | Dr Cash (payment rate) / Cr AccountsReceivable (invoice rate) / FxGainLoss (difference) |
| ``credit_note`` | Dr CreditNotes (earned part) + Dr DeferredRevenue (unearned part) + Dr TaxLiability / Cr AccountsReceivable (reduction of the amount due; a pre-payment note's out-of-band part too) + Cr CustomerBalance (credited to the customer's balance) + Cr RefundsPayable (to be refunded) + Cr ExternalCustomerBalance (a post-payment note's out-of-band part) |
| ``refund`` of a credit note | Dr RefundsPayable (invoice rate) / Cr Cash (refund rate) / FxGainLoss |
| ``refund`` of an unapplied payment | Dr CustomerBalance / Cr Cash |
| refunds of an invoice, disputes, uncollectible invoices | see :mod:`sync_core.revenue.contra_journals` |
| ``invoice_void``, ``credit_note_void`` | the original document's lines reversed, dated in the void month |

Amounts are int64 minor units, ``debit``/``credit`` >= 0, in the transaction currency and in
the legal entity's functional currency. Every (document, event) group balances in both;
FxGainLoss lines carry functional amounts only. The deferred and unbilled amounts come from
the schedule's flows (``deferred_booked``, ``deferred_released``, ...), so the ledger's
balances are the schedule's balances. ``correlation_id`` is the source the line comes from
(a schedule source, line, invoice, credit note or payment).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.allocation import conversion_terms, convert_half_even
from sync_core.revenue.balances import CREDIT_NOTE, CREDIT_NOTE_VOID, INVOICE_LINE, INVOICE_VOID
from sync_core.revenue.periods import month_start

AR, UNBILLED, DEFERRED = "AccountsReceivable", "UnbilledAccountsReceivable", "DeferredRevenue"
REVENUE, TAX, CASH = "Revenue", "TaxLiability", "Cash"
CREDIT_NOTES, REFUNDS, BALANCE, FX = "CreditNotes", "Refunds", "CustomerBalance", "FxGainLoss"
# clearing (liability): what a credit note owes back by refund, until its refund is paid;
# ``Refunds`` is contra revenue only (sync_core.revenue.contra_journals)
REFUNDS_PAYABLE = "RefundsPayable"
# clearing (liability): what a post-payment credit note owes the customer outside the
# platform (``out_of_band_amount``: a cheque, a bank transfer), until the ERP records that
# payout; a pre-payment note's out-of-band part reduces the amount due (AR) instead
OUT_OF_BAND = "ExternalCustomerBalance"

LINE_COLUMNS = [
    "entity_id", "period", "event", "document_id", "account", "debit", "credit", "currency",
    "debit_functional", "credit_functional", "functional_currency", "correlation_id",
]  # fmt: skip


def accounting_lines(
    schedule: pd.DataFrame,
    invoices: pd.DataFrame,
    credit_notes: pd.DataFrame,
    payments: pd.DataFrame,
    *,
    contra: pd.DataFrame | None = None,
    disputes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """All journal lines of the batch (checked inputs from :mod:`sync_core.revenue.inputs`);
    ``contra`` and ``disputes`` add refunds without a credit note, disputes and uncollectible
    invoices (:mod:`sync_core.revenue.contra_journals`)."""
    from sync_core.revenue.contra_journals import contra_lines, split_payments

    parts: list[pd.DataFrame] = []
    fin = _invoice_finalized(schedule, invoices)
    parts += [fin, _voided(fin, invoices, "invoice_id", INVOICE_VOID, "invoice_void")]
    cn = _credit_notes(schedule, credit_notes, invoices)
    parts += [cn, _voided(cn, credit_notes, "credit_note_id", CREDIT_NOTE_VOID,
                          "credit_note_void")]  # fmt: skip
    parts.append(_revenue(schedule))
    plain, _ = split_payments(payments, invoices)
    parts.append(_payments(plain, invoices, credit_notes, fin, cn))
    parts += contra_lines(schedule, invoices, payments, disputes, contra)
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_lines()
    signed = pd.concat(parts, ignore_index=True)
    signed = signed[(signed["amount"] != 0) | (signed["amount_functional"] != 0)]
    return _to_lines(signed)


def empty_lines() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in LINE_COLUMNS})
    out["period"] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in ("debit", "credit", "debit_functional", "credit_functional"):
        out[c] = pd.Series(dtype=np.int64)
    return out


def _to_lines(signed: pd.DataFrame) -> pd.DataFrame:
    """Signed amounts (debit positive) -> debit / credit columns."""
    a = signed["amount"].to_numpy(np.int64)
    f = signed["amount_functional"].to_numpy(np.int64)
    out = signed.drop(columns=["amount", "amount_functional"]).copy()
    out["debit"], out["credit"] = np.maximum(a, 0), np.maximum(-a, 0)
    out["debit_functional"], out["credit_functional"] = np.maximum(f, 0), np.maximum(-f, 0)
    out["period"] = pd.to_datetime(out["period"], utc=True).dt.as_unit("ns")
    order = {"invoice_finalized": 0, "credit_note": 1, "payment": 2, "refund": 3,
             "invoice_void": 4, "credit_note_void": 5, "dispute": 6, "dispute_won": 7,
             "invoice_uncollectible": 8, "revenue": 9}  # fmt: skip
    out["_o"] = out["event"].map(order)
    out = out.sort_values(["entity_id", "period", "_o", "document_id"], kind="stable")
    return out[LINE_COLUMNS].reset_index(drop=True)


def _lines(entity, period, event, document, account, amount, amount_f, currency, functional,
           correlation) -> pd.DataFrame:  # fmt: skip
    return pd.DataFrame(
        {
            "entity_id": entity,
            "period": period,
            "event": event,
            "document_id": document,
            "account": account,
            "amount": np.asarray(amount, dtype=np.int64),
            "amount_functional": np.asarray(amount_f, dtype=np.int64),
            "currency": currency,
            "functional_currency": functional,
            "correlation_id": correlation,
        }
    )


def _terms(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return conversion_terms(df["fx_rate"], df["currency"], df["functional_currency"])


def _doc_rows(schedule: pd.DataFrame, source_type: str) -> pd.DataFrame:
    """Each source's document row (its own month, not a correction), with the source's
    contra-revenue in total (a correction row can carry part of it)."""
    all_rows = schedule[schedule["source_type"] == source_type]
    s = all_rows[~all_rows["correction"] & (all_rows["period"] == all_rows["document_period"])]
    s = s.copy()
    for c in ("contra_revenue", "contra_revenue_functional"):
        s[c] = s["source_id"].map(all_rows.groupby("source_id")[c].sum()).to_numpy(np.int64)
    return s


def _invoice_finalized(schedule: pd.DataFrame, invoices: pd.DataFrame) -> pd.DataFrame:
    rows = _doc_rows(schedule, INVOICE_LINE)
    inv = invoices.reset_index(drop=True)
    num, den = _terms(inv)
    tax_f = convert_half_even(inv["tax"].to_numpy(np.int64), num, den)
    doc_period = rows.groupby("invoice_id")["document_period"].min()
    period = inv["invoice_id"].map(doc_period).fillna(inv["period"])
    net_f = (
        (rows["deferred_booked_functional"] - rows["unbilled_booked_functional"])
        .groupby(rows["invoice_id"])
        .sum()
    )
    total_f = inv["invoice_id"].map(net_f).fillna(0).to_numpy(np.int64) + tax_f
    # the part paid from the customer's credit balance leaves the balance, not AR
    applied = inv["balance_applied"].to_numpy(np.int64)
    applied_f = convert_half_even(applied, num, den)
    head = [
        _lines(inv["entity_id"], period, "invoice_finalized", inv["invoice_id"], AR,
               inv["total"].to_numpy(np.int64) - applied, total_f - applied_f,
               inv["currency"], inv["functional_currency"], inv["invoice_id"]),
        _lines(inv["entity_id"], period, "invoice_finalized", inv["invoice_id"], BALANCE,
               applied, applied_f, inv["currency"], inv["functional_currency"],
               inv["invoice_id"]),
        _lines(inv["entity_id"], period, "invoice_finalized", inv["invoice_id"], TAX,
               -inv["tax"].to_numpy(np.int64), -tax_f, inv["currency"],
               inv["functional_currency"], inv["invoice_id"]),
    ]  # fmt: skip
    body = _booked_lines(rows, "invoice_finalized")
    return pd.concat(head + body, ignore_index=True)


def _booked_lines(rows: pd.DataFrame, event: str) -> list[pd.DataFrame]:
    """Deferred, unbilled and contra-revenue lines of documents' own rows."""
    common = (rows["entity_id"], rows["period"], event, rows["document_id"])
    tail = (rows["currency"], rows["functional_currency"], rows["source_id"])
    out = [
        _lines(*common, DEFERRED, -rows["deferred_booked"], -rows["deferred_booked_functional"],
               *tail),
        _lines(*common, UNBILLED, rows["unbilled_booked"], rows["unbilled_booked_functional"],
               *tail),
    ]  # fmt: skip
    if (rows["contra_revenue"] != 0).any() or (rows["contra_revenue_functional"] != 0).any():
        out.append(_lines(*common, CREDIT_NOTES, -rows["contra_revenue"],
                          -rows["contra_revenue_functional"], *tail))  # fmt: skip
    return out


def _credit_notes(schedule, notes, invoices) -> pd.DataFrame:
    if notes.empty:
        return pd.DataFrame()
    rows = _doc_rows(schedule, CREDIT_NOTE)
    inv = invoices.set_index("invoice_id")
    cn = notes.reset_index(drop=True).copy()
    cn["fx_rate"] = cn["invoice_id"].map(inv["fx_rate"])
    cn["functional_currency"] = cn["invoice_id"].map(inv["functional_currency"])
    cn["entity_id"] = cn["invoice_id"].map(inv["entity_id"])
    num, den = _terms(cn)
    conv = {c: convert_half_even(cn[c].to_numpy(np.int64), num, den)
            for c in ("tax", "credit_balance_amount", "refund_amount")}  # fmt: skip
    post = (cn["type"] == "post_payment").to_numpy()
    oob = np.where(post, cn["out_of_band_amount"].to_numpy(np.int64), 0)  # settled outside
    oob_f = convert_half_even(oob, num, den)
    doc_period = rows.groupby("document_id")["document_period"].min()
    period = cn["credit_note_id"].map(doc_period).fillna(cn["period"])
    debit_f = (
        (-rows["deferred_booked_functional"] - rows["contra_revenue_functional"])
        .groupby(rows["document_id"])
        .sum()
    )
    total_f = cn["credit_note_id"].map(debit_f).fillna(0).to_numpy(np.int64) + conv["tax"]
    cb = cn["credit_balance_amount"].to_numpy(np.int64)
    refund = cn["refund_amount"].to_numpy(np.int64)
    ar = cn["total"].to_numpy(np.int64) - cb - refund - oob
    ar_f = total_f - conv["credit_balance_amount"] - conv["refund_amount"] - oob_f
    common = (cn["entity_id"], period, "credit_note", cn["credit_note_id"])
    tail = (cn["currency"], cn["functional_currency"], cn["credit_note_id"])
    head = [
        _lines(*common, TAX, cn["tax"], conv["tax"], *tail),
        _lines(*common, AR, -ar, -ar_f, *tail),
        _lines(*common, BALANCE, -cb, -conv["credit_balance_amount"], *tail),
        _lines(*common, REFUNDS_PAYABLE, -refund, -conv["refund_amount"], *tail),
        _lines(*common, OUT_OF_BAND, -oob, -oob_f, *tail),
    ]
    return pd.concat(head + _booked_lines(rows, "credit_note"), ignore_index=True)


def _voided(original: pd.DataFrame, docs: pd.DataFrame, id_col: str, void_type: str,
            event: str) -> pd.DataFrame:  # fmt: skip
    """The original journal of each voided document, reversed, in the void month."""
    if original.empty or docs.empty:
        return pd.DataFrame()
    void = docs[docs["status"] == "void"]
    if void.empty:
        return pd.DataFrame()
    when = pd.Series(month_start(pd.to_datetime(void["voided_at"], utc=True)).to_numpy(),
                     index=void[id_col].to_numpy())  # fmt: skip
    out = original[original["document_id"].isin(when.index)].copy()
    out["period"] = out["document_id"].map(when)
    out["event"] = event
    out["amount"] = -out["amount"]
    out["amount_functional"] = -out["amount_functional"]
    return out


def _revenue(schedule: pd.DataFrame) -> pd.DataFrame:
    s = schedule
    common = (s["entity_id"], s["period"], "revenue", s["invoice_id"])
    cur = (s["currency"], s["functional_currency"])
    carrier = s["line_key"]
    parts = [
        _lines(*common, REVENUE, -(s["recognized"] - s["contra_revenue"]),
               -(s["recognized_functional"] - s["contra_revenue_functional"]), *cur,
               s["source_id"]),
        _lines(*common, DEFERRED, s["deferred_released"], s["deferred_released_functional"],
               *cur, carrier),
        _lines(*common, UNBILLED, s["unbilled_accrued"], s["unbilled_accrued_functional"],
               *cur, carrier),
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _payments(pays, invoices, notes, fin, cn) -> pd.DataFrame:
    """Payments (Dr Cash / Cr AR) and refunds (Dr Refunds / Cr Cash), FX to FxGainLoss."""
    if pays is None or pays.empty:
        return pd.DataFrame()
    p = pays.reset_index(drop=True).copy()
    inv = invoices.set_index("invoice_id")
    num_p, den_p = _terms(p)
    cash_f = convert_half_even(p["amount"].to_numpy(np.int64), num_p, den_p)
    doc_inv = p["doc_invoice_id"]
    has_inv = doc_inv.notna().to_numpy()
    q = p.assign(fx_rate=doc_inv.map(inv["fx_rate"]).where(has_inv, p["fx_rate"]))
    num_i, den_i = _terms(q)
    relief_f = convert_half_even(p["amount"].to_numpy(np.int64), num_i, den_i)
    is_refund = (p["kind"] == "refund").to_numpy()

    # settle the functional balance exactly when the document is settled in full
    due, due_f = _ar_due(fin, cn, notes, invoices)
    relief_f = _settle(p, relief_f, ~is_refund & has_inv, doc_inv, due, due_f)
    due, due_f = _refunds_due(cn, notes)
    relief_f = _settle(p, relief_f, is_refund & p["credit_note_id"].notna().to_numpy(),
                       p["credit_note_id"], due, due_f)  # fmt: skip

    pay_account = np.where(has_inv, AR, BALANCE)
    event = np.where(is_refund, "refund", "payment")
    sign = np.where(is_refund, -1, 1)  # payment: Dr Cash; refund: Cr Cash
    amount = p["amount"].to_numpy(np.int64)
    common = (p["entity_id"], p["period"], event, p["payment_id"])
    tail = (p["currency"], p["functional_currency"], p["payment_id"])
    # a credit note's refund clears RefundsPayable; a refund of an unapplied payment the
    # customer balance (refunds of an invoice are contra revenue: contra_journals)
    refund_of = np.where(p["credit_note_id"].notna().to_numpy(), REFUNDS_PAYABLE, BALANCE)
    counter = np.where(is_refund, refund_of, pay_account)
    return pd.concat(
        [
            _lines(*common, CASH, sign * amount, sign * cash_f, *tail),
            _lines(*common, counter, -sign * amount, -sign * relief_f, *tail),
            _lines(*common, FX, 0, sign * (relief_f - cash_f), *tail),
        ],
        ignore_index=True,
    )


def _ar_due(fin, cn, notes, invoices) -> tuple[pd.Series, pd.Series]:
    """What each invoice (not void) leaves on AR: its total less the customer balance applied
    to it (the AR line of its journal) less its credit notes' AR part."""
    live_inv = invoices.loc[invoices["status"] != "void", "invoice_id"]
    ar = fin[(fin["account"] == AR) & fin["document_id"].isin(live_inv)]
    due = ar.groupby("document_id")["amount"].sum()
    due_f = ar.groupby("document_id")["amount_functional"].sum()
    if len(cn):
        live = notes[notes["status"] != "void"].set_index("credit_note_id")["invoice_id"]
        c = cn[(cn["account"] == AR) & cn["document_id"].isin(live.index)]
        inv_of = c["document_id"].map(live)
        due = due.add(c.groupby(inv_of)["amount"].sum(), fill_value=0)
        due_f = due_f.add(c.groupby(inv_of)["amount_functional"].sum(), fill_value=0)
    return due, due_f


def _refunds_due(cn, notes) -> tuple[pd.Series, pd.Series]:
    """What each credit note (not void) leaves to refund."""
    if cn is None or not len(cn):
        return pd.Series(dtype=np.int64), pd.Series(dtype=np.int64)
    live = notes.loc[notes["status"] != "void", "credit_note_id"]
    r = cn[(cn["account"] == REFUNDS_PAYABLE) & cn["document_id"].isin(live)]
    return -r.groupby("document_id")["amount"].sum(), -r.groupby("document_id")[
        "amount_functional"
    ].sum()


def _settle(p, relief_f, mask, doc_ids, due, due_f) -> np.ndarray:
    """When the payments (or refunds) of a document add up to what it left due, the last one
    takes the functional remainder, so the account is cleared in both currencies."""
    if not mask.any() or due.empty:
        return relief_f
    sel = np.flatnonzero(mask)
    sub = pd.DataFrame({"i": sel, "doc": doc_ids.to_numpy()[sel],
                        "ns": p["created_ns"].to_numpy()[sel],
                        "id": p["payment_id"].to_numpy()[sel],
                        "amt": p["amount"].to_numpy(np.int64)[sel],
                        "rf": relief_f[sel]}).sort_values(["doc", "ns", "id"])  # fmt: skip
    paid = sub.groupby("doc")["amt"].transform("sum").to_numpy()
    settled = paid == sub["doc"].map(due).to_numpy()
    last = ~sub["doc"].duplicated(keep="last").to_numpy()
    others = (sub.groupby("doc")["rf"].transform("sum") - sub["rf"]).to_numpy()
    fix = settled & last
    rest = sub["doc"].map(due_f).fillna(0).to_numpy() - others
    out = relief_f.copy()
    out[sub["i"].to_numpy()[fix]] = rest[fix].astype(np.int64)
    return out
