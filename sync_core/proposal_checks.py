"""Blocking checks on a proposal: what must hold before anything of the period posts.

Each check looks at the stored proposal (and the stored schedule), not at the code that built
it, and names what broke it:

| check | passes when |
|---|---|
| ``proposal_balanced`` | every ready journal balances per currency, in transaction and functional amounts |
| ``proposal_accounts_mapped`` | every ready line has an ERP account |
| ``proposal_customers_known`` | every ready document line has an ERP customer id |
| ``proposal_periods_open`` | no ready journal would post into a closed or locked ERP period |
| ``schedule_equals_proposed_gl`` | per account group and currency, the month's schedule movement (revenue and contra revenue, deferred revenue, unbilled AR) equals the proposal's (held journals included) |
| ``rollforward_balances`` | opening deferred + billings - recognized - credits = closing deferred |

``erp_postings`` runs them again on what it loaded and posts nothing when one fails, so a
run of ``erp_postings`` alone (a replay) is guarded as well as the full chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sync_core.money import checked_group_sum
from sync_core.proposal import may_post

# the P&L side of revenue: revenue and its contra accounts move together with `recognized`
REVENUE_GROUP = {"Revenue", "CreditNotes", "Refunds", "Disputes", "BadDebt"}
_AMOUNTS = ["debit", "credit", "debit_functional", "credit_functional"]


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    metadata: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # readable, at most a few


def _ready(proposal: pd.DataFrame) -> pd.DataFrame:
    """What a posting run may still post (ready, or held by the plan only)."""
    return proposal[may_post(proposal) & (proposal["action"] != "unchanged")]


def balanced(proposal: pd.DataFrame) -> CheckOutcome:
    ready = _ready(proposal)
    if ready.empty:
        return CheckOutcome("proposal_balanced", True, {"unbalanced_journals": 0})
    sums = checked_group_sum(ready, ["journal_key", "currency"], _AMOUNTS, "proposed journal")
    bad = sums[(sums["debit"] != sums["credit"])
               | (sums["debit_functional"] != sums["credit_functional"])]  # fmt: skip
    problems = [f"{k} {c}: debits {r['debit']} credits {r['credit']} (functional "
                f"{r['debit_functional']} / {r['credit_functional']})"
                for (k, c), r in bad.head(5).iterrows()]  # fmt: skip
    return CheckOutcome("proposal_balanced", bad.empty, {"unbalanced_journals": len(bad)},
                        problems)  # fmt: skip


def accounts_mapped(proposal: pd.DataFrame) -> CheckOutcome:
    bad = _ready(proposal)
    bad = bad[bad["erp_account"].isna()]
    problems = [
        f"{k}: {a} has no ERP account"
        for k, a in bad[["journal_key", "account"]]
        .drop_duplicates()
        .head(5)
        .itertuples(index=False)
    ]
    return CheckOutcome("proposal_accounts_mapped", bad.empty, {"unmapped_lines": len(bad)},
                        problems)  # fmt: skip


def customers_known(proposal: pd.DataFrame) -> CheckOutcome:
    ready = _ready(proposal)
    bad = ready[(ready["event"] != "revenue") & ready["erp_customer_id"].isna()
                & (ready["action"] != "reverse_stale")]  # fmt: skip
    problems = [f"{k}: document {d} has no ERP customer id" for k, d in
                bad[["journal_key", "document_id"]].drop_duplicates().head(5).itertuples(
                    index=False)]  # fmt: skip
    return CheckOutcome("proposal_customers_known", bad.empty,
                        {"journals": int(bad["journal_key"].nunique())}, problems)  # fmt: skip


def periods_open(proposal: pd.DataFrame, closed: set[pd.Timestamp]) -> CheckOutcome:
    # a journal the plan held for a closed period (policy hold) is handled, not a problem
    ready = proposal[(proposal["status"] == "ready") & (proposal["action"] != "unchanged")]
    when = pd.to_datetime(ready["posting_period"], utc=True)
    bad = ready[when.isna() | when.isin(list(closed))]
    problems = [f"{k}: would post in {p}" for k, p in
                bad[["journal_key", "posting_period"]].drop_duplicates("journal_key").head(5)
                .itertuples(index=False)]  # fmt: skip
    return CheckOutcome("proposal_periods_open", bad.empty,
                        {"journals": int(bad["journal_key"].nunique())}, problems)  # fmt: skip


def schedule_movement(schedule: pd.DataFrame) -> pd.DataFrame:
    """Net debit per (group, currency kind, currency) that the month's schedule rows imply."""
    rows = []
    for suffix, kind, cur in (("", "transaction", "currency"),
                              ("_functional", "functional", "functional_currency")):  # fmt: skip
        if schedule.empty:
            continue
        s = schedule
        parts = {
            "revenue": -s["recognized" + suffix],
            "DeferredRevenue": s["deferred_released" + suffix] - s["deferred_booked" + suffix],
            "UnbilledAccountsReceivable": s["unbilled_booked" + suffix]
            + s["unbilled_accrued" + suffix],
        }
        for group, values in parts.items():
            for c, v in values.groupby(s[cur]).sum().items():
                rows.append((group, kind, c, int(v)))
    return pd.DataFrame(rows, columns=["group", "kind", "currency", "net_debit"])


