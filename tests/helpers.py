"""Helpers shared by the Dagster-level tests."""

from resources import BillingSourceResource, WarehouseIOManager, WarehouseResource
from resources.erp import ErpResource
from sync_assets import runner

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def make_resources(source, url: str, **erp) -> dict:
    """Resources over a file-drop folder and one database (warehouse, ledger and queue)."""
    wh = WarehouseResource(url=url)
    return {
        "warehouse": wh,
        "warehouse_io": WarehouseIOManager(warehouse=wh),
        "billing_source": BillingSourceResource(kind="file_drop", path=str(source)),
        "erp": ErpResource(ledger_url=url, **erp),
    }


def materialize(instance, resources, selection, key=None):
    """The runner's in-process run (``sync_assets.runner.materialize``), tagged as a test."""
    return runner.materialize(instance, resources, selection, key, trigger="test")
