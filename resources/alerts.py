"""The alert webhook: Slack-compatible JSON posted to ``SYNC_ALERT_WEBHOOK_URL``.

The URL is a secret (whoever has it can post to the channel): it is read through
``dg.EnvVar``, never shown in a repr, a log line or an error. Every payload goes through
``sync_core.alerts.redact`` with the values of the secret settings of this process, so a
secret that slipped into a failure message never reaches the channel.
"""

import os

import dagster as dg
import requests
from pydantic import Field

from sync_core.alerts import redact

# settings whose values are secrets (README, "Settings"); their values are scrubbed from alerts
SECRET_SETTINGS = (
    "SYNC_ALERT_WEBHOOK_URL", "SYNC_ERP_TOKEN", "SYNC_ERP_PRIVATE_KEY",
    "SYNC_ERP_CONSUMER_KEY", "SYNC_ERP_CONSUMER_SECRET", "SYNC_ERP_TOKEN_ID",
    "SYNC_ERP_TOKEN_SECRET", "STRIPE_API_KEY", "SYNC_POSTGRES_URL", "SYNC_WAREHOUSE_URL",
    "SYNC_LEDGER_URL",
)  # fmt: skip


class AlertDeliveryError(Exception):
    """The webhook did not take the alert (the message never names the URL)."""


def secret_values(env=os.environ) -> list[str]:
    """The values of the secret settings, and each line of a multi-line one (a PEM)."""
    out = []
    for name in SECRET_SETTINGS:
        value = env.get(name)
        if value:
            out.append(value)
            out += [ln for ln in value.replace("\\n", "\n").splitlines() if len(ln) >= 16]
    return out


class AlertWebhookResource(dg.ConfigurableResource):
    """Posts alerts to a Slack-compatible incoming webhook; ``url`` None: alerts are off."""

    url: str | None = Field(default=None, repr=False, description="SYNC_ALERT_WEBHOOK_URL")
    ui_url: str = "http://127.0.0.1:3000"  # SYNC_DAGSTER_UI_URL, for links in alerts
    timeout_s: float = 10.0
    backlog_max_open: int = 50  # SYNC_ALERT_BACKLOG_MAX_OPEN, per owner
    backlog_max_age_days: int = 7  # SYNC_ALERT_BACKLOG_MAX_AGE_DAYS

    def configured(self) -> bool:
        return bool(self.url)

    def send(self, message: dict, secrets: list[str] | None = None) -> None:
        """POST ``message`` (redacted) as JSON; :class:`AlertDeliveryError` when the webhook
        does not answer 2xx in ``timeout_s``."""
        if not self.url:
            raise AlertDeliveryError("SYNC_ALERT_WEBHOOK_URL is not set")
        body = redact(message, [*(secrets or []), *secret_values(), self.url])
        try:
            resp = requests.post(self.url, json=body, timeout=self.timeout_s)
        except requests.RequestException as e:  # its text names the URL: not passed on
            raise AlertDeliveryError(f"the alert webhook did not answer ({type(e).__name__})"
                                     ) from None  # fmt: skip
        if not 200 <= resp.status_code < 300:
            raise AlertDeliveryError(f"the alert webhook answered HTTP {resp.status_code}")
