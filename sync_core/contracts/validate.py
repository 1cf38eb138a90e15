"""Split a frame into contract-valid rows and quarantined rows with a reason per rule."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

# object type -> (source id column, owner of its exceptions)
SOURCE_ID = {
    "legal_entities": "entity_id",
    "customers": "customer_id",
    "subscription_contracts": "contract_id",
    "usage_events": "event_id",
    "usage_daily": "subscription_item_id",
    "invoices": "invoice_id",
    "invoice_lines": "line_key",
    "credit_notes": "credit_note_id",
    "credit_note_lines": "credit_note_line_id",
    "payments": "payment_id",
    "disputes": "dispute_id",
}
OWNER = {
    "customers": "master_data",
    "legal_entities": "master_data",
    "subscription_contracts": "billing_ops",
}
DEFAULT_OWNER = "integration"
# nullable columns added by a minor contract version, which a feed may leave out (null)
OPTIONAL_COLUMNS = {"uncollectible_at"}

EXCEPTION_COLUMNS = ["entity_id", "period", "object_type", "source_id", "rule", "message", "owner"]


@dataclass(frozen=True)
class Quarantine:
    """Rows that broke the contract, one exception row per (record, rule)."""

    rows: pd.DataFrame  # EXCEPTION_COLUMNS

    @staticmethod
    def empty() -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in EXCEPTION_COLUMNS})


def exception_rows(df: pd.DataFrame, mask, object_type: str, rule: str, message) -> pd.DataFrame:
    """Exception rows for the records of ``df`` selected by ``mask``."""
    bad = df.loc[mask]
    if bad.empty:
        return Quarantine.empty()
    id_col = SOURCE_ID[object_type]
    msg = message(bad) if callable(message) else message
    return pd.DataFrame(
        {
            "entity_id": bad.get("entity_id", pd.Series(None, index=bad.index)).astype("object"),
            "period": bad.get("period", pd.Series(pd.NaT, index=bad.index)),
            "object_type": object_type,
            "source_id": bad[id_col].astype("object") if id_col in bad else None,
            "rule": rule,
            "message": msg,
            "owner": OWNER.get(object_type, DEFAULT_OWNER),
        }
    ).reset_index(drop=True)


def _short(check) -> str:
    """A readable check name: long value lists (currencies) are elided."""
    text = str(check)
    return text if len(text) <= 60 else text.split("(")[0] + "(...)"


def _with_optional_columns(df: pd.DataFrame, model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """A feed may leave out an optional column (one with a default, or nullable and added by
    a minor contract version: ``balance_applied``, ``uncollectible_at``): it is added here,
    as its default or null. A missing required column still fails the feed."""
    cols = model.to_schema().columns
    missing = {n: c for n, c in cols.items() if n not in df.columns
               and (c.default is not None or (c.nullable and n in OPTIONAL_COLUMNS))}  # fmt: skip
    if not missing:
        return df
    return df.assign(**{n: c.default if c.default is not None else None
                        for n, c in missing.items()})  # fmt: skip


def split_valid(
    df: pd.DataFrame, model: type[pa.DataFrameModel], object_type: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate ``df`` lazily against ``model``; return (valid rows, exception rows).

    Every failing (row, rule) pair becomes an exception row; a record failing several rules
    is reported under each of them and kept out of the valid frame once.
    """
    df = _with_optional_columns(df.reset_index(drop=True), model)
    df, pre = _integer_columns(df, model, object_type)
    try:
        good = model.validate(df, lazy=True)
        return good, pre
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    whole = cases[cases["index"].isna()]
    if not whole.empty:
        # a failure not tied to a row (missing column, wrong dtype for every row) is a
        # broken feed, not a bad record: fail loudly with every reason
        reasons = "; ".join(f"{r.column}: {r.check} ({r.failure_case})" for r in whole.itertuples())
        raise ValueError(
            f"{object_type}: the feed does not match contract {model.__name__}: {reasons}"
        )
    cases = cases.assign(column=cases["column"].where(cases["schema_context"] == "Column", None))
    parts = []
    for (column, check), grp in cases.groupby(["column", "check"], dropna=False, sort=True):
        idx = grp["index"].astype(int).unique()
        check = _short(check)
        mask = df.index.isin(idx)
        if isinstance(column, str):
            values = dict(zip(grp["index"].astype(int), grp["failure_case"]))
            rule = f"{column}.{check.split('(')[0]}"
            message = lambda bad, c=column, k=check, v=values: [  # noqa: E731
                f"column {c} fails {k}: got {v.get(i)!r}" for i in bad.index
            ]
        else:  # a row rule (dataframe check)
            rule, message = check, f"record fails the row rule {check}"
        parts.append(exception_rows(df, mask, object_type, rule, message))
    bad_idx = cases["index"].dropna().astype(int).unique()
    good = df.drop(index=bad_idx)
    good = model.validate(good, lazy=True) if not good.empty else model.validate(good)
    found = [p for p in (pre, *parts) if len(p)]
    return good.reset_index(drop=True), pd.concat(found, ignore_index=True)


def _integer_columns(
    df: pd.DataFrame, model: type[pa.DataFrameModel], object_type: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quarantine non-integer money and counts before pandera would coerce them.

    Coercion would silently truncate ``3100.5`` to ``3100`` and turn one bad value into a
    whole-feed failure; here each bad record gets its own ``<column>.integer`` (or
    ``<column>.not_nullable``) exception and the integer columns become ``int64``.
    """
    parts, bad = [], pd.Series(False, index=df.index)
    columns = model.to_schema().columns
    int_cols = [
        (name, col.nullable)
        for name, col in columns.items()
        if str(col.dtype).startswith("int") and name in df.columns
    ]
    for name, nullable in int_cols:
        if columns[name].default is not None:  # an optional column: a null is its default
            df = df.assign(**{name: df[name].where(df[name].notna(), columns[name].default)})
        num = pd.to_numeric(df[name], errors="coerce")
        missing = df[name].isna()
        if not nullable:
            mask = missing & ~bad
            parts.append(
                exception_rows(
                    df,
                    mask,
                    object_type,
                    f"{name}.not_nullable",
                    f"column {name} fails not_nullable: got None",
                )
            )
            bad |= mask
        whole = num.notna() & (num == num.round())
        mask = ~missing & ~whole & ~bad
        parts.append(
            exception_rows(
                df,
                mask,
                object_type,
                f"{name}.integer",
                lambda b, n=name: [f"column {n} must be a whole number: got {v!r}" for v in b[n]],
            )
        )
        bad |= mask
    if not bad.any():
        return df, Quarantine.empty()
    good = df[~bad].copy()
    for name, nullable in int_cols:
        good[name] = pd.to_numeric(good[name]).astype("Int64" if nullable else "int64")
    return good, pd.concat([p for p in parts if len(p)], ignore_index=True)
