"""Reading a partition of the file drop or the Stripe mirror is a lookup in records parsed
once: each record lands in the (entity, UTC month) of its date (a line in its invoice's), a
record exactly on a month boundary in the month it opens; the cache holds one version of an
object and a changed file (or a newly committed mirror batch) replaces it."""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest

from resources import billing_source
from resources.billing_source import BillingSourceResource
from sync_core import filedrop
from sync_core.filedrop import FileDropParseError, _lines, _shared

JAN, FEB, MAR = (pd.Timestamp(f"2025-{m:02d}-01", tz="UTC") for m in (1, 2, 3))
INVOICE_HEADER = (
    "entity_id,invoice_id,number,customer_id,subscription_id,currency,status,finalized_at,"
    "voided_at,subtotal,tax,total,fx_rate"
)
LINE_HEADER = (
    "entity_id,line_key,line_id,invoice_id,subscription_id,subscription_item_id,product_id,"
    "line_type,proration,quantity,amount,tax_amount,tax_behavior,currency,period_start,period_end"
)


def invoice(entity: str, invoice_id: str, finalized_at: str) -> str:
    return f"{entity},{invoice_id},N,cus_1,sub_1,USD,open,{finalized_at},,100,0,100,1"


def line(entity: str, invoice_id: str, n: int, start: str, end: str) -> str:
    return (f"{entity},{invoice_id}/il_{n},il_{n},{invoice_id},sub_1,si_1,prod,subscription,"
            f"false,1,100,0,exclusive,USD,{start},{end}")  # fmt: skip


def write(path, *rows: str) -> None:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def drop(tmp_path):
    write(
        tmp_path / "invoices.csv",
        INVOICE_HEADER,
        invoice("US01", "in_1", "2025-01-31T23:59:59.999999Z"),  # the last instant of January
        invoice("US01", "in_2", "2025-02-01T00:00:00Z"),  # exactly on the boundary: February
        invoice("US01", "in_3", "2025-02-01T00:30:00+01:00"),  # 23:30 UTC on January 31
        invoice("UK01", "in_4", "2025-01-15T12:00:00Z"),
        invoice("US01", "in_5", "2025-01-10T08:00:00Z"),
    )
    write(
        tmp_path / "invoice_lines.csv",
        LINE_HEADER,
        line("US01", "in_2", 1, "2025-01-20T00:00:00Z", "2025-02-20T00:00:00Z"),  # its invoice's
        line("US01", "in_1", 1, "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"),
        line("US01", "in_2", 2, "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"),
        line("US01", "in_x", 1, "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"),  # no invoice
    )
    return tmp_path


def ids(df: pd.DataFrame, column: str) -> list[str]:
    return df[column].tolist()


def test_each_record_lands_in_the_utc_month_of_its_date(drop):
    src = BillingSourceResource(kind="file_drop", path=str(drop))
    assert ids(src.read_partition("invoices", "US01", JAN), "invoice_id") == [
        "in_1",
        "in_3",
        "in_5",
    ]
    assert ids(src.read_partition("invoices", "US01", FEB), "invoice_id") == ["in_2"]
    assert ids(src.read_partition("invoices", "UK01", JAN), "invoice_id") == ["in_4"]
    assert src.read_partition("invoices", "UK01", FEB).empty
    assert src.read_partition("invoices", "DE01", JAN).empty
    feb = src.read_partition("invoices", "US01", FEB)
    assert feb["period"].tolist() == [FEB] and feb.index.tolist() == [0]
    assert (feb["_source"].tolist(), feb["_line"].tolist()) == (["invoices.csv"], [3])
    # the same period, written in another zone, is the same partition
    eastern = pd.Timestamp("2025-01-31 19:00", tz="America/New_York")
    assert ids(src.read_partition("invoices", "US01", eastern), "invoice_id") == ["in_2"]


def test_a_line_takes_its_invoice_month_or_else_its_own_service_month(drop):
    src = BillingSourceResource(kind="file_drop", path=str(drop))
    assert ids(src.read_partition("invoice_lines", "US01", JAN), "line_key") == ["in_1/il_1"]
    assert ids(src.read_partition("invoice_lines", "US01", FEB), "line_key") == [
        "in_2/il_1", "in_2/il_2",
    ]  # fmt: skip
    assert ids(src.read_partition("invoice_lines", "US01", MAR), "line_key") == ["in_x/il_1"]


