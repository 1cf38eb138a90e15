"""What the asset pages show: owners, kinds, tags, column schemas and materialization metadata.

Money in metadata, per currency (``sync_core.money_format``):
- ``<key>_<CUR>``: the amount in major units as a float, which the UI plots over time;
- ``<key>_<CUR>_display``: the exact amount as text with its currency, ``USD 40,957.78``.
A functional amount (a column ending in ``_functional``) is grouped by ``functional_currency``,
a transaction amount by ``currency``. Totals are exact integer sums (``checked_group_sum``).

Column schemas (``dagster/column_schema``) come from the contract, one helper for every table:
the columns, their order, nullability and uniqueness from the pandera model, the type and
meaning from ``docs/data-contract.md`` (a pandera ``Field(description=...)`` wins over it).
"""

import re
from functools import cache
from pathlib import Path

import dagster as dg
import pandas as pd

from sync_core.contracts import CONTRACT_VERSION, MODELS
from sync_core.contracts.derived import DERIVED_MODELS
from sync_core.money import CURRENCIES, checked_group_sum
from sync_core.money_format import format_amount, plot_value

# who acts on an asset's problems; the same teams own the exception queue's rows
# (sync_core.erp.netsuite_errors.OWNERS: finance, master_data, integration)
FINANCE = ["team:finance-systems"]
MASTER_DATA = ["team:master-data"]
INTEGRATION = ["team:integration"]
# at most 3 kinds per asset (Dagster's limit): frames in pandas, stored in the SQL warehouse
TABLE_KINDS = {"pandas", "sql"}
ERP_KINDS = {"pandas", "sql", "erp"}

QUARANTINE_CHECK = "no_quarantined_records"
QUARANTINE_CHECK_DESCRIPTION = (
    "WARN when records of the partition broke the data contract and were quarantined to the "
    "exceptions table (rule and owner per record); the valid records are kept."
)

CONTRACT_MODELS = {**MODELS, **DERIVED_MODELS}
_CONTRACT_DOC = Path(__file__).resolve().parents[1] / "docs" / "data-contract.md"
_PIPE = re.compile(r"(?<!\\)\|")


def quarantine_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        QUARANTINE_CHECK, asset=asset, description=QUARANTINE_CHECK_DESCRIPTION
    )


# -- money -------------------------------------------------------------------------------


def currency_totals(df: pd.DataFrame, amount: str, currency: str | None = None) -> dict[str, int]:
    """Exact sum of ``amount`` per currency (minor units); ``currency`` defaults to
    ``functional_currency`` for a ``*_functional`` amount, else ``currency``."""
    if currency is None:
        functional = amount.endswith("_functional") and "functional_currency" in df
        currency = "functional_currency" if functional else "currency"
    if df.empty or amount not in df or currency not in df:
        return {}
    sums = checked_group_sum(df, currency, amount, f"{amount} metadata total")
    return {str(cur): int(v) for cur, v in sums[amount].items()}


def money_entries(key: str, totals: dict[str, int]) -> dict:
    """Per currency the plottable ``<key>_<CUR>`` float and the ``<key>_<CUR>_display`` text."""
    meta: dict = {}
    for cur, minor in sorted(totals.items()):
        meta[f"{key}_{cur}"] = dg.MetadataValue.float(plot_value(minor, cur))
        meta[f"{key}_{cur}_display"] = dg.MetadataValue.text(format_amount(minor, cur))
    return meta


def amount_entry(key: str, minor: int, currency: str) -> dict:
    """One amount whose key already names it (``drift_Revenue``): the float under ``key`` and
    the text under ``<key>_display``."""
    return {
        key: dg.MetadataValue.float(plot_value(minor, currency)),
        f"{key}_display": dg.MetadataValue.text(format_amount(minor, currency)),
    }


