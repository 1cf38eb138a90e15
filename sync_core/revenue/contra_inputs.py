"""Checks of the events that take revenue back after billing, and the event table they make.

Runs after :func:`sync_core.revenue.inputs.check_inputs` has checked the documents. A record
that breaks a rule goes to quarantine (owner ``integration``) with its reason; the rest
becomes one row per event (:data:`~sync_core.revenue.contra.EVENT_COLUMNS`):

- a **refund without a credit note** (``payments`` row, ``kind = refund``, ``invoice_id``
  set): ``invoice_not_void``, ``lines_to_credit`` (the invoice has a line to take it from),
  ``refund_within_paid`` (refunds and disputes of an invoice never exceed what was paid on it
  before them), ``before_uncollectible`` (a refund of an invoice already marked uncollectible
  is not handled yet: Stripe's "uncollectible and refunded" case);
- a **dispute** whose funds were withdrawn (``needs_response``, ``under_review``, ``won``,
  ``lost``): ``payment_exists``, ``invoice_matches``, ``entity_matches``,
  ``currency_matches``, ``fx_rate_valid``, ``fee_currency_supported`` (the fee is in the
  dispute's or the entity's functional currency), ``closed_at_present`` (won or lost), and the
  refund rules above (``dispute_within_paid``). Inquiries and ``prevented`` book nothing;
- an **uncollectible invoice** (``uncollectible_at`` set, not void): the amount still due when
  it was marked, ``D = total - balance applied - payments before - credit notes' AR part``,
  and the net it still carries, ``N = subtotal - credit notes - refunds and disputes``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sync_core.revenue.contra import DISPUTE, REFUND, UNCOLLECTIBLE, empty_events, split_tax
from sync_core.revenue.input_rules import (
    RATE_PATTERN,
    Rules,
    _exceptions,
    _integers,
    _month_start,
    _period,
)
from sync_core.revenue.periods import instants_ns, is_nat

WITHDRAWN = ["needs_response", "under_review", "won", "lost"]
DISPUTE_COLUMNS = [
    "dispute_id", "entity_id", "period", "payment_id", "invoice_id", "customer_id", "amount",
    "currency", "fee", "fee_currency", "status", "created_at", "closed_at", "fx_rate",
]  # fmt: skip


def check_contra(chk, disputes: pd.DataFrame | None):
    """``chk`` with ``disputes`` (checked), ``contra`` (the event table) and the refunds and
    disputes that break a rule moved to its exceptions."""
    exc = chk.exceptions
    inv = chk.invoices
    inv["uncollectible_ns"] = instants_ns(inv["uncollectible_at"])
    disp = _check_disputes(_dispute_frame(disputes), chk, exc)
    pays = chk.payments
    is_refund = (pays["kind"] == "refund").to_numpy() & pays["credit_note_id"].isna().to_numpy()
    is_refund &= pays["invoice_id"].notna().to_numpy()
    refunds = pays[is_refund]
    withdrawn = disp[disp["status"].isin(WITHDRAWN)]
    both = [
        _withdrawal(refunds, "payment_id", "created_ns", "payments", REFUND),
        _withdrawal(withdrawn, "dispute_id", "created_ns", "disputes", DISPUTE),
    ]
    w = pd.concat([f for f in both if len(f)] or both[:1], ignore_index=True)
    bad = _bad_withdrawals(w, pays, inv, chk.lines)
    for object_type, frame, id_col in (("payments", pays, "payment_id"),
                                       ("disputes", disp, "dispute_id")):  # fmt: skip
        for rule, ids, message in bad:
            mask = frame[id_col].isin(ids[ids.index == object_type]).to_numpy()
            if object_type == "payments":
                mask &= is_refund
            exc.append(_exceptions(frame, mask, object_type, rule, message))
    held = pd.concat([ids for _, ids, _ in bad]) if bad else pd.Series(dtype=object)
    chk.payments = pays[~(is_refund & pays["payment_id"].isin(held))].reset_index(drop=True)
    chk.disputes = disp[~disp["dispute_id"].isin(held)].reset_index(drop=True)
    w = w[~w["event_id"].isin(held)]
    chk.contra = _events(w, inv, chk.payments, chk.credit_notes)
    return chk


def _dispute_frame(disputes: pd.DataFrame | None) -> pd.DataFrame:
    df = pd.DataFrame() if disputes is None else disputes
    out = df.reset_index(drop=True).copy()
    for col in DISPUTE_COLUMNS:
        if col not in out.columns:
            out[col] = pd.Series([None] * len(out), dtype="object")
    return out


def _check_disputes(disp: pd.DataFrame, chk, exc: list) -> pd.DataFrame:
    disp = disp.drop_duplicates("dispute_id", keep="last").reset_index(drop=True)
    disp["created_ns"] = instants_ns(disp["created_at"])
    disp["closed_ns"] = instants_ns(disp["closed_at"])
    disp["period"] = _period(disp, "created_at")
    paid = chk.payments[chk.payments["kind"] == "payment"].set_index("payment_id")
    by_inv = chk.invoices.set_index("invoice_id")
    ent = chk.entities
    rule = Rules(disp, "disputes", exc)

    for col in ("amount", "fee"):
        values, ok = _integers(disp[col].fillna(0) if col == "fee" else disp[col])
        rule(~ok | (values < (1 if col == "amount" else 0)), f"{col}_integer",
             f"{col} is not a {'positive' if col == 'amount' else 'non-negative'} integer")  # fmt: skip
        disp[col] = values
    rule(~disp["entity_id"].isin(ent.index), "entity_known", "legal entity unknown")
    rule(~disp["payment_id"].isin(paid.index), "payment_exists",
         lambda b: [f"disputed payment {p!r} is unknown, quarantined or not a payment"
                    for p in b["payment_id"]])  # fmt: skip
    pay_inv = disp["payment_id"].map(paid["invoice_id"])
    given = disp["invoice_id"].notna().to_numpy()
    rule(given & (disp["invoice_id"].to_numpy() != pay_inv.to_numpy()), "invoice_matches",
         "the dispute's invoice is not the invoice its payment paid")  # fmt: skip
    disp["invoice_id"] = pay_inv
    rule(~disp["invoice_id"].isin(by_inv.index), "header_exists",
         "the disputed payment paid no known invoice")  # fmt: skip
    rule(disp["payment_id"].map(paid["entity_id"]).to_numpy() != disp["entity_id"].to_numpy(),
         "entity_matches", "dispute and payment belong to different legal entities")  # fmt: skip
    rule(disp["payment_id"].map(paid["currency"]).to_numpy() != disp["currency"].to_numpy(),
         "currency_matches", "dispute currency differs from the payment currency")  # fmt: skip
    functional = disp["entity_id"].map(ent["functional_currency"])
    rate = disp["fx_rate"].astype("string")
    same = (disp["currency"] == functional).to_numpy()
    rate = rate.where(~(rate.isna().to_numpy() & same), "1")
    rate_ok = rate.str.fullmatch(RATE_PATTERN).fillna(False).to_numpy(dtype=bool)
    rate_ok &= pd.to_numeric(rate, errors="coerce").fillna(0).to_numpy() > 0
    rule(~rate_ok, "fx_rate_valid", "exchange rate is not a positive decimal")
    disp["fx_rate"] = rate.astype(object)
    fee_cur = disp["fee_currency"].where(disp["fee_currency"].notna(), disp["currency"])
    rule((disp["fee"].to_numpy() > 0) & (fee_cur.to_numpy() != disp["currency"].to_numpy())
         & (fee_cur.to_numpy() != functional.to_numpy()), "fee_currency_supported",
         lambda b: [f"fee currency {c!r} is neither the dispute's nor the functional currency"
                    for c in b["fee_currency"]])  # fmt: skip
    disp["fee_currency"] = fee_cur
    rule(is_nat(disp["created_ns"].to_numpy()), "created_at_present", "no creation time")
    closed = disp["status"].isin(["won", "lost"]).to_numpy()
    rule(closed & is_nat(disp["closed_ns"].to_numpy()), "closed_at_present",
         "a won or lost dispute without closed_at")  # fmt: skip
    rule(~disp["status"].isin(WITHDRAWN + ["warning_needs_response", "warning_under_review",
                                           "warning_closed", "prevented"]),
         "status_known", "unknown dispute status")  # fmt: skip
    disp = disp[~rule.bad].reset_index(drop=True)
    disp["functional_currency"] = disp["entity_id"].map(ent["functional_currency"])
    return disp


def _withdrawal(df, id_col, ns_col, object_type, source_type) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": df[id_col].astype(object).to_numpy(),
            "object_type": object_type,
            "source_type": source_type,
            "invoice_id": df["invoice_id"].to_numpy(),
            "entity_id": df["entity_id"].to_numpy(),
            "ns": df[ns_col].to_numpy(np.int64),
            "period": pd.to_datetime(df["period"], utc=True).to_numpy(),
            "gross": df["amount"].to_numpy(np.int64),
            "currency": df["currency"].to_numpy(),
            "fx_rate": df["fx_rate"].to_numpy(),
        }
    )


def _bad_withdrawals(w: pd.DataFrame, pays, inv, lines) -> list[tuple[str, pd.Series, str]]:
    """(rule, ids indexed by object type, message) of the refunds and disputes to hold."""
    if w.empty:
        return []
    by_inv = inv.set_index("invoice_id")
    ids = pd.Series(w["event_id"].to_numpy(), index=w["object_type"].to_numpy())
    out = []
    void = w["invoice_id"].map(by_inv["is_void"]).eq(True).to_numpy()
    out.append(("invoice_not_void", ids[void], "a refund or dispute of a voided invoice"))
    spread = lines.groupby("invoice_id")["amount"].apply(lambda a: int(np.abs(a).sum()))
    none = w["invoice_id"].map(spread).fillna(0).to_numpy() <= 0
    out.append(("lines_to_credit", ids[none & ~void],
                "the invoice has no line to take the refund or dispute from"))  # fmt: skip
    unc = w["invoice_id"].map(by_inv["uncollectible_ns"]).fillna(np.iinfo(np.int64).min)
    late = ~is_nat(unc.to_numpy(np.int64)) & (w["ns"].to_numpy() >= unc.to_numpy(np.int64))
    out.append(("before_uncollectible", ids[late & ~void & ~none],
                "a refund or dispute after the invoice was marked uncollectible is not "
                "supported yet (Stripe: uncollectible, paid, then refunded or disputed)"))  # fmt: skip
    over = _over_paid(w, pays)
    rest = ~void & ~none & ~late
    for object_type, rule in (("payments", "refund_within_paid"),
                              ("disputes", "dispute_within_paid")):  # fmt: skip
        sel = over & rest & (w["object_type"] == object_type).to_numpy()
        out.append((rule, ids[sel], "refunds and disputes of the invoice would exceed what "
                                    "was paid on it before them"))  # fmt: skip
    return [(r, i, m) for r, i, m in out if len(i)]


def _over_paid(w: pd.DataFrame, pays: pd.DataFrame) -> np.ndarray:
    """Per withdrawal: do the invoice's withdrawals up to it exceed its payments before it?"""
    paid = pays[(pays["kind"] == "payment") & pays["invoice_id"].notna()]
    timeline = pd.concat(
        [
            pd.DataFrame({"invoice_id": paid["invoice_id"].to_numpy(),
                          "ns": paid["created_ns"].to_numpy(np.int64), "o": 0,
                          "amount": paid["amount"].to_numpy(np.int64), "i": -1}),
            pd.DataFrame({"invoice_id": w["invoice_id"].to_numpy(), "ns": w["ns"].to_numpy(),
                          "o": 1, "amount": -w["gross"].to_numpy(np.int64),
                          "i": np.arange(len(w))}),
        ],
        ignore_index=True,
    ).sort_values(["invoice_id", "ns", "o", "i"], kind="stable")  # fmt: skip
    running = timeline.groupby("invoice_id")["amount"].cumsum().to_numpy()
    out = np.zeros(len(w), dtype=bool)
    is_w = timeline["i"].to_numpy() >= 0
    out[timeline["i"].to_numpy()[is_w]] = running[is_w] < 0
    return out


