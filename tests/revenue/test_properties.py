"""Property tests of the kernel and the engine (hypothesis).

Kernel: ``expand_lines`` equals a plain per-line reference (calendar walk in Python, then
``sync_core.money.allocate``) for any amounts, instants and methods, so every line sums to
the cent and nothing lands outside its service months; the result does not depend on row
order.

Engine: on generated books (invoices with prorations and usage, credit notes with and without
lines, voids, payments, foreign currency), the schedule recognizes exactly what was billed
net of credits and voids, each source within its months, the rollforward holds every month,
the ledger's balances are the schedule's, every journal balances, and the result does not
depend on the order of the input rows.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_core.money import allocate
from sync_core.revenue import expand_lines, recognize, rollforward
from tests.revenue.factory import Book

NS_DAY = 86_400 * 10**9
NS_MS = 10**6
BASE = pd.Timestamp("2026-01-01", tz="UTC").value
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENGINE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# kernel


def month_index(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def month_first_day(m: int) -> int:
    """Days since the epoch of the first day of month index ``m``."""
    return (dt.date(m // 12, m % 12 + 1, 1) - dt.date(1970, 1, 1)).days


def reference(amount: int, start_ns: int, end_ns: int, method: str) -> dict[int, int]:
    """Recognized per month index, computed the slow and obvious way."""
    d0 = start_ns // NS_DAY
    d1 = max(end_ns // NS_DAY, d0 + 1)
    m0 = month_index(dt.date(1970, 1, 1) + dt.timedelta(days=d0))
    if method == "month":
        s = pd.Timestamp(start_ns // 10**9 * 10**9, tz="UTC")
        e = pd.Timestamp(end_ns // 10**9 * 10**9, tz="UTC")

        def frac(t):
            first = pd.Timestamp(year=t.year, month=t.month, day=1, tz="UTC")
            return Fraction(int((t - first).total_seconds()),
                            t.days_in_month * 86_400)  # fmt: skip

        span = (e.year * 12 + e.month) - (s.year * 12 + s.month) + frac(e) - frac(s)
        n = max(1, int(np.floor(span + Fraction(1, 2))))
        months, weights = list(range(m0, m0 + n)), [1] * n
    else:
        if method == "day":
            lo, hi, unit = d0, d1, 1
        else:
            lo = start_ns // NS_MS
            hi = max(end_ns // NS_MS, lo + 1)
            unit = 86_400_000
        months, weights = [], []
        m = m0
        while month_first_day(m) * unit < hi:
            a = max(lo, month_first_day(m) * unit)
            b = min(hi, month_first_day(m + 1) * unit)
            months.append(m)
            weights.append(b - a)
            m += 1
    parts = allocate(amount, weights)
    return {m: int(p) for m, p in zip(months, parts)}


line_st = st.tuples(
    st.one_of(st.integers(-(10**6), 10**9), st.integers(-(10**15), 10**15)),  # amount
    st.integers(-400 * NS_DAY, 800 * NS_DAY),  # start offset from 2026-01-01
    st.one_of(st.integers(1, 900 * NS_DAY), st.integers(1, 3 * NS_DAY)),  # duration
    st.sampled_from(["day", "millisecond", "month"]),
)


def as_frame(specs) -> pd.DataFrame:
    return pd.DataFrame({
        "line_key": [f"in_{i}/il_{i}" for i in range(len(specs))],
        "amount": np.array([s[0] for s in specs], dtype=np.int64),
        "period_start": pd.to_datetime([BASE + s[1] for s in specs], utc=True),
        "period_end": pd.to_datetime([BASE + s[1] + s[2] for s in specs], utc=True),
    })  # fmt: skip


def by_line(out: pd.DataFrame) -> dict[str, dict[int, int]]:
    m = (out["period"].dt.year * 12 + out["period"].dt.month - 1).to_numpy()
    res: dict[str, dict[int, int]] = {}
    for key, month, value in zip(out["line_key"], m, out["recognized"]):
        res.setdefault(key, {})[int(month)] = int(value)
    return res


@FAST
@given(st.lists(line_st, min_size=1, max_size=25))
def test_kernel_matches_the_reference_and_sums_to_the_cent(specs):
    lines = as_frame(specs)
    methods = pd.Series([s[3] for s in specs], index=lines.index)
    out = expand_lines(lines, methods)
    assert out["recognized"].dtype == np.int64
    got = by_line(out)
    for i, (amount, off, dur, method) in enumerate(specs):
        want = reference(amount, BASE + off, BASE + off + dur, method)
        assert got[f"in_{i}/il_{i}"] == want, (amount, off, dur, method)
        assert sum(got[f"in_{i}/il_{i}"].values()) == amount
    # nothing outside the service months (start month .. month of the last instant)
    start_m = lines["period_start"].dt.year * 12 + lines["period_start"].dt.month - 1
    last = lines["period_end"] - pd.Timedelta(1, "ns")
    end_m = np.maximum(last.dt.year * 12 + last.dt.month - 1, start_m)
    for i in range(len(specs)):
        months = got[f"in_{i}/il_{i}"].keys()
        assert min(months) == start_m[i] and max(months) <= end_m[i]


@FAST
@given(st.lists(line_st, min_size=2, max_size=25), st.randoms(use_true_random=False),
       st.sampled_from(["day", "millisecond", "month"]))  # fmt: skip
def test_kernel_does_not_depend_on_row_order(specs, rnd, method):
    lines = as_frame(specs)
    order = list(range(len(lines)))
    rnd.shuffle(order)
    a = by_line(expand_lines(lines, method))
    b = by_line(expand_lines(lines.iloc[order].reset_index(drop=True), method))
    assert a == b


# ---------------------------------------------------------------------------------------------
# engine


@st.composite
def books(draw) -> Book:
    method = draw(st.sampled_from(["day", "millisecond", "month"]))
    b = Book(method=method)
    fx = draw(st.sampled_from([("USD", "1"), ("EUR", "1.0842"), ("JPY", "0.0067"),
                               ("KWD", "3.2555")]))  # fmt: skip
    currency, rate = fx
    for i in range(draw(st.integers(1, 4))):
        inv = f"in_{i}"
        fin_day = draw(st.integers(0, 300))
        lines = []
        for j in range(draw(st.integers(1, 3))):
            start = draw(st.integers(-60, 330)) * NS_DAY + draw(st.sampled_from(
                [0, 0, 0, 7 * 3600 * 10**9, 12 * 3600 * 10**9 + 1234]))  # fmt: skip
            length = draw(st.sampled_from([1, 10, 28, 31, 30, 90, 365, 366])) * NS_DAY + draw(
                st.sampled_from([0, 0, 3600 * 10**9]))  # fmt: skip
            amount = draw(st.one_of(st.integers(0, 500_000), st.integers(-20_000, 0)))
            usage = draw(st.booleans()) and j == 0
            item = f"si_{i}_{j}"
            lines.append((f"il_{j}", amount, pd.Timestamp(BASE + start, tz="UTC"),
                          pd.Timestamp(BASE + start + length, tz="UTC"),
                          "usage" if usage else "subscription", item))  # fmt: skip
            if usage:
                for _ in range(draw(st.integers(0, 4))):
                    at = BASE + start + draw(st.integers(0, length - 1))
                    b.use(item, pd.Timestamp(at, tz="UTC"), draw(st.integers(0, 50)))
        fin = pd.Timestamp(BASE + fin_day * NS_DAY + 3600 * 10**9, tz="UTC")
        void = draw(st.integers(0, 5)) == 0
        voided_at = fin + pd.Timedelta(days=draw(st.integers(0, 200))) if void else None
        tax = draw(st.sampled_from([0, 0, 1000]))
        b.invoice(inv, fin, lines, currency=currency, fx_rate=rate, tax=tax,
                  status="void" if void else "open", voided_at=voided_at)  # fmt: skip
        subtotal = sum(spec[1] for spec in lines)
        if void:
            continue
        for c in range(draw(st.integers(0, 2))):
            issued = fin + pd.Timedelta(days=draw(st.integers(0, 400)))
            cn_void = draw(st.integers(0, 3)) == 0
            cn_voided = issued + pd.Timedelta(days=draw(st.integers(0, 100))) if cn_void else None
            shape = draw(st.sampled_from(["line", "loose", "none"]))
            cid = f"cn_{i}_{c}"
            positive = [(f"{inv}/{spec[0]}", spec[1]) for spec in lines if spec[1] > 0]
            if shape == "line" and positive:
                key, amt = draw(st.sampled_from(positive))
                b.credit_note(cid, inv, issued, [(key, draw(st.integers(1, amt)))],
                              status="void" if cn_void else "issued", voided_at=cn_voided,
                              currency=currency, tax=draw(st.sampled_from([0, 10])))  # fmt: skip
            elif subtotal > 0 and shape in ("loose", "none"):
                amt = draw(st.integers(1, subtotal))
                kind = draw(st.sampled_from(["pre_payment", "post_payment"]))
                b.credit_note(cid, inv, issued, [(None, amt)] if shape == "loose" else None,
                              subtotal=amt, kind=kind, status="void" if cn_void else "issued",
                              voided_at=cn_voided, currency=currency)  # fmt: skip
                if kind == "post_payment" and not cn_void:
                    b.pay(f"re_{cid}", inv, amt, issued + pd.Timedelta(days=1), kind="refund",
                          credit_note_id=cid, fx_rate="1.25", currency=currency)  # fmt: skip
        if draw(st.booleans()) and subtotal + tax > 0:
            b.pay(f"py_{i}", inv, subtotal + tax, fin + pd.Timedelta(days=5), fx_rate="1.1",
                  currency=currency)  # fmt: skip
    return b


def month_no(ts: pd.Series) -> np.ndarray:
    return (ts.dt.year * 12 + ts.dt.month - 1).to_numpy()


def check_engine(b: Book, result) -> None:
    s, al = result.schedule, result.accounting_lines
    assert result.quarantine.empty, result.quarantine
    inv = pd.DataFrame(b.invoices).set_index("invoice_id")
    notes = pd.DataFrame(b.notes)
    # 1. recognized == billed, per source and per invoice net of credits and voids
    per_src = s.groupby("source_id")[["recognized", "billed", "recognized_functional",
                                      "billed_functional"]].sum()  # fmt: skip
    assert (per_src["recognized"] == per_src["billed"]).all()
    assert (per_src["recognized_functional"] == per_src["billed_functional"]).all()
    live_credit = (notes[notes["status"] != "void"].groupby("invoice_id")["subtotal"].sum()
                   if len(notes) else pd.Series(dtype=np.int64))  # fmt: skip
    want = (inv["subtotal"] - live_credit.reindex(inv.index, fill_value=0)).where(
        inv["status"] != "void", 0)  # fmt: skip
    got = s.groupby("invoice_id")["recognized"].sum().reindex(inv.index, fill_value=0)
    pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=False)
    # 2. each source within its months
    lines = pd.DataFrame(b.lines).set_index("line_key")
    nz = s[s["recognized"] != 0]
    m = month_no(nz["period"])
    svc_lo = month_no(nz["line_key"].map(lines["period_start"]))
    svc_hi = month_no(nz["line_key"].map(lines["period_end"]) - pd.Timedelta(1, "ns"))
    doc = month_no(nz["document_period"])
    is_line = (nz["source_type"] == "invoice_line").to_numpy()
    assert ((m >= svc_lo) & (m <= svc_hi))[is_line].all()
    assert ((m >= np.maximum(svc_lo, doc)) & (m <= np.maximum(svc_hi, doc)))[~is_line].all()
    # 3. deferred revenue never negative, and none before the invoice bills anything; unbilled
    # AR never negative once billed (before, a net credit not yet billed is negative unbilled
    # AR, as Stripe shows a downgrade's proration credit); the rollforward holds and closes on
    # the schedule's balances
    unbilled_yet = (s["period"] < s["document_period"]).to_numpy()
    assert (s["deferred_balance"] >= 0).all()
    assert (s["deferred_balance"].to_numpy()[unbilled_yet] == 0).all()
    assert (s["unbilled_balance"].to_numpy()[~unbilled_yet] >= 0).all()
    roll = rollforward(s)
    assert (roll["opening_deferred"] + roll["billings"] - roll["recognized"] - roll["credits"]
            == roll["closing_deferred"]).all()  # fmt: skip
    closing = s.groupby("period")["deferred_balance"].sum()
    assert (roll.set_index("period")["closing_deferred"].reindex(closing.index) == closing).all()
    # 4. every journal balances, in both currencies (revenue: every month on its own)
    g = al.groupby(["document_id", "event", "currency", "period"])[
        ["debit", "credit", "debit_functional", "credit_functional"]].sum()  # fmt: skip
    assert (g["debit"] == g["credit"]).all() and (
        g["debit_functional"] == g["credit_functional"]).all()  # fmt: skip
    # 5. the ledger's balances are the schedule's, month by month, in both currencies
    months = pd.Index(sorted(s["period"].unique()))
    for suffix in ("", "_functional"):
        net = al["debit" + suffix] - al["credit" + suffix]

        def bal(account, sign, net=net):
            mv = (sign * net[al["account"] == account]).groupby(al["period"]).sum()
            return mv.reindex(months.union(mv.index), fill_value=0).cumsum().reindex(months)

        rev = (-net[al["account"].isin(["Revenue", "CreditNotes"])]).groupby(
            al["period"]).sum().reindex(months, fill_value=0)  # fmt: skip
        sched_rev = s.groupby("period")["recognized" + suffix].sum().reindex(months)
        assert (rev == sched_rev).all()
        if suffix == "":
            assert (bal("DeferredRevenue", -1) == s.groupby("period")["deferred_balance"].sum()
                    .reindex(months)).all()  # fmt: skip
            assert (bal("UnbilledAccountsReceivable", 1) == s.groupby("period")[
                "unbilled_balance"].sum().reindex(months)).all()  # fmt: skip
        else:
            assert (bal("DeferredRevenue", -1) == s.groupby("period")[
                "deferred_balance_functional"].sum().reindex(months)).all()  # fmt: skip
    # 6. refunds clear what their credit note left to refund, in both currencies
    refunded = al[al["account"] == "Refunds"]
    if len(refunded):
        assert refunded["debit"].sum() == refunded["credit"].sum()
        assert refunded["debit_functional"].sum() == refunded["credit_functional"].sum()
    # 7. AR: each invoice finalized for its total
    ar = al[(al["event"] == "invoice_finalized") & (al["account"] == "AccountsReceivable")]
    got_ar = (ar["debit"] - ar["credit"]).groupby(ar["document_id"]).sum()
    assert (got_ar == inv["total"].reindex(got_ar.index)).all()
    assert set(got_ar.index) == set(inv.index[inv["total"] != 0])


@ENGINE
@given(books())
def test_engine_invariants(b):
    check_engine(b, recognize(**b.frames(validate=False)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(), st.randoms(use_true_random=False))
def test_engine_does_not_depend_on_row_order(b, rnd):
    frames = b.frames(validate=False)
    shuffled = {}
    for name, df in frames.items():
        order = list(range(len(df)))
        rnd.shuffle(order)
        shuffled[name] = df.iloc[order].reset_index(drop=True)
    a, z = recognize(**frames), recognize(**shuffled)

    def norm(df, keys):
        return df.sort_values(keys, kind="stable").reset_index(drop=True)

    keys = ["source_id", "period", "correction"]
    pd.testing.assert_frame_equal(norm(a.schedule, keys), norm(z.schedule, keys))
    cols = list(a.accounting_lines.columns)
    pd.testing.assert_frame_equal(norm(a.accounting_lines, cols),
                                  norm(z.accounting_lines, cols))  # fmt: skip