def frame_metadata(df: pd.DataFrame, amount: str | None = None, **extra) -> dict:
    """Row count, contract version and, for money frames, totals per currency: the readable
    ``<amount>_by_currency`` table plus the plottable and display entries (``money_entries``)."""
    meta: dict = {
        "dagster/row_count": dg.MetadataValue.int(len(df)),
        "contract_version": dg.MetadataValue.text(CONTRACT_VERSION),
    }
    if amount is not None:
        totals = currency_totals(df, amount)
        meta[f"{amount}_by_currency"] = dg.MetadataValue.json(
            {cur: format_amount(v, cur) for cur, v in sorted(totals.items())}
        )
        meta.update(money_entries(amount, totals))
    for key, value in extra.items():
        meta[key] = value
    return meta


# -- column schemas ----------------------------------------------------------------------


@cache
def documented_columns() -> dict[str, dict[str, tuple[str, str]]]:
    """``docs/data-contract.md``'s column tables as object -> column -> (type, meaning);
    the partition columns every object shares are under ``""``. Empty without the file."""
    if not _CONTRACT_DOC.exists():
        return {}
    out: dict[str, dict[str, tuple[str, str]]] = {}
    section = None
    for line in _CONTRACT_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = "" if line.strip() == "## Objects" else None
        elif line.startswith("### ") and section is not None:
            section = line[4:].split(" (")[0].strip()
        elif section is not None and line.startswith("| `"):
            cells = [c.strip() for c in _PIPE.split(line)[1:-1]]
            if len(cells) == 5:
                out.setdefault(section, {})[cells[0].strip("`")] = (cells[1], cells[4])
    return out


def column_schema(object_name: str) -> dg.TableSchema:
    """The contract of ``object_name`` as a Dagster table schema (columns in contract order)."""
    schema = CONTRACT_MODELS[object_name].to_schema()
    docs = documented_columns()
    own, shared = docs.get(object_name, {}), docs.get("", {})
    columns = []
    for name, col in schema.columns.items():
        doc_type, meaning = own.get(name) or shared.get(name) or (None, None)
        columns.append(
            dg.TableColumn(
                name=name,
                type=doc_type or str(col.dtype),
                description=col.description or meaning,
                constraints=dg.TableColumnConstraints(nullable=col.nullable, unique=col.unique),
            )
        )
    return dg.TableSchema(columns=columns)


def table_metadata(object_name: str) -> dict:
    """Definition metadata of a table asset: its column schema from the contract."""
    return {"dagster/column_schema": column_schema(object_name)}


# -- exceptions and checks ---------------------------------------------------------------


def with_exceptions(
    df: pd.DataFrame, exceptions: pd.DataFrame, stage: str, objects
) -> pd.DataFrame:
    """Attach the partition's exception rows so the IO manager writes them atomically."""
    df.attrs["exceptions"] = exceptions
    df.attrs["exception_scope"] = (stage, tuple(objects))
    return df


def exceptions_check(asset_key: dg.AssetKey, exceptions: pd.DataFrame) -> dg.AssetCheckResult:
    """WARN when records of this partition were quarantined; the rules are in the metadata."""
    by_rule = exceptions["rule"].value_counts().to_dict() if len(exceptions) else {}
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=QUARANTINE_CHECK,
        passed=len(exceptions) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantined": dg.MetadataValue.int(len(exceptions)),
            "by_rule": dg.MetadataValue.json({str(k): int(v) for k, v in by_rule.items()}),
        },
    )


def _currency_of(key: str) -> str | None:
    """The currency a core check's figure is in, when its key ends with one
    (``drift_Revenue_functional_USD``)."""
    tail = key.rsplit("_", 1)[-1]
    return tail if key.startswith("drift_") and tail in CURRENCIES else None


def check_result(outcome, asset: str) -> dg.AssetCheckResult:
    """A core check outcome (``sync_core.proposal_checks.CheckOutcome``) as an ERROR check
    result, with its figures as numeric metadata (a figure in a currency also as its display
    text) and what broke it as text."""
    meta = {}
    for k, v in outcome.metadata.items():
        meta[k] = dg.MetadataValue.int(v)
        if (cur := _currency_of(k)) is not None:
            meta[f"{k}_display"] = dg.MetadataValue.text(format_amount(v, cur))
    if outcome.problems:
        meta["problems"] = dg.MetadataValue.md("\n".join(f"- {p}" for p in outcome.problems))
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=meta,
    )
