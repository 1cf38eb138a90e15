"""The file-drop reader: strict parsing with file/line/field errors, periods from documents."""

import json

import pandas as pd
import pytest

from sync_core.filedrop import FileDropParseError, file_columns, read_object, with_period

INVOICE_HEADER = (
    "entity_id,invoice_id,number,customer_id,subscription_id,currency,status,finalized_at,"
    "voided_at,subtotal,tax,total,fx_rate"
)
GOOD_INVOICE = "US01,in_1,N-1,cus_1,sub_1,USD,paid,2025-01-15T00:00:00Z,,3100,310,3410,1"


def write(folder, name, *lines):
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_csv_is_parsed_to_contract_types(tmp_path):
    write(tmp_path, "invoices.csv", INVOICE_HEADER, GOOD_INVOICE)
    df = read_object(tmp_path, "invoices")
    row = df.iloc[0]
    assert row["total"] == 3410 and row["subtotal"] == 3100
    assert row["finalized_at"] == pd.Timestamp("2025-01-15", tz="UTC")
    assert pd.isna(row["voided_at"])
    assert (row["_source"], row["_line"]) == ("invoices.csv", 2)


@pytest.mark.parametrize(
    "bad_row, line, field, problem",
    [
        (GOOD_INVOICE.replace(",3100,", ",31.00,"), 3, "subtotal", "expected an integer"),
        (GOOD_INVOICE.replace("2025-01-15T00:00:00Z", "15/01/2025"), 3, "finalized_at", "ISO 8601"),
        (GOOD_INVOICE + ",extra", 3, None, "expected 13 fields, found 14"),
    ],
)
def test_unparseable_value_names_file_line_and_field(tmp_path, bad_row, line, field, problem):
    write(tmp_path, "invoices.csv", INVOICE_HEADER, GOOD_INVOICE, bad_row)
    with pytest.raises(FileDropParseError) as err:
        read_object(tmp_path, "invoices")
    assert err.value.file.endswith("invoices.csv")
    assert (err.value.line, err.value.field) == (line, field)
    assert problem in str(err.value)


def test_missing_required_column_is_a_parse_error(tmp_path):
    write(tmp_path, "invoices.csv", INVOICE_HEADER.replace(",fx_rate", ""), GOOD_INVOICE[:-2])
    with pytest.raises(FileDropParseError, match="field 'fx_rate': required column is missing"):
        read_object(tmp_path, "invoices")


def test_optional_balance_applied_left_out_is_zero_and_read_when_given(tmp_path):
    write(tmp_path, "invoices.csv", INVOICE_HEADER, GOOD_INVOICE)
    assert read_object(tmp_path, "invoices")["balance_applied"].tolist() == [0]
    given = tmp_path / "given"
    given.mkdir()
    write(given, "invoices.csv", INVOICE_HEADER + ",balance_applied", GOOD_INVOICE + ",1100")
    assert read_object(given, "invoices")["balance_applied"].tolist() == [1100]
    write(given, "invoices.csv", INVOICE_HEADER + ",balance_applied", GOOD_INVOICE + ",11.00")
    with pytest.raises(FileDropParseError, match="field 'balance_applied': expected an integer"):
        read_object(given, "invoices")
    assert {c.name: c.default for c in file_columns("invoices")}["balance_applied"] == 0


def test_ndjson_reads_like_csv_and_reports_bad_json_line(tmp_path):
    cols = INVOICE_HEADER.split(",")  # the optional columns are left out, as in the CSV
    rec = dict(zip(cols, GOOD_INVOICE.split(","), strict=True))
    rec.update(voided_at=None, subtotal=3100, tax=310, total=3410)
    (tmp_path / "invoices.ndjson").write_text(json.dumps(rec) + "\n")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write(csv_dir, "invoices.csv", INVOICE_HEADER, GOOD_INVOICE)
    a = read_object(tmp_path, "invoices").drop(columns=["_source", "_line"])
    b = read_object(csv_dir, "invoices").drop(columns=["_source", "_line"])
    pd.testing.assert_frame_equal(a, b, check_dtype=False)

    (tmp_path / "invoices-2.ndjson").write_text(json.dumps(rec) + "\n{not json\n")
    with pytest.raises(FileDropParseError, match=r"invoices-2.ndjson, line 2: invalid JSON"):
        read_object(tmp_path, "invoices")


def test_batches_are_concatenated_in_name_order(tmp_path):
    write(tmp_path, "invoices-b.csv", INVOICE_HEADER, GOOD_INVOICE.replace("in_1", "in_2"))
    write(tmp_path, "invoices-a.csv", INVOICE_HEADER, GOOD_INVOICE)
    assert list(read_object(tmp_path, "invoices")["invoice_id"]) == ["in_1", "in_2"]


def test_missing_object_file_is_an_empty_frame(tmp_path):
    df = read_object(tmp_path, "payments")
    assert df.empty and "payment_id" in df.columns


def test_lines_take_their_header_period_and_orphans_their_own(tmp_path):
    header = pd.DataFrame(
        {"invoice_id": ["in_1"], "finalized_at": [pd.Timestamp("2025-02-01", tz="UTC")]}
    )
    header = with_period("invoices", header)
    lines = pd.DataFrame(
        {
            "invoice_id": ["in_1", "in_missing"],
            "period_start": pd.to_datetime(["2025-01-10", "2025-03-05"], utc=True),
        }
    )
    out = with_period("invoice_lines", lines, header)
    assert list(out["period"]) == [
        pd.Timestamp("2025-02-01", tz="UTC"),
        pd.Timestamp("2025-03-01", tz="UTC"),
    ]
