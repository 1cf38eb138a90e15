"""The contract's vectorized stand-ins (sync_core/contracts/vectorized.py) against pandera's own
implementations of the same rules.

Every model builds its schema through ``_Base.build_schema_``, which swaps in the stand-ins;
``plain`` builds the same model the way pandera alone would. On random frames mixing valid
values, values breaking each rule, nulls, and values of the wrong type, both schemas must
give the same verdict: the same failure cases (column, check, value, row), or the same
validated (coerced) frame. ``test_contracts`` holds the failing example of every rule; this
file also pins down that a clean frame is validated without any element-wise pass, and that
the stand-ins make validation several times cheaper.
"""

from __future__ import annotations

import functools
import random
import re
import time

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from sync_core.contracts import MODELS
from sync_core.contracts.derived import DERIVED_MODELS, ProposedJournalModel
from sync_core.contracts.models import _Base
from sync_core.contracts.vectorized import DateTime, Text

ALL = {m.__name__: m for m in {**MODELS, **DERIVED_MODELS}.values()}
MONTH = pd.Timestamp("2025-03-01", tz="UTC")


@functools.cache
def plain(model) -> pa.DataFrameSchema:
    """The model's schema as pandera builds it, without the stand-ins."""
    schema = model.to_schema()
    return super(_Base, model).build_schema_(
        coerce=schema.coerce, strict=schema.strict, name=schema.name
    )


def _stat(col, name: str):
    return next((c.statistics for c in col.checks if c.name == name), None)


def _valid_value(name: str, col, i: int):
    """A value that keeps every rule of the contract for row ``i`` (an all-zero document)."""
    dtype = str(col.dtype)
    if dtype.startswith("datetime64"):
        if col.nullable:
            return pd.NaT  # voided_at, closed_at, ...: their status says they are open
        return MONTH + pd.DateOffset(months=1) if name == "period_end" else MONTH
    if dtype.startswith("int"):
        bound = _stat(col, "greater_than_or_equal_to") or _stat(col, "greater_than")
        if bound is None:
            return 0
        low = next(iter(bound.values()))
        return low + 1 if _stat(col, "greater_than") else low
    if dtype in ("bool", "boolean"):
        return False
    isin = _stat(col, "isin")
    if isin:
        return list(isin["allowed_values"])[0]  # the first status is an open one
    pattern = _stat(col, "str_matches")
    if pattern:
        samples = [f"US{i:02d}", "US", "1.25"]
        return next(s for s in samples if re.match(pattern["pattern"], s))
    return f"{name}_{i}"


def valid_frame(model, rows: int) -> pd.DataFrame:
    schema = plain(model)
    df = pd.DataFrame(
        {n: [_valid_value(n, c, i) for i in range(rows)] for n, c in schema.columns.items()}
    )
    for name, col in schema.columns.items():
        dtype = str(col.dtype)
        if dtype.startswith("datetime64"):
            df[name] = pd.to_datetime(df[name], utc=True)
        elif dtype in ("int64", "boolean"):
            df[name] = df[name].astype(dtype)
    return df


def _bad_values(name: str, col) -> list:
    """Values that break a rule of the column or do not have its type (and nulls)."""
    dtype = str(col.dtype)
    nulls = [None, np.nan]
    if dtype.startswith("datetime64"):
        mid = pd.Timestamp("2025-03-15 05:00", tz="UTC")
        return [*nulls, pd.NaT, mid, "2025-03-01", pd.Timestamp("2025-03-01"), "soon"]
    if dtype.startswith("int"):
        return [*nulls, -1, 10**16, 1.5, "12", "12 USD"]
    if dtype in ("bool", "boolean"):
        return [*nulls, True, "yes"]
    return [*nulls, pd.NA, 5, 1.5, True, "", "us-01", "0", "XXX", "a b", b"US01"]


