"""The Stripe resource: an API client factory and the mirror folder the Stripe data lands in."""

from pathlib import Path

import dagster as dg
import pandas as pd

from sync_core.stripe import DEFAULT_STRIPE_VERSION, StripeClient
from sync_core.stripe.landing import LEGAL_ENTITIES


class StripeResource(dg.ConfigurableResource):
    """Stripe (or the sandbox billing API) and the canonical mirror folder.

    ``api_key`` always comes from ``EnvVar("STRIPE_API_KEY")`` (never shown in the UI); it is
    ``None`` where the variable is unset, and then :meth:`client` refuses with the setting
    named (the Stripe sensor skips instead of failing every tick);
    ``base_url`` is ``https://api.stripe.com`` or the sandbox (``SYNC_STRIPE_URL``);
    ``stripe_version`` is pinned so payload shapes do not change under us. Records without
    ``metadata.legal_entity`` take ``default_entity``. ``mirror_path`` is the folder the
    ``stripe_mirror`` billing source reads; ``legal_entities_seed`` is a ``legal_entities.csv``
    copied into a mirror that has none (Stripe does not know the legal entities' books).
    """

    api_key: str | None = None
    base_url: str = "https://api.stripe.com"
    stripe_version: str = DEFAULT_STRIPE_VERSION
    default_entity: str | None = None
    mirror_path: str = ".local/stripe_mirror"
    legal_entities_seed: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 4

    def client(self) -> StripeClient:
        if not self.api_key:
            raise dg.Failure("no Stripe API key: set STRIPE_API_KEY (a restricted read-only key)")
        return StripeClient(
            base_url=self.base_url,
            api_key=self.api_key,
            stripe_version=self.stripe_version,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
        )

    def mirror(self) -> Path:
        folder = Path(self.mirror_path)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def functional_currencies(self) -> dict[str, str]:
        """Entity -> functional currency, from the mirror's (or the seed's) legal entities."""
        for path in (Path(self.mirror_path) / LEGAL_ENTITIES, self.legal_entities_seed):
            if path and Path(path).is_file():
                df = pd.read_csv(path, dtype=str)
                return dict(zip(df["entity_id"], df["functional_currency"], strict=True))
        return {}