def test_a_partition_is_the_whole_read_filtered_with_the_same_columns_and_types(drop):
    src = BillingSourceResource(kind="file_drop", path=str(drop))
    for name in ("invoices", "invoice_lines"):
        whole = src.read(name)
        for entity in ("US01", "UK01", "DE01"):
            for period in (JAN, FEB, MAR):
                mask = (whole["entity_id"] == entity) & (whole["period"] == period)
                pd.testing.assert_frame_equal(
                    src.read_partition(name, entity, period), whole[mask].reset_index(drop=True)
                )
    # a read is a copy: changing it changes nothing the next read sees
    mine = src.read("invoices")
    mine.loc[:, "invoice_id"] = "changed"
    assert "changed" not in set(src.read("invoices")["invoice_id"])


def cached(folder, name: str, kind: str = "files") -> list:
    key = (str(folder.resolve()), kind, name)
    return [v for k, v in billing_source._CACHE.items() if k == key]


def test_a_changed_file_replaces_the_cached_version(drop):
    src = BillingSourceResource(kind="file_drop", path=str(drop))
    assert ids(src.read_partition("invoice_lines", "US01", FEB), "line_key") == [
        "in_2/il_1", "in_2/il_2",
    ]  # fmt: skip
    first = cached(drop, "invoices")[0][1]
    assert src.read_partition("invoices", "US01", JAN) is not None
    assert cached(drop, "invoices")[0][1] is first  # read once, served from the cache
    # in_2 moves to March: the invoice and, through their header, its lines move with it
    text = (
        (drop / "invoices.csv").read_text().replace("2025-02-01T00:00:00Z", "2025-03-02T00:00:00Z")
    )
    (drop / "invoices.csv").write_text(text)
    os.utime(drop / "invoices.csv", ns=(1, 1))  # a new mtime even on a coarse clock
    assert ids(src.read_partition("invoices", "US01", MAR), "invoice_id") == ["in_2"]
    assert src.read_partition("invoices", "US01", FEB).empty
    assert ids(src.read_partition("invoice_lines", "US01", MAR), "line_key") == [
        "in_2/il_1", "in_2/il_2", "in_x/il_1",
    ]  # fmt: skip
    assert len(cached(drop, "invoices")) == 1 and cached(drop, "invoices")[0][1] is not first


def test_a_bad_file_fails_every_read_until_it_is_fixed(drop):
    src = BillingSourceResource(kind="file_drop", path=str(drop))
    assert len(src.read_partition("invoices", "US01", JAN)) == 3
    good = (drop / "invoices.csv").read_text()
    write(drop / "invoices.csv", INVOICE_HEADER, invoice("US01", "in_9", "31/01/2025"))
    for _ in range(2):
        with pytest.raises(FileDropParseError, match="line 2, field 'finalized_at'"):
            src.read_partition("invoices", "US01", JAN)
    assert cached(drop, "invoices") == []  # the old version went, nothing replaced it
    (drop / "invoices.csv").write_text(good)
    assert len(src.read_partition("invoices", "US01", JAN)) == 3


def land(folder, batch: str, name: str, records: list[dict], commit: bool = True) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records)
    (folder / f"{name}-{batch}.ndjson").write_text(text, encoding="utf-8")
    if commit:
        (folder / f"_batch-{batch}.json").write_text(json.dumps({"batch_id": batch}))


def invoice_record(status: str, total: int) -> dict:
    return {"entity_id": "US01", "invoice_id": "in_1", "number": "N", "customer_id": "cus_1",
            "subscription_id": "sub_1", "currency": "USD", "status": status,
            "finalized_at": "2025-01-15T00:00:00Z", "voided_at": None, "subtotal": total,
            "tax": 0, "total": total, "fx_rate": "1"}  # fmt: skip


def line_record(n: int) -> dict:
    return {"entity_id": "US01", "line_key": f"in_1/il_{n}", "line_id": f"il_{n}",
            "invoice_id": "in_1", "subscription_id": "sub_1", "subscription_item_id": "si_1",
            "product_id": "prod", "line_type": "subscription", "proration": False,
            "quantity": 1, "amount": 100, "tax_amount": 0, "tax_behavior": "exclusive",
            "currency": "USD", "period_start": "2025-01-15T00:00:00Z",
            "period_end": "2025-02-15T00:00:00Z"}  # fmt: skip


