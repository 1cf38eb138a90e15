"""The file-drop source: a folder of CSV or NDJSON files in the canonical format.

This is the documented import path for platforms without a connector and for a finance
user's own test cases (docs/data-contract.md, "File-drop format"). Parsing is strict: a value
of the wrong type fails the whole file with the file, line and field named. Parsed records
then go through the contract, where a wrong-but-parseable record is quarantined instead.

A reader that parses once (``resources.billing_source``) gives each record its accounting
period once per parsed object (:func:`add_period`) and finds its partitions once
(:class:`PartitionIndex`): reading a partition is then a lookup, not a pass over every record.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sync_core.contracts.models import MODELS

# object -> column whose month is the record's accounting period
PERIOD_COLUMN = {
    "customers": "created_at",
    "subscription_contracts": "effective_at",
    "usage_events": "timestamp",
    "invoices": "finalized_at",
    "credit_notes": "issued_at",
    "payments": "created_at",
    "disputes": "created_at",
}
# line objects take the period of their header document
HEADER_OF = {
    "invoice_lines": ("invoices", "invoice_id", "invoice_id"),
    "credit_note_lines": ("credit_notes", "credit_note_id", "credit_note_id"),
}
_INT = re.compile(r"^[+-]?\d+$")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class FileDropParseError(ValueError):
    """A file that cannot be parsed: names the file, line and field."""

    def __init__(self, file: Path | str, line: int, field: str | None, problem: str):
        self.file, self.line, self.field, self.problem = str(file), line, field, problem
        where = f"{self.file}, line {line}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # str | int | bool | timestamp
    nullable: bool
    default: object = None  # an optional column's value when the file leaves it out


def file_columns(object_name: str) -> list[ColumnSpec]:
    """The columns a file of ``object_name`` carries: the model's, without ``period``."""
    schema = MODELS[object_name].to_schema()
    specs = []
    for name, col in schema.columns.items():
        if name == "period":
            continue
        dtype = str(col.dtype)
        if dtype.startswith("datetime64"):
            kind = "timestamp"
        elif dtype.startswith("int"):
            kind = "int"
        elif dtype in ("bool", "boolean"):
            kind = "bool"
        else:
            kind = "str"
        specs.append(ColumnSpec(name, kind, bool(col.nullable), col.default))
    return specs


def object_files(folder: Path, object_name: str) -> list[Path]:
    """``<object>.csv|ndjson`` and ``<object>-<suffix>.csv|ndjson``, in name order."""
    found = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix in (".csv", ".ndjson")
        and (p.stem == object_name or p.stem.startswith(object_name + "-"))
    ]
    return sorted(found, key=lambda p: p.name)


def _lines(text: str):
    """The lines of ``text`` as ``io.StringIO(text, newline="")`` yields them (ends kept, at
    ``\n``, ``\r`` or ``\r\n``), without its copy of the text (4 bytes a character)."""
    return (m.group() for m in _LINE.finditer(text))


