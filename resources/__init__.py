"""Dagster resources: the thin adapters from assets to storage and external systems."""

from resources.billing_source import BillingSourceResource
from resources.warehouse import WarehouseIOManager, WarehouseResource

__all__ = ["BillingSourceResource", "WarehouseIOManager", "WarehouseResource"]
