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
        if not context.has_partition_key:
            wh.replace_table(table, obj)
            return
        entity, period = split_partition_key(context.partition_key)
        wh.replace_partition(
            entity,
            period,
            {table: obj},
            exceptions=obj.attrs.get("exceptions"),
            exception_scope=obj.attrs.get("exception_scope"),
            run_id=context.run_id,
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        table = context.asset_key.path[-1]
        wh = self.warehouse.get()
        if not context.has_asset_partitions:
            return wh.read(table)
        frames = [wh.read(table, *split_partition_key(key)) for key in context.asset_partition_keys]
        return pd.concat(frames, ignore_index=True) if frames else wh.read(table).iloc[:0]


def split_partition_key(key) -> tuple[str, pd.Timestamp]:
    """``US01|2025-01-01`` (or a MultiPartitionKey) -> ("US01", Timestamp(2025-01-01, UTC))."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["entity"], pd.Timestamp(dims["period"], tz="UTC")
    entity, period = str(key).split("|")
    return entity, pd.Timestamp(period, tz="UTC")
