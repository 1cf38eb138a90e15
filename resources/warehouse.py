"""Warehouse resource and the IO manager that writes each partition atomically."""

import dagster as dg
import pandas as pd

from sync_core.warehouse import Warehouse

DEFAULT_WAREHOUSE_URL = "sqlite:///.local/warehouse.sqlite"


class WarehouseResource(dg.ConfigurableResource):
    """SQL warehouse: SQLite by default, PostgreSQL when ``SYNC_WAREHOUSE_URL`` says so."""

    url: str = DEFAULT_WAREHOUSE_URL

    def get(self) -> Warehouse:
        return Warehouse(self.url)


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores each asset output in the table named after the asset.

    A partitioned output replaces its (entity, period) rows with delete + insert in one
    transaction, together with the exception rows the asset attached to the frame
    (``df.attrs["exceptions"]`` within ``df.attrs["exception_scope"]``).
    """

    warehouse: dg.ResourceDependency[WarehouseResource]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        table = context.asset_key.path[-1]
        wh = self.warehouse.get()
        if not context.has_asset_partitions:
            wh.replace_table(table, obj)
            return
        exceptions = obj.attrs.get("exceptions")
        scope = obj.attrs.get("exception_scope")
        keys = [split_partition_key(k) for k in context.asset_partition_keys]
        if len(keys) == 1:
            wh.replace_partition(*keys[0], {table: obj}, exceptions, scope, context.run_id)
            return
        # a ranged run (a single-run backfill): each entity's months in one transaction,
        # every row in the month of its ``period`` column
        months: dict[str, list[pd.Timestamp]] = {}
        for entity, period in keys:
            months.setdefault(entity, []).append(period)
        for entity, periods in months.items():
            wh.replace_partitions(
                entity,
                periods,
                {table: _of(obj, entity, len(months))},
                exceptions=_of(exceptions, entity, len(months)),
                exception_scope=scope,
                run_id=context.run_id,
            )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        table = context.asset_key.path[-1]
        wh = self.warehouse.get()
        if not context.has_asset_partitions:
            return wh.read(table)
        frames = [wh.read(table, *split_partition_key(key)) for key in context.asset_partition_keys]
        return pd.concat(frames, ignore_index=True) if frames else wh.read(table).iloc[:0]


def _of(df: pd.DataFrame | None, entity: str, entities: int) -> pd.DataFrame | None:
    """The rows of one entity of a ranged run's frame."""
    if df is None or entities == 1 or df.empty:
        return df
    return df[(df["entity_id"] == entity).to_numpy()].reset_index(drop=True)


def split_partition_key(key) -> tuple[str, pd.Timestamp]:
    """``US01|2025-01-01`` (or a MultiPartitionKey) -> ("US01", Timestamp(2025-01-01, UTC))."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["entity"], pd.Timestamp(dims["period"], tz="UTC")
    entity, period = str(key).split("|")
    return entity, pd.Timestamp(period, tz="UTC")