def random_frame(model, seed: int, rows: int = 24) -> pd.DataFrame:
    """A valid frame in which some columns get rule-breaking, null or mistyped values."""
    rng = random.Random(seed)
    schema = plain(model)
    df = valid_frame(model, rows)
    for name, col in schema.columns.items():
        if rng.random() < 0.7:
            continue  # a clean column: the stand-ins' fast path
        bad = _bad_values(name, col)
        values = df[name].astype(object).tolist()
        for i in rng.sample(range(rows), rng.randint(1, 4)):
            values[i] = rng.choice(bad)
        df[name] = pd.Series(values, dtype=object)
        if rng.random() < 0.5:  # as a reader would hand it over: pandas infers the dtype
            df[name] = pd.Series(values).infer_objects()
    if seed == 0:  # a row null in every column (row rules let it through)
        df.loc[rows] = None
    return df


def outcome(schema: pa.DataFrameSchema, df: pd.DataFrame):
    """("valid", validated frame, []) or ("invalid", failure cases, the errors raised): an
    error may have no failure case (a row rule failing on a row of nulls only)."""
    try:
        return "valid", schema.validate(df.copy(), lazy=True), []
    except pa.errors.SchemaErrors as err:
        errors = [
            (e.reason_code, getattr(e.check, "name", e.check), getattr(e.schema, "name", None))
            for e in err.schema_errors
        ]
        return "invalid", err.failure_cases.reset_index(drop=True), errors


def assert_same_outcome(model, df: pd.DataFrame) -> str:
    expected, got = outcome(plain(model), df), outcome(model.to_schema(), df)
    assert got[0] == expected[0], (got, expected)
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert got[2] == expected[2]
    return got[0]


@pytest.mark.parametrize("name", sorted(ALL))
def test_schema_reads_as_pandera_builds_it(name: str) -> None:
    """Same columns, dtypes (as every reader prints them), nullability and rule names."""
    fast, slow = ALL[name].to_schema(), plain(ALL[name])
    assert list(fast.columns) == list(slow.columns)
    for col_name, col in fast.columns.items():
        ref = slow.columns[col_name]
        assert str(col.dtype) == str(ref.dtype), col_name
        assert (col.nullable, col.unique, col.default) == (ref.nullable, ref.unique, ref.default)
        assert [(c.name, c.error) for c in col.checks] == [(c.name, c.error) for c in ref.checks]
    assert [(c.name, c.error) for c in fast.checks] == [(c.name, c.error) for c in slow.checks]
    for col in fast.columns.values():
        if str(col.dtype) == "str":
            assert isinstance(col.dtype, Text)
        elif str(col.dtype).startswith("datetime64"):
            assert isinstance(col.dtype, DateTime)


@pytest.mark.parametrize("name", sorted(ALL))
def test_valid_frame_passes_both(name: str) -> None:
    assert assert_same_outcome(ALL[name], valid_frame(ALL[name], 5)) == "valid"


@pytest.mark.parametrize("name", sorted(ALL))
def test_random_frames_get_pandera_verdicts(name: str) -> None:
    verdicts = [assert_same_outcome(ALL[name], random_frame(ALL[name], seed)) for seed in range(6)]
    assert "invalid" in verdicts


def _proposed(rows: int = 6) -> pd.DataFrame:
    return valid_frame(ProposedJournalModel, rows)


def _failures(df: pd.DataFrame) -> set[tuple]:
    """(column, check, value, row) of each failure; (None, rule, None, row) for a row rule."""
    with pytest.raises(pa.errors.SchemaErrors) as err:
        ProposedJournalModel.validate(df, lazy=True)
    assert_same_outcome(ProposedJournalModel, df)
    cases = err.value.failure_cases
    row_rule = cases["schema_context"] == "DataFrameSchema"
    column = cases["column"].where(~row_rule, None)
    value = cases["failure_case"].where(~row_rule, None)
    return set(zip(column, cases["check"], value, cases["index"]))