def _events(w: pd.DataFrame, inv: pd.DataFrame, pays: pd.DataFrame, notes: pd.DataFrame):
    """The event table: refunds and disputes (their tax share split off), then the
    uncollectible invoices."""
    by_inv = inv.set_index("invoice_id")
    parts = []
    if len(w):
        tax = split_tax(w["gross"], w["invoice_id"].map(by_inv["tax"]),
                        w["invoice_id"].map(by_inv["total"]))  # fmt: skip
        parts.append(w.assign(tax=tax, net=w["gross"].to_numpy(np.int64) - tax,
                              earned_num=1, earned_den=1))  # fmt: skip
    parts.append(_uncollectible(inv, w, pays, notes))
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_events()
    cols = list(empty_events().columns) + ["ns"]
    out = pd.concat([p[cols] for p in parts], ignore_index=True)
    for c in ("gross", "net", "tax", "earned_num", "earned_den", "ns"):
        out[c] = out[c].astype(np.int64)
    out["period"] = pd.to_datetime(out["period"], utc=True).dt.as_unit("ns")
    return out


def _uncollectible(inv, w, pays, notes) -> pd.DataFrame:
    u = inv[~is_nat(inv["uncollectible_ns"].to_numpy()) & ~inv["is_void"].to_numpy()]
    if u.empty:
        return pd.DataFrame()
    at = u.set_index("invoice_id")["uncollectible_ns"]

    def before(df, ns_col, cols):
        df = df[df["invoice_id"].isin(at.index)]
        df = df[df[ns_col].to_numpy() < df["invoice_id"].map(at).to_numpy()]
        return df.groupby("invoice_id")[cols].sum()

    paid = before(pays[pays["kind"] == "payment"], "created_ns", ["amount"])["amount"]
    live = notes[notes["status"] != "void"].assign(
        ar=lambda n: n["total"] - n["credit_balance_amount"] - n["refund_amount"]
    )
    cn = before(live, "issued_ns", ["subtotal", "total", "ar"])
    wd = before(w.assign(net=w["gross"] - split_tax(
        w["gross"], w["invoice_id"].map(inv.set_index("invoice_id")["tax"]),
        w["invoice_id"].map(inv.set_index("invoice_id")["total"]))), "ns", ["gross", "net"]
    ) if len(w) else pd.DataFrame(columns=["gross", "net"])  # fmt: skip
    ids = u["invoice_id"]

    def get(frame, col):
        return ids.map(frame[col] if col in frame else pd.Series(dtype=np.int64)).fillna(0)

    applied = u["balance_applied"].fillna(0) if "balance_applied" in u else 0
    due = u["total"] - applied - ids.map(paid).fillna(0) - get(cn, "ar")
    due = np.maximum(due.to_numpy(np.int64), 0)
    net = (u["subtotal"] - get(cn, "subtotal") - get(wd, "net")).to_numpy(np.int64)
    gross = (u["total"] - get(cn, "total") - get(wd, "gross")).to_numpy(np.int64)
    tax = split_tax(due, gross - net, gross)
    return pd.DataFrame(
        {
            "event_id": ids.to_numpy(),
            "source_type": UNCOLLECTIBLE,
            "invoice_id": ids.to_numpy(),
            "entity_id": u["entity_id"].to_numpy(),
            "ns": u["uncollectible_ns"].to_numpy(np.int64),
            "period": _month_start(u["uncollectible_ns"].to_numpy(np.int64)).to_numpy(),
            "gross": due,
            "tax": tax,
            "net": np.maximum(net, 0),
            "currency": u["currency"].to_numpy(),
            "fx_rate": u["fx_rate"].to_numpy(),
            "earned_num": np.clip(due - tax, 0, np.maximum(net, 0)),
            "earned_den": np.maximum(net, 1),
        }
    )
