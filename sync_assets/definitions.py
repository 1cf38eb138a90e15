"""The one place that assembles the code location's Definitions."""

import os

import dagster as dg

from resources import BillingSourceResource, WarehouseIOManager, WarehouseResource
from resources.alerts import AlertWebhookResource
from resources.erp import ErpResource
from resources.stripe import StripeResource
from schedules import nightly_sync_schedule, period_close_schedule
from schedules.stripe_reconcile import stripe_nightly_reconcile
from sensors import legal_entity_sensor, posting_replay_sensor
from sensors.alerts import ALERT_SENSORS
from sensors.stripe_events import stripe_event_sensor
from sync_assets import (
    billing,
    close_status,
    exception_queue,
    ops_metrics,
    postings,
    proposals,
    reconciliation,
    revenue,
)
from sync_assets.approvals import approve_postings
from sync_assets.close_jobs import period_close, period_reopen
from sync_assets.jobs import billing_sync_job, legal_entities_job, posting_replay_job

# Settings (README, "Settings"): the documented defaults live in sync_core.settings (shared with
# the command-line tools; LOCAL, PROJECT_ROOT and SETTINGS keep their names here). Values are
# read through EnvVar at run time, so they are not shown in the UI; os.getenv only decides
# whether a setting is present.
from sync_core.settings import LOCAL, PROJECT_ROOT, SETTINGS  # noqa: F401


def setting(name: str):
    """``EnvVar(name)`` when the variable is set, else the documented default."""
    return dg.EnvVar(name) if os.getenv(name) else SETTINGS[name]


def build_resources() -> dict:
    warehouse = WarehouseResource(url=setting("SYNC_WAREHOUSE_URL"))
    ledger_url = (
        dg.EnvVar("SYNC_LEDGER_URL")
        if os.getenv("SYNC_LEDGER_URL")
        else setting("SYNC_WAREHOUSE_URL")
    )
    return {
        "erp": ErpResource(
            target=setting("SYNC_ERP_TARGET"),
            ledger_url=ledger_url,
            rest_base_url=setting("SYNC_ERP_URL"),
            rest_auth=setting("SYNC_ERP_AUTH"),
            rest_token=setting("SYNC_ERP_TOKEN"),
            netsuite_account=setting("SYNC_NETSUITE_ACCOUNT"),
            oauth_client_id=setting("SYNC_ERP_CLIENT_ID"),
            oauth_certificate_id=setting("SYNC_ERP_CERTIFICATE_ID"),
            oauth_private_key=setting("SYNC_ERP_PRIVATE_KEY"),
            tba_consumer_key=setting("SYNC_ERP_CONSUMER_KEY"),
            tba_consumer_secret=setting("SYNC_ERP_CONSUMER_SECRET"),
            tba_token_id=setting("SYNC_ERP_TOKEN_ID"),
            tba_token_secret=setting("SYNC_ERP_TOKEN_SECRET"),
            config_path=setting("SYNC_ERP_CONFIG"),
        ),
        "warehouse": warehouse,
        # alerts are off (the sensors skip, stopped by default) without SYNC_ALERT_WEBHOOK_URL
        "alerts": AlertWebhookResource(
            url=dg.EnvVar("SYNC_ALERT_WEBHOOK_URL")
            if os.getenv("SYNC_ALERT_WEBHOOK_URL")
            else None,
            ui_url=os.getenv("SYNC_DAGSTER_UI_URL", "http://127.0.0.1:3000"),
            backlog_max_open=int(os.getenv("SYNC_ALERT_BACKLOG_MAX_OPEN", "50")),
            backlog_max_age_days=int(os.getenv("SYNC_ALERT_BACKLOG_MAX_AGE_DAYS", "7")),
        ),
        "warehouse_io": WarehouseIOManager(warehouse=warehouse),
        "billing_source": BillingSourceResource(
            kind=setting("SYNC_SOURCE_KIND"),
            path=setting("SYNC_SOURCE_PATH"),
            demo_subscriptions=int(os.getenv("SYNC_DEMO_SUBSCRIPTIONS", "300")),
        ),
        # Stripe lands into the mirror that a stripe_mirror source reads (SYNC_SOURCE_PATH)
        "stripe": StripeResource(
            api_key=dg.EnvVar("STRIPE_API_KEY") if os.getenv("STRIPE_API_KEY") else None,
            base_url=setting("SYNC_STRIPE_URL"),
            default_entity=setting("SYNC_STRIPE_DEFAULT_ENTITY"),
            mirror_path=setting("SYNC_SOURCE_PATH")
            if os.getenv("SYNC_SOURCE_KIND") == "stripe_mirror"
            else str(LOCAL / "stripe_mirror"),
            legal_entities_seed=setting("SYNC_STRIPE_LEGAL_ENTITIES"),
        ),
    }


ALL_ASSETS = dg.load_assets_from_modules(
    [
        billing,
        revenue,
        proposals,
        postings,
        exception_queue,
        reconciliation,
        close_status,
        ops_metrics,
    ]
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[
        billing_sync_job,
        legal_entities_job,
        posting_replay_job,
        approve_postings,
        period_close,
        period_reopen,
    ],
    sensors=[legal_entity_sensor, posting_replay_sensor, stripe_event_sensor, *ALERT_SENSORS],
    schedules=[nightly_sync_schedule, period_close_schedule, stripe_nightly_reconcile],
    resources=build_resources(),
)
