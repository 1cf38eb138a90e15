"""Input checks of credit notes and their lines: what the engine cannot credit goes to
quarantine with its rule; a bad line holds its whole note (see ``inputs``)."""

from __future__ import annotations

import numpy as np

from sync_core.revenue.credits import credit_period_problems
from sync_core.revenue.input_rules import Rules, _exceptions, _integers, _period
from sync_core.revenue.periods import instants_ns, is_nat, month_of_ns


def _check_credit_notes(cns, cn_lines, inv, lines, exc):
    cns = cns.drop_duplicates("credit_note_id", keep="last").reset_index(drop=True)
    cns["issued_ns"] = instants_ns(cns["issued_at"])
    cns["voided_ns"] = instants_ns(cns["voided_at"])
    cns["period"] = _period(cns, "issued_at")
    by_inv = inv.set_index("invoice_id")
    cns["entity_id"] = cns["entity_id"].where(
        cns["entity_id"].notna(), cns["invoice_id"].map(by_inv["entity_id"])
    )
    rule = Rules(cns, "credit_notes", exc)

    rule(~cns["invoice_id"].isin(by_inv.index), "header_exists",
         lambda b: [f"credit note on unknown or quarantined invoice {i!r}"
                    for i in b["invoice_id"]])  # fmt: skip
    for col in ("subtotal", "tax", "total", "refund_amount", "credit_balance_amount",
                "out_of_band_amount"):  # fmt: skip
        values, ok = _integers(cns[col].fillna(0) if col != "subtotal" else cns[col])
        rule(
            ~ok | (values < 0),
            f"{col}_integer",
            lambda b, c=col: [f"{c} {v!r} is not a non-negative integer" for v in b[c]],
        )
        cns[col] = values
    rule(
        cns["currency"].to_numpy() != cns["invoice_id"].map(by_inv["currency"]).to_numpy(),
        "currency_matches",
        "credit note currency differs from the invoice currency",
    )
    rule(is_nat(cns["issued_ns"].to_numpy()) | cns["period"].isna().to_numpy(),
         "issued_at_present", "credit note has no issue time")  # fmt: skip
    is_void = (cns["status"] == "void").to_numpy()
    rule(is_void & is_nat(cns["voided_ns"].to_numpy()), "void_has_voided_at",
         "void credit note without voided_at")  # fmt: skip
    rule(cns["invoice_id"].map(by_inv["is_void"]).eq(True).to_numpy() & ~is_void,
         "invoice_not_void", "credit note on a voided invoice")  # fmt: skip
    rule(cns["total"].to_numpy() != cns["subtotal"].to_numpy() + cns["tax"].to_numpy(),
         "total_is_subtotal_plus_tax", "total differs from subtotal + tax")  # fmt: skip

    # lines: amounts, and the invoice line they name must be a line of the note's invoice
    cn_lines = cn_lines.reset_index(drop=True)
    amount, ok = _integers(cn_lines["amount"])
    cn_lines["amount"] = amount
    line_invoice = lines.set_index("line_key")["invoice_id"]
    note_invoice = cns.set_index("credit_note_id")["invoice_id"]
    named = cn_lines["invoice_line_key"].notna().to_numpy()
    wrong_line = named & (
        cn_lines["invoice_line_key"].map(line_invoice).to_numpy()
        != cn_lines["credit_note_id"].map(note_invoice).to_numpy()
    )
    bad_line = ~ok | (amount < 0) | wrong_line
    cn_lines["period"] = cn_lines["credit_note_id"].map(cns.set_index("credit_note_id")["period"])
    bad_line |= _check_credit_periods(cn_lines, lines, bad_line, exc)
    exc.append(_exceptions(cn_lines, bad_line & ~ok, "credit_note_lines", "amount_integer",
                           "amount is not a non-negative integer"))  # fmt: skip
    exc.append(_exceptions(cn_lines, wrong_line & ok, "credit_note_lines", "line_exists",
                           lambda b: [f"invoice line {k!r} is not a line of the note's invoice"
                                      for k in b["invoice_line_key"]]))  # fmt: skip
    rule(
        cns["credit_note_id"].isin(set(cn_lines.loc[bad_line, "credit_note_id"])),
        "lines_valid",
        "a line of the credit note was quarantined; the note is held whole",
    )
    sums = cn_lines.groupby("credit_note_id")["amount"].sum()
    has_lines = cns["credit_note_id"].isin(sums.index).to_numpy()
    line_sum = cns["credit_note_id"].map(sums).fillna(0).to_numpy()
    rule(has_lines & (line_sum != cns["subtotal"].to_numpy()), "line_totals_match",
         "subtotal differs from the sum of its lines")  # fmt: skip
    cns = cns[~rule.bad].reset_index(drop=True)
    cn_lines = cn_lines[cn_lines["credit_note_id"].isin(cns["credit_note_id"])]
    return cns, cn_lines.reset_index(drop=True)


def _check_credit_periods(cn_lines, lines, bad, exc) -> np.ndarray:
    """Prospective credits (credits.credit_period_problems): the lines whose service period
    cannot be used, with an exception row each; sets ``ps_ns`` / ``pe_ns``."""
    by_key = lines.set_index("line_key")
    start = cn_lines["invoice_line_key"].map(by_key["start_ns"])
    end = cn_lines["invoice_line_key"].map(by_key["end_ns"])
    nat = np.iinfo(np.int64).min
    problems = credit_period_problems(
        cn_lines, month_of_ns(instants_ns(cn_lines["period"])),
        start.fillna(nat).to_numpy(np.int64), end.fillna(nat).to_numpy(np.int64),
    )  # fmt: skip
    messages = {
        "credit_period_complete": "service period needs both period_start < period_end",
        "credit_period_within_line": "service period must name an invoice line and lie "
        "inside that line's service period",
        "credit_period_not_past": "a prospective credit cannot start before its credit "
        "note's month (issue it without a period to credit months already recognized)",
    }
    held = np.zeros(len(cn_lines), dtype=bool)
    for rule, mask in problems.items():
        mask = mask & ~bad & ~held
        exc.append(_exceptions(cn_lines, mask, "credit_note_lines", rule, messages[rule]))
        held |= mask
    given = ~held & ~bad & ~is_nat(instants_ns(cn_lines["period_start"]))
    cn_lines["ps_ns"] = np.where(given, instants_ns(cn_lines["period_start"]), nat)
    cn_lines["pe_ns"] = np.where(given, instants_ns(cn_lines["period_end"]), nat)
    return held
