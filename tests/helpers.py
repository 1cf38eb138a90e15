"""Helpers shared by the Dagster-level tests."""

import warnings

import dagster as dg

from resources import BillingSourceResource, WarehouseIOManager, WarehouseResource
from resources.erp import ErpResource
from sync_assets.definitions import ALL_ASSETS

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.materialize(
            ALL_ASSETS,
            selection=selection,
            partition_key=key,
            instance=instance,
            resources=resources,
            run_config=QUIET,
        )
