"""Vectorized stand-ins for pandera's implementations of the contract's rules, swapped into
every model's schema when it is built (``models._Base.build_schema_``).

The models are written in pandera's own vocabulary (``Series[str]``, ``pa.Field(
str_matches=...)``, ``@pa.dataframe_check``); validating them is what every Dagster asset's
type check and every ``split_valid`` does, on frames of up to millions of cells. pandera's
generic implementations of four of those rules cost far more than the rule itself, so
:func:`vectorize` replaces them by equivalents that accept and reject exactly the same rows,
under the same check names and with the same failure cases:

- a ``str`` column: pandera coerces it (``isna`` twice, ``astype(str)``) and then checks it
  element by element (``map(lambda x: isinstance(x, str))`` plus ``isna``). :class:`Text`
  first asks pandas, in one C pass, whether every non-null value is a ``str`` already
  (``pd.api.types.infer_dtype(skipna=True)`` is ``"string"`` or ``"empty"``): then there is
  nothing to convert and nothing to reject. Any other column takes pandera's path, so a
  non-string value is still converted the same way (``3`` -> ``"3"``, nulls kept) and a
  failure is still reported per value.
- a timestamp column that has its contract dtype already (``datetime64[ns, UTC]``) is left
  as it is (:class:`DateTime`) instead of going through ``pd.to_datetime`` again.
- ``str_matches`` (:class:`StrMatches`): the regular expression is tried once per distinct
  value instead of once per row; ``entity_id`` has one value per frame, keys repeat per line.
- a row rule (:class:`RowRule`): pandera lets a row that is null in every column pass
  (``ignore_na``) and finds those rows with an ``isna`` of the whole frame, per rule; here
  one column is read first and the others only for the rows null in it.

The two checks keep every attribute of pandera's (name, error, ``ignore_na``, statistics)
and run through their own subclass of pandera's pandas check backend (``register_backend``),
which overrides one method each. ``tests/test_contracts.py`` feeds a failing example of
every rule; ``tests/test_contract_speed.py`` checks that the stand-ins give pandera's own
verdicts, failure cases and coerced frames on random bad frames, and that they are faster.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.api.base.checks import CheckResult
from pandera.backends.pandas.checks import PandasCheckBackend
from pandera.engines import pandas_engine

_ALL_STR = ("string", "empty")  # infer_dtype's answers when every non-null value is a str


def _all_str(data) -> bool:
    """True when ``data`` is an object column whose non-null values are all ``str``.

    The nulls infer_dtype skips (None, NaN, pd.NA) are nulls to ``isna`` too, and any other
    value (NaT, bytes, a number) makes it answer something else, so "string" means pandera's
    element-wise ``str`` check would pass every row.
    """
    if not isinstance(data, pd.Series | pd.Index) or data.dtype != np.dtype(object):
        return False
    return pd.api.types.infer_dtype(data, skipna=True) in _ALL_STR


class Text(pandas_engine.NpString):
    """pandera's ``str`` (``str(dtype) == "str"``), coerced and checked in one pass when the
    column holds strings and nulls only."""

    def coerce(self, data_container):
        if _all_str(data_container):
            return data_container  # nothing to convert: every value is a str or a null
        if isinstance(data_container, pd.Series) and data_container.dtype != np.dtype(object):
            as_object = data_container.astype(object)
            if _all_str(as_object):  # e.g. a column of nulls read as float64 NaN
                return as_object  # what pandera's coercion returns for it
        return super().coerce(data_container)

    def check(self, pandera_dtype, data_container=None):
        if data_container is not None and _all_str(data_container):
            return True
        return super().check(pandera_dtype, data_container)


class DateTime(pandas_engine.DateTime):
    """pandera's ``DateTime`` (``datetime64[ns, UTC]`` here); a column that has exactly this
    dtype is returned as it is, which is what ``to_datetime``, ``tz_convert`` to its own zone
    and ``astype`` to its own dtype amount to."""

    def coerce(self, data_container):
        if (
            not self.time_zone_agnostic
            and isinstance(data_container, pd.Series)
            and data_container.dtype == self.type
        ):
            return data_container
        return super().coerce(data_container)


def _distinct_matches(series: pd.Series, regex: re.Pattern) -> pd.Series:
    """``series.str.match(regex, na=False)``, with the pattern tried once per distinct value."""
    try:
        codes, uniques = pd.factorize(series)  # nulls get code -1: they fail, as na=False
    except TypeError:  # an unhashable value: pandera's own path
        return series.str.match(regex.pattern, na=False)
    ok = np.fromiter(
        (isinstance(u, str) and regex.match(u) is not None for u in uniques),
        dtype=bool,
        count=len(uniques),
    )
    return pd.Series(np.append(ok, False)[codes], index=series.index)


def _all_null_rows(df: pd.DataFrame) -> pd.Series:
    """``df.isna().all(axis="columns")``, reading every column only for the rows that are
    null in the first non-text one (a timestamp or a number: cheap to test)."""
    if df.shape[1] == 0:
        return pd.Series(True, index=df.index)
    first = next((c for c, t in df.dtypes.items() if t != np.dtype(object)), df.columns[0])
    null = np.array(df[first].isna(), dtype=bool)
    if null.any():
        null[null] = np.asarray(df[null].isna().all(axis="columns"), dtype=bool)
    return pd.Series(null, index=df.index)


class _StandIn(pa.Check):
    """A check of the contract, every attribute kept (name, error, ignore_na, ...), run by
    its own pandera check backend (registered below)."""

    @classmethod
    def of(cls, check: pa.Check):
        stand_in = cls.__new__(cls)
        stand_in.__dict__.update(vars(check))
        return stand_in


class StrMatches(_StandIn):
    """``str_matches``, the pattern tried once per distinct value."""


class RowRule(_StandIn):
    """A row rule (dataframe check); with ``ignore_na`` (pandera's default) the rows null in
    every column pass, found by :func:`_all_null_rows`."""


class _StrMatchesBackend(PandasCheckBackend):
    def apply_field(self, check_obj):
        return _distinct_matches(check_obj, re.compile(self.check.statistics["pattern"]))


class _RowRuleBackend(PandasCheckBackend):
    def postprocess_table_with_field_output(self, check_obj, check_output) -> CheckResult:
        # pandera's own method, with _all_null_rows for check_obj.isna().all(axis="columns")
        if check_output.empty and check_output.dtype != bool:
            check_output = check_output.astype(bool)
        if check_obj.index.equals(check_output.index) and self.check.ignore_na:
            check_output = check_output | _all_null_rows(check_obj)
        return CheckResult(
            check_output,
            check_output.all(),
            check_obj,
            self._get_series_failure_cases(check_obj, check_output),
        )


for _frame in (pd.DataFrame, pd.Series):
    StrMatches.register_backend(_frame, _StrMatchesBackend)
    RowRule.register_backend(_frame, _RowRuleBackend)


def _column_check(check: pa.Check) -> pa.Check:
    if check.name == "str_matches" and isinstance(check.statistics.get("pattern"), str):
        return StrMatches.of(check)
    return check


def _row_rule(check: pa.Check) -> pa.Check:
    if check.element_wise or check.groupby is not None:
        return check
    return RowRule.of(check)


def vectorize(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """``schema`` (freshly built, changed in place) with the stand-ins above."""
    for col in schema.columns.values():
        if type(col.dtype) is pandas_engine.NpString:
            col.dtype = Text()
        elif type(col.dtype) is pandas_engine.DateTime:
            dt = col.dtype
            col.dtype = DateTime(
                to_datetime_kwargs=dt.to_datetime_kwargs,
                unit=dt.unit,
                tz=dt.tz,
                time_zone_agnostic=dt.time_zone_agnostic,
                tz_localize_kwargs=dt.tz_localize_kwargs,
            )
        col.checks = [_column_check(c) for c in col.checks]
    schema.checks = [_row_rule(c) for c in schema.checks]
    return schema