def test_the_mirror_serves_the_latest_committed_snapshot_and_a_new_batch_replaces_it(tmp_path):
    land(tmp_path, "20250115T000000-a", "invoices", [invoice_record("open", 200)])
    land(tmp_path, "20250115T000000-a", "invoice_lines", [line_record(1), line_record(2)])
    land(tmp_path, "20250120T000000-b", "invoices", [invoice_record("paid", 100)], commit=False)
    land(tmp_path, "20250120T000000-b", "invoice_lines", [line_record(1)], commit=False)
    src = BillingSourceResource(kind="stripe_mirror", path=str(tmp_path))
    inv = src.read_partition("invoices", "US01", JAN)
    assert (inv["status"].tolist(), inv["total"].tolist()) == (["open"], [200])
    lines = src.read_partition("invoice_lines", "US01", JAN)
    assert lines["line_key"].tolist() == ["in_1/il_1", "in_1/il_2"]
    # batch b's manifest lands: its snapshot wins, and its line set with it
    (tmp_path / "_batch-20250120T000000-b.json").write_text("{}")
    inv = src.read_partition("invoices", "US01", JAN)
    assert (inv["status"].tolist(), inv["total"].tolist()) == (["paid"], [100])
    lines = src.read_partition("invoice_lines", "US01", JAN)
    assert lines["line_key"].tolist() == ["in_1/il_1"]
    assert lines["_source"].tolist() == ["invoice_lines-20250120T000000-b.ndjson"]
    assert len(cached(tmp_path, "invoice_lines", "mirror")) == 1


@pytest.mark.parametrize(
    "text", ["a\rb\r\nc\nd", "a\n", "\r", "\n\n", "x\r\n\r\ny", "q\u2028w\x0be\x85t\n\r", ""]
)
def test_lines_split_as_stringio_does(text):
    assert list(_lines(text)) == list(io.StringIO(text, newline=""))


def test_shared_strings_keep_values_and_nulls():
    s = pd.Series(["US01", None, "US01", "UK01"] * 3, index=range(10, 22))
    out = _shared(s)
    pd.testing.assert_series_equal(out, s.astype(object))
    assert out.iloc[0] is out.iloc[2] and out.iloc[1] is None
    unique = pd.Series([f"id_{i}" for i in range(5)])
    pd.testing.assert_series_equal(_shared(unique), unique.astype(object))


def test_records_parsed_in_chunks_and_spilled_by_entity_read_as_the_whole_file(drop, monkeypatch):
    """Two records at a time (a chunk boundary inside each file): every partition, and the
    whole read in file order, are what one parse of the whole file gives; a bad record in a
    later chunk names its own line."""
    whole = {
        name: filedrop.with_period(
            name,
            filedrop.read_object(drop, name),
            filedrop.with_period("invoices", filedrop.read_object(drop, "invoices")),
        )  # fmt: skip
        for name in ("invoices", "invoice_lines")
    }
    monkeypatch.setattr(billing_source, "CHUNK_ROWS", 2)
    src = BillingSourceResource(kind="file_drop", path=str(drop))
    for name, df in whole.items():
        pd.testing.assert_frame_equal(src.read(name), df)
        for entity in ("US01", "UK01", "DE01"):
            for period in (JAN, FEB, MAR):
                mask = (df["entity_id"] == entity) & (df["period"] == period)
                pd.testing.assert_frame_equal(
                    src.read_partition(name, entity, period), df[mask].reset_index(drop=True)
                )
    # a read loads each of its entities' records once, and nothing stays loaded after it
    spilled = cached(drop, "invoices")[0][1]
    loads = []
    records = spilled._records
    monkeypatch.setattr(spilled, "_records", lambda e: loads.append(e) or records(e))
    got = src.read_partitions("invoices", [("US01", JAN), ("UK01", JAN), ("US01", FEB)])
    assert [ids(df, "invoice_id") for df in got] == [["in_1", "in_3", "in_5"], ["in_4"], ["in_2"]]
    assert sorted(loads) == ["UK01", "US01"]
    assert set(vars(spilled)) == {"folder", "empty", "entities", "_records"}
    bad = [invoice("US01", f"in_{i}", "2025-01-02T00:00:00Z") for i in range(4)]
    bad.append(invoice("US01", "in_9", "31/01/2025"))
    write(drop / "invoices.csv", INVOICE_HEADER, *bad)
    with pytest.raises(FileDropParseError, match="line 6, field 'finalized_at'"):
        src.read_partition("invoices", "US01", JAN)