def _read_csv(path: Path, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The file's records as raw text frames (indexed by line number), ``chunk_rows`` at a
    time (all at once when None); a file with a header and no record gives one empty frame."""
    text = path.read_text(encoding="utf-8")
    reader = csv.reader(_lines(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileDropParseError(path, 1, None, "empty file: a header row is required") from None
    except csv.Error as exc:
        raise FileDropParseError(path, 1, None, f"malformed header: {exc}") from None
    rows, lines, given = [], [], False
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise FileDropParseError(
                    path,
                    reader.line_num,
                    None,
                    f"expected {len(header)} fields, found {len(row)}",
                )
            rows.append(row)
            lines.append(reader.line_num)
            if chunk_rows is not None and len(rows) >= chunk_rows:
                yield _raw_frame(rows, lines, header)
                rows, lines, given = [], [], True
    except csv.Error as exc:
        raise FileDropParseError(path, reader.line_num, None, f"malformed CSV: {exc}") from None
    del reader, text
    if rows or not given:
        yield _raw_frame(rows, lines, header)


def _raw_frame(rows: list, lines: list, header: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=header, dtype=object)
    df = df.where(df != "", None)
    df.index = pd.Index(lines, name="_line")
    return df


def _read_ndjson(path: Path) -> pd.DataFrame:
    records, lines = [], []
    with path.open(encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise FileDropParseError(path, n, None, f"invalid JSON: {exc.msg}") from None
            if not isinstance(rec, dict):
                raise FileDropParseError(path, n, None, "each line must be a JSON object")
            records.append(rec)
            lines.append(n)
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    df = df.astype(object).where(df.notna(), None)
    # JSON scalars are re-read through the same strict text rules as CSV
    for c in df.columns:
        df[c] = df[c].map(_json_text)
    df.index = pd.Index(lines, name="_line")
    return df


def _json_text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _fail_first(path: Path, series: pd.Series, bad: pd.Series, field: str, what: str):
    line = int(bad[bad].index[0])
    value = series.loc[line]
    if isinstance(value, pd.Series):
        value = value.iloc[0]
    raise FileDropParseError(path, line, field, f"{what}, got {value!r}")


def _shared(s: pd.Series) -> pd.Series:
    """``s`` as object values where equal strings are one object: a file repeats its entity,
    currency, customer and subscription ids, which then cost a pointer per record, not a copy.
    A column of mostly distinct values (ids) is kept as it is."""
    values = s.to_numpy(object)
    codes, uniques = pd.factorize(values)
    if not len(uniques) or 2 * len(uniques) > len(values):
        return s.astype(object)
    shared = uniques.take(codes)
    shared[codes < 0] = None
    return pd.Series(shared, index=s.index, dtype=object, name=s.name)


def _parse(path: Path, raw: pd.DataFrame, object_name: str) -> pd.DataFrame:
    out = {}
    for spec in file_columns(object_name):
        if spec.name not in raw.columns:
            if spec.default is not None:  # optional with a default (balance_applied: 0)
                out[spec.name] = pd.array([spec.default] * len(raw), dtype="Int64")
                continue
            if spec.nullable:
                out[spec.name] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
                continue
            raise FileDropParseError(path, 1, spec.name, "required column is missing")
        s = raw[spec.name]
        present = s.notna()
        if spec.kind == "int":
            bad = present & ~s.astype(str).str.match(_INT)
            if bad.any():
                _fail_first(path, s, bad, spec.name, "expected an integer (minor units)")
            out[spec.name] = pd.array([int(v) if v is not None else None for v in s], dtype="Int64")
        elif spec.kind == "bool":
            low = s.astype(str).str.lower()
            bad = present & ~low.isin(_TRUE | _FALSE)
            if bad.any():
                _fail_first(path, s, bad, spec.name, "expected true or false")
            out[spec.name] = pd.array(
                [None if v is None else v.lower() in _TRUE for v in s], dtype="boolean"
            )
        elif spec.kind == "timestamp":
            ts = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")
            bad = present & ts.isna()
            if bad.any():
                _fail_first(path, s, bad, spec.name, "expected an ISO 8601 timestamp")
            out[spec.name] = ts
        else:
            out[spec.name] = _shared(s)
    df = pd.DataFrame(out, index=raw.index)
    df["_source"] = f"{path.name}"
    df["_line"] = raw.index.to_numpy()
    return df.reset_index(drop=True)


def read_object(folder: str | Path, object_name: str) -> pd.DataFrame:
    """Parse every file of ``object_name`` in ``folder`` into one typed frame.

    Columns are the contract's (without ``period``) plus ``_source`` and ``_line`` for
    tracing a record back to its file. Missing files give an empty frame.
    """
    return pd.concat(list(iter_object(folder, object_name)), ignore_index=True)


def iter_object(
    folder: str | Path, object_name: str, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """:func:`read_object` in pieces of at most ``chunk_rows`` records of a CSV file (an
    NDJSON file whole), in file order: what parsing holds at once is one piece."""
    folder = Path(folder)
    if object_name not in MODELS:
        raise KeyError(f"unknown object {object_name!r}; expected one of {sorted(MODELS)}")
    paths = object_files(folder, object_name)
    for path in paths:
        raws = [_read_ndjson(path)] if path.suffix == ".ndjson" else _read_csv(path, chunk_rows)
        for raw in raws:
            yield _parse(path, raw, object_name)
    if not paths:
        empty = pd.DataFrame(index=pd.RangeIndex(0))
        yield _parse(
            folder / f"{object_name}.csv",
            empty.assign(**{c.name: pd.Series(dtype=object) for c in file_columns(object_name)}),
            object_name,
        )


def month_start(ts: pd.Series) -> pd.Series:
    """First instant of the UTC month of each timestamp."""
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.dt.to_period("M").dt.to_timestamp().dt.tz_localize("UTC")


def with_period(
    object_name: str, df: pd.DataFrame, header: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Add the ``period`` column: the month of the object's date, or of its header document.

    A line whose header document is absent takes the month of its own ``period_start``
    (or stays without a period) so that it can still be reported, never silently dropped.
    """
    return add_period(object_name, df.copy(), header)


def add_period(
    object_name: str, df: pd.DataFrame, header: pd.DataFrame | None = None
) -> pd.DataFrame:
    """:func:`with_period` in place, for a frame its caller owns (a fresh parse)."""
    if object_name in PERIOD_COLUMN:
        df["period"] = month_start(df[PERIOD_COLUMN[object_name]])
    elif object_name in HEADER_OF:
        _, key, hkey = HEADER_OF[object_name]
        hp = (
            header.drop_duplicates(hkey).set_index(hkey)["period"]
            if header is not None and not header.empty
            else pd.Series(dtype="datetime64[ns, UTC]")
        )
        df["period"] = pd.to_datetime(df[key].map(hp), utc=True)
        if "period_start" in df:
            df["period"] = df["period"].fillna(month_start(df["period_start"]))
    else:
        df["period"] = pd.NaT
    return df


class PartitionIndex:
    """An object's records with their ``period`` (:func:`with_period`), and the row positions
    of each (entity, period), grouped once: :meth:`partition` is a lookup instead of a scan of
    every record. It holds no copy per entity: a partition is taken from ``frame`` on demand.
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self._rows: dict | None = None

    def partition(self, entity_id, period) -> pd.DataFrame:
        """The records of ``entity_id`` whose period is ``period``, in file order, indexed from
        0: ``frame[(entity_id == e) & (period == p)]``, by lookup for a string entity and a
        tz-aware period over a UTC ``period`` column, by that comparison otherwise."""
        df = self.frame
        utc = str(df["period"].dtype) == "datetime64[ns, UTC]"
        if not (utc and isinstance(entity_id, str) and _aware(period)):
            mask = (df["entity_id"] == entity_id) & (df["period"] == period)
            return df[mask].reset_index(drop=True)
        if self._rows is None:
            self._rows = df.groupby(["entity_id", "period"], sort=False).indices if len(df) else {}
        rows = self._rows.get((entity_id, pd.Timestamp(period).tz_convert("UTC")))
        return df.take(np.empty(0, dtype=np.intp) if rows is None else rows).reset_index(drop=True)


def _aware(period) -> bool:
    return isinstance(period, pd.Timestamp) and period.tzinfo is not None
