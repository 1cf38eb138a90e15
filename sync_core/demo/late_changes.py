"""Late changes to the demo platform: a second delivery into its file drop.

After the demo's first pass has posted the year, four things happen that a real month end
sees, each picked deterministically from the first delivery (legal entity ``US01`` unless
told otherwise), so the second pass shows how the platform handles them:

(a) **void**: an open (unpaid) invoice finalized after the close, already posted, is voided
    20 days after its finalization: status ``void``, ``voided_at`` set;
(b) **refund without a credit note**: a paid invoice finalized after the close gets a full
    refund of its payment (``kind = refund``, no ``credit_note_id``) 14 days after payment;
(c) **late credit note into a closed period**: a credit note issued on the 20th of the
    close month (``close_through``, February of the demo year), delivered now, credits half of
    the first subscription line of an invoice finalized in January; the revenue and the ERP
    periods through February are closed before the second pass, so the credit lands in the
    first open month as a correction;
(d) **an ERP id arrives**: a customer without ``erp_customer_id`` (its journals are held
    as master-data exceptions) gets one.

A changed record (the voided invoice, the customer) supersedes its first-delivery version: a
file drop holds one version of each record (two different records with one id are both
quarantined), so the delivery writes it to ``<object>-late.csv`` and removes the old row from
``<object>.csv``. New records (the refund, the credit note and its line) go to the same
``-late`` files. ``late_changes.json`` records that the delivery was made, and what it picked.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from sync_core import filedrop

SUFFIX = "late"
MARKER = "late_changes.json"
ID_COLUMN = {"customers": "customer_id", "invoices": "invoice_id", "payments": "payment_id",
             "credit_notes": "credit_note_id", "credit_note_lines": "credit_note_line_id"}  # fmt: skip


@dataclass
class LateDelivery:
    entity: str
    close_through: str  # YYYY-MM-01: revenue and ERP periods closed through this month
    voided_invoice: str
    refunded_invoice: str
    refund_id: str
    credit_note: str
    credited_invoice: str
    released_customer: str
    erp_customer_id: str
    records: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    replaces: dict[str, list[str]] = field(default_factory=dict)

    def picks(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "records"}


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _first(df: pd.DataFrame, what: str) -> pd.Series:
    if not len(df):
        raise ValueError(f"late changes: the demo platform has no {what}")
    return df.sort_values(df.columns[1]).iloc[0]


def _eligible_invoices(f: dict[str, pd.DataFrame], entity: str) -> pd.DataFrame:
    """Invoices of the entity whose customer has an ERP id, without credit notes, not voided."""
    cust = f["customers"]
    mapped = set(cust.loc[cust["erp_customer_id"].notna(), "customer_id"])
    inv = f["invoices"]
    return inv[
        (inv["entity_id"] == entity)
        & inv["customer_id"].isin(mapped)
        & inv["voided_at"].isna()
        & ~inv["invoice_id"].isin(f["credit_notes"]["invoice_id"])
    ]


def _void(f, inv: pd.DataFrame, after: pd.Timestamp, year_end: pd.Timestamp) -> pd.DataFrame:
    paid = set(f["payments"]["invoice_id"].dropna())
    pick = inv[
        (inv["status"] == "open")
        & ~inv["invoice_id"].isin(paid)
        & (inv["finalized_at"] >= after)
        & (inv["finalized_at"] + pd.Timedelta(days=20) < year_end)
    ]
    row = _first(pick, "open invoice after the close to void").copy()
    row["status"], row["voided_at"] = "void", row["finalized_at"] + pd.Timedelta(days=20)
    return row.to_frame().T


def _refund(f, inv: pd.DataFrame, after, year_end, skip: set[str]) -> pd.DataFrame:
    pay = f["payments"]
    pay = pay[(pay["kind"] == "payment") & (pay["status"] == "succeeded")]
    pay = pay[pay["invoice_id"].isin(inv.loc[inv["finalized_at"] >= after, "invoice_id"])]
    pay = pay[
        ~pay["invoice_id"].isin(skip) & (pay["created_at"] + pd.Timedelta(days=14) < year_end)
    ]
    once = pay.groupby("invoice_id")["payment_id"].transform("size") == 1
    row = _first(pay[once], "paid invoice after the close to refund").copy()
    row["payment_id"], row["kind"] = f"py_{SUFFIX}_0001", "refund"
    row["created_at"] = row["created_at"] + pd.Timedelta(days=14)
    row["credit_note_id"] = None
    return row.to_frame().T


def _credit_note(f, inv: pd.DataFrame, year: int, close: pd.Timestamp):
    lines = f["invoice_lines"]
    jan = inv[
        (inv["finalized_at"] >= _ts(f"{year}-01-01")) & (inv["finalized_at"] < _ts(f"{year}-02-01"))
    ]
    cand = lines[
        lines["invoice_id"].isin(jan["invoice_id"])
        & (lines["line_type"] == "subscription")
        & (lines["amount"] > 1)
        & (lines["tax_amount"] >= 0)
    ]
    line = _first(cand, "January subscription line to credit")
    header = inv.set_index("invoice_id").loc[line["invoice_id"]]
    amount, tax = int(line["amount"]) // 2, int(line["tax_amount"]) // 2
    paid = header["status"] == "paid"
    note = {
        "entity_id": line["entity_id"], "credit_note_id": f"cn_{SUFFIX}_0001",
        "invoice_id": line["invoice_id"], "customer_id": header["customer_id"],
        "currency": line["currency"], "type": "post_payment" if paid else "pre_payment",
        "status": "issued", "issued_at": close + pd.Timedelta(days=19, hours=12),
        "voided_at": None, "subtotal": amount, "tax": tax, "total": amount + tax,
        "refund_amount": 0, "credit_balance_amount": amount + tax if paid else 0,
        "out_of_band_amount": 0, "reason": "product_unsatisfactory",
    }  # fmt: skip
    note_line = {
        "entity_id": line["entity_id"], "credit_note_line_id": f"cnli_{SUFFIX}_0001",
        "credit_note_id": note["credit_note_id"], "invoice_line_key": line["line_key"],
        "amount": amount, "tax_amount": tax, "currency": line["currency"],
        "period_start": None, "period_end": None,
    }  # fmt: skip
    return pd.DataFrame([note]), pd.DataFrame([note_line])


def _release(f, entity: str) -> pd.DataFrame:
    cust = f["customers"]
    billed = set(f["invoices"].loc[f["invoices"]["voided_at"].isna(), "customer_id"])
    pick = cust[(cust["entity_id"] == entity) & cust["erp_customer_id"].isna()]
    row = _first(pick[pick["customer_id"].isin(billed)], "customer without an ERP id").copy()
    row["erp_customer_id"] = f"C-{entity}-L{str(row['customer_id']).split('_')[-1]}"
    return row.to_frame().T


def late_changes(frames: dict[str, pd.DataFrame], year: int, entity: str = "US01") -> LateDelivery:
    """The second delivery over the first delivery's ``frames`` (see the module docstring)."""
    close = _ts(f"{year}-02-01")
    after, year_end = _ts(f"{year}-03-01"), _ts(f"{year + 1}-01-01")
    inv = _eligible_invoices(frames, entity)
    void = _void(frames, inv, after, year_end)
    refund = _refund(frames, inv, after, year_end, set(void["invoice_id"]))
    note, note_line = _credit_note(frames, inv, year, close)
    customer = _release(frames, entity)
    records = {"invoices": void, "payments": refund, "credit_notes": note,
               "credit_note_lines": note_line, "customers": customer}  # fmt: skip
    return LateDelivery(
        entity=entity,
        close_through=f"{close:%Y-%m-%d}",
        voided_invoice=str(void["invoice_id"].iloc[0]),
        refunded_invoice=str(refund["invoice_id"].iloc[0]),
        refund_id=str(refund["payment_id"].iloc[0]),
        credit_note=str(note["credit_note_id"].iloc[0]),
        credited_invoice=str(note["invoice_id"].iloc[0]),
        released_customer=str(customer["customer_id"].iloc[0]),
        erp_customer_id=str(customer["erp_customer_id"].iloc[0]),
        records=records,
        replaces={"invoices": list(void["invoice_id"]), "customers": list(customer["customer_id"])},
    )


