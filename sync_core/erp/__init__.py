"""ERP clients: posting journals to an ERP (no Dagster imports)."""

from sync_core.erp.netsuite_body import Unresolved, journal_bodies, journal_body
from sync_core.erp.rest import PostOutcome, RestErpClient

__all__ = ["PostOutcome", "RestErpClient", "Unresolved", "journal_bodies", "journal_body"]
