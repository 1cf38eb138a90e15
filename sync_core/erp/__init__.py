"""ERP clients: posting journals to an ERP (no Dagster imports)."""

from sync_core.erp.rest import (
    PostOutcome,
    RestErpClient,
    journal_payload,
    journal_payloads,
)

__all__ = ["PostOutcome", "RestErpClient", "journal_payload", "journal_payloads"]