def test_non_string_in_a_str_column_is_converted_as_before() -> None:
    """Coercion (``Config.coerce``) turns a number in a str column into its text, as pandera
    does; the text then meets the column's rules: an id is accepted, a bad key is not."""
    df = _proposed().astype({"document_id": object, "journal_key": object})
    df.loc[1, "document_id"] = 42
    df["correlation_id"] = np.arange(len(df))  # an int64 column
    df["reverses"] = np.nan  # a column of nulls, read as float64
    assert assert_same_outcome(ProposedJournalModel, df) == "valid"
    good = ProposedJournalModel.validate(df, lazy=True)
    assert good.loc[1, "document_id"] == "42"
    assert good["correlation_id"].tolist() == [str(i) for i in range(len(df))]
    assert good["reverses"].dtype == object and good["reverses"].isna().all()
    df.loc[2, "journal_key"] = 4.5  # "4.5": a point is not allowed in a journal key
    assert _failures(df) == {("journal_key", "str_matches('^[A-Za-z0-9_-]+$')", "4.5", 2)}


def test_null_in_a_non_nullable_str_column_is_rejected() -> None:
    df = _proposed()
    df.loc[3, "memo"] = None
    assert _failures(df) == {("memo", "not_nullable", None, 3)}


def test_each_pattern_and_value_list_rejects_its_row() -> None:
    df = _proposed()
    df.loc[0, "entity_id"] = "us-01"
    df.loc[1, "external_id"] = "a b"
    df.loc[2, "action"] = "post"
    df.loc[3, "period"] = pd.Timestamp("2025-03-15", tz="UTC")
    assert _failures(df) == {
        ("entity_id", "str_matches('^[A-Z0-9]{2,12}$')", "us-01", 0),
        ("external_id", "str_matches('^[A-Za-z0-9_-]+$')", "a b", 1),
        ("action", "isin(['new', 'unchanged', 'repost', 'reverse_stale'])", "post", 2),
        (None, "period_is_month_start", None, 3),
    }


def test_row_null_in_every_column_passes_row_rules_as_in_pandera() -> None:
    """Its nulls break the columns' rules; the row rules (ignore_na) let it through."""
    df = _proposed()
    df.loc[len(df)] = None
    assert assert_same_outcome(ProposedJournalModel, df) == "invalid"
    _, cases, errors = outcome(ProposedJournalModel.to_schema(), df)
    assert "not_nullable" in set(cases["check"])
    assert "period_is_month_start" not in {check for _, check, _ in errors}
    df.loc[0, "period"] = pd.Timestamp("2025-03-15", tz="UTC")  # a row that is not all null
    _, cases, errors = outcome(ProposedJournalModel.to_schema(), df)
    assert "period_is_month_start" in {check for _, check, _ in errors}


def test_clean_frame_is_validated_without_element_wise_passes(monkeypatch) -> None:
    """No per-value Python call on a clean frame: no ``Series.map`` (pandera's str check),
    no per-row regular expression (``Series.str.match``)."""
    df = _proposed(50)
    calls = []
    for owner, attr in ((pd.Series, "map"), (pd.core.strings.accessor.StringMethods, "match")):
        orig = getattr(owner, attr)

        def counted(*args, _orig=orig, _attr=attr, **kwargs):
            calls.append(_attr)
            return _orig(*args, **kwargs)

        monkeypatch.setattr(owner, attr, counted)
    ProposedJournalModel.validate(df, lazy=True)
    assert calls == []
    plain(ProposedJournalModel).validate(df, lazy=True)
    assert "map" in calls and "match" in calls  # the counters do see pandera's own path


def _cpu(schema: pa.DataFrameSchema, df: pd.DataFrame) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        schema.validate(df, lazy=True)
        best = min(best, time.process_time() - start)
    return best


def test_stand_ins_make_validation_several_times_cheaper() -> None:
    """60,000 journal lines with realistic cardinalities (one entity, a key per three lines):
    measured about 3x; asserted 2x (CPU time, best of three) to stay clear of noise."""
    n = 60_000
    df = _proposed(1).loc[np.zeros(n, dtype=int)].reset_index(drop=True)
    df["journal_key"] = [f"US01-2025-03-{i // 3}" for i in range(n)]
    df["external_id"] = df["journal_key"].where(np.arange(n) % 7 != 0, None)
    df["memo"] = [f"invoice in_{i // 3}" for i in range(n)]
    fast, slow = _cpu(ProposedJournalModel.to_schema(), df), _cpu(plain(ProposedJournalModel), df)
    assert fast * 2 <= slow, (fast, slow)
