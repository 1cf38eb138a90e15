"""ERP posting configuration: chart-of-accounts mapping and period policy per legal entity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sync_core.posting_plan import POLICIES

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "erp.yaml"


@dataclass(frozen=True)
class ErpConfig:
    defaults: dict = field(default_factory=dict)
    entities: dict = field(default_factory=dict)

    def accounts(self, entity_id: str) -> dict[str, str]:
        merged = dict(self.defaults.get("accounts", {}))
        merged.update(self.entities.get(entity_id, {}).get("accounts", {}))
        return {str(k): str(v) for k, v in merged.items()}

    def period_policy(self, entity_id: str) -> str:
        return self.entities.get(entity_id, {}).get(
            "period_policy", self.defaults.get("period_policy", "next_open")
        )


def load_erp_config(path: str | Path | None = None) -> ErpConfig:
    """Read and check the configuration; a mistake is a clear error, not a silent default."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"ERP configuration {path} not found") from None
    cfg = ErpConfig(defaults=raw.get("defaults", {}) or {}, entities=raw.get("entities", {}) or {})
    for who, block in [("defaults", cfg.defaults), *cfg.entities.items()]:
        policy = (block or {}).get("period_policy")
        if policy is not None and policy not in POLICIES:
            raise ValueError(f"{path}: {who}.period_policy {policy!r} is not one of {POLICIES}")
    return cfg
