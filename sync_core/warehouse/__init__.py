"""The warehouse: plain SQL tables that finance can query, on SQLite or PostgreSQL."""

from sync_core.warehouse.schema import TABLES, metadata
from sync_core.warehouse.store import Warehouse

__all__ = ["TABLES", "Warehouse", "metadata"]
