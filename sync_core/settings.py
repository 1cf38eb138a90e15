"""The documented defaults of the settings (README, "Settings"), without Dagster.

Every setting is an environment variable; this module only holds what applies when one is
not set, so the Dagster code location (``sync_assets.definitions``, which reads the values
through ``dg.EnvVar`` at run time) and the command-line tools (``billing-sync``,
``python -m sync_core.warehouse.period_close``, ``python -m sync_core.erp.periods``) share one
list. Secrets have no default here (``None``): they come from the environment only.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCAL = PROJECT_ROOT / ".local"

SETTINGS: dict[str, str | None] = {
    "SYNC_WAREHOUSE_URL": f"sqlite:///{LOCAL / 'warehouse.sqlite'}",
    "SYNC_SOURCE_KIND": "demo",
    "SYNC_SOURCE_PATH": str(LOCAL / "demo_source"),
    "SYNC_ERP_TARGET": "sql_ledger",
    "SYNC_ERP_URL": None,
    "SYNC_ERP_AUTH": "bearer",  # oauth2 | tba | bearer (sync_core/erp/auth.py)
    "SYNC_ERP_TOKEN": None,
    "SYNC_NETSUITE_ACCOUNT": None,
    "SYNC_ERP_CLIENT_ID": None,
    "SYNC_ERP_CERTIFICATE_ID": None,
    "SYNC_ERP_PRIVATE_KEY": None,
    "SYNC_ERP_CONSUMER_KEY": None,
    "SYNC_ERP_CONSUMER_SECRET": None,
    "SYNC_ERP_TOKEN_ID": None,
    "SYNC_ERP_TOKEN_SECRET": None,
    "SYNC_ERP_CONFIG": None,
    "SYNC_STRIPE_URL": "https://api.stripe.com",
    "SYNC_STRIPE_DEFAULT_ENTITY": None,
    "SYNC_STRIPE_LEGAL_ENTITIES": None,
}


def warehouse_url() -> str:
    """``$SYNC_WAREHOUSE_URL``, else the documented default."""
    return os.getenv("SYNC_WAREHOUSE_URL") or SETTINGS["SYNC_WAREHOUSE_URL"]


def ledger_url() -> str:
    """``$SYNC_LEDGER_URL`` (SQL ledger, posting log, exception queue, ERP periods), else the
    warehouse URL."""
    return os.getenv("SYNC_LEDGER_URL") or warehouse_url()