def proposal_movement(proposal: pd.DataFrame) -> pd.DataFrame:
    """Net debit per (group, currency kind, currency) of the proposal's journals."""
    p = proposal[proposal["action"] != "reverse_stale"]
    group = p["account"].where(~p["account"].isin(REVENUE_GROUP), "revenue")
    keep = group.isin(["revenue", "DeferredRevenue", "UnbilledAccountsReceivable"])
    p, group = p[keep], group[keep]
    rows = []
    for kind, cur, d, c in (("transaction", "currency", "debit", "credit"),
                            ("functional", "functional_currency", "debit_functional",
                             "credit_functional")):  # fmt: skip
        net = (p[d] - p[c]).groupby([group, p[cur]]).sum()
        rows += [(g, kind, k, int(v)) for (g, k), v in net.items()]
    return pd.DataFrame(rows, columns=["group", "kind", "currency", "net_debit"])


def schedule_equals_gl(proposal: pd.DataFrame, schedule: pd.DataFrame) -> CheckOutcome:
    keys = ["group", "kind", "currency"]
    sched = schedule_movement(schedule).set_index(keys)["net_debit"]
    prop = proposal_movement(proposal).set_index(keys)["net_debit"]
    both = pd.concat([sched.rename("schedule"), prop.rename("proposed")], axis=1).fillna(0)
    both["drift"] = both["schedule"] - both["proposed"]
    bad = both[both["drift"] != 0]
    meta = {f"drift_{g}_{k}_{c}": int(v) for (g, k, c), v in both["drift"].items()}
    problems = [f"{g} ({k} {c}): schedule {int(r['schedule'])} != proposed {int(r['proposed'])}"
                for (g, k, c), r in bad.head(5).iterrows()]  # fmt: skip
    return CheckOutcome("schedule_equals_proposed_gl", bad.empty,
                        {"max_drift_minor": int(both["drift"].abs().max()) if len(both) else 0,
                         **meta}, problems)  # fmt: skip


def rollforward_drift(roll: pd.DataFrame) -> pd.Series:
    """Per currency row: opening + billings - recognized - credits - closing (0 when it holds)."""
    if roll.empty:
        return pd.Series(dtype="int64")
    flow = roll["opening_deferred"] + roll["billings"] - roll["recognized"] - roll["credits"]
    return flow - roll["closing_deferred"]


def rollforward_balances(roll: pd.DataFrame) -> CheckOutcome:
    drift = rollforward_drift(roll)
    bad = roll[drift != 0] if len(roll) else roll
    problems = [f"{c}: drift {int(d)}" for c, d in zip(bad.get("currency", []), drift[drift != 0],
                                                        strict=False)]  # fmt: skip
    return CheckOutcome("rollforward_balances", bool((drift == 0).all()),
                        {"currencies": len(roll),
                         "max_drift_minor": int(drift.abs().max()) if len(drift) else 0},
                        problems)  # fmt: skip


def proposal_checks(
    proposal: pd.DataFrame, schedule: pd.DataFrame, closed: set[pd.Timestamp]
) -> list[CheckOutcome]:
    """Every blocking check of a proposal, in the order the UI shows them."""
    return [
        balanced(proposal),
        accounts_mapped(proposal),
        customers_known(proposal),
        periods_open(proposal, closed),
        schedule_equals_gl(proposal, schedule),
    ]


def merge_outcomes(runs: list[list[CheckOutcome]], labels: list[str]) -> list[CheckOutcome]:
    """The checks of several partitions (a ranged run) as one outcome per check: passed when
    every partition passed, figures added up, problems prefixed with their partition."""
    if len(runs) == 1:
        return runs[0]
    merged = []
    for same in zip(*runs, strict=True):
        meta: dict = {}
        for o in same:
            for k, v in o.metadata.items():
                meta[k] = meta.get(k, 0) + v
        problems = [f"{label}: {p}" for label, o in zip(labels, same, strict=True)
                    for p in o.problems]  # fmt: skip
        merged.append(CheckOutcome(same[0].name, all(o.passed for o in same), meta,
                                   problems[:10]))  # fmt: skip
    return merged