# -- the delivery on disk ---------------------------------------------------------------------


def _text(value, kind: str) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if kind == "timestamp":
        return f"{pd.Timestamp(value).tz_convert('UTC'):%Y-%m-%dT%H:%M:%SZ}"
    if kind == "bool":
        return "true" if bool(value) else "false"
    if kind == "int":
        return str(int(value))
    return str(value)


def _write_csv(path: Path, object_name: str, df: pd.DataFrame) -> None:
    specs = filedrop.file_columns(object_name)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([s.name for s in specs])
        for rec in df.to_dict("records"):
            out.writerow([_text(rec.get(s.name), s.kind) for s in specs])


def _drop_rows(path: Path, id_column: str, ids: set[str]) -> None:
    """Rewrite ``path`` without the rows whose ``id_column`` is in ``ids``."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    at = rows[0].index(id_column)
    kept = [rows[0]] + [r for r in rows[1:] if r and r[at] not in ids]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(kept)


def delivered(folder: str | Path) -> dict | None:
    """What an earlier delivery picked, or None when the folder has none."""
    marker = Path(folder) / MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def deliver(folder: str | Path, delivery: LateDelivery) -> list[Path]:
    """Write the delivery into ``folder``; the marker is written last."""
    folder = Path(folder)
    written = []
    for name, df in delivery.records.items():
        path = folder / f"{name}-{SUFFIX}.csv"
        _write_csv(path, name, df)
        written.append(path)
    for name, ids in delivery.replaces.items():
        _drop_rows(folder / f"{name}.csv", ID_COLUMN[name], set(ids))
    (folder / MARKER).write_text(json.dumps(delivery.picks(), indent=1))
    return written


def deliver_picks(folder: str | Path, frames: dict, year: int, entity: str) -> dict:
    """Compute the late changes over the first delivery ``frames`` and write them."""
    delivery = late_changes(frames, year, entity)
    deliver(folder, delivery)
    return delivery.picks()


def delivery_files(folder: str | Path) -> list[Path]:
    """The files of the late delivery in ``folder``."""
    return sorted(Path(folder).glob(f"*-{SUFFIX}.csv"))


def remove(folder: str | Path) -> None:
    """Forget a delivery (when the demo platform is regenerated)."""
    for path in delivery_files(folder) + [Path(folder) / MARKER]:
        path.unlink(missing_ok=True)
