"""ERP posting configuration per legal entity: chart-of-accounts mapping, period policy,
materiality, approval, and for a NetSuite target the internal ids of its records
(``internal_ids``) and the custom line field that carries the correlation id
(``correlation_field``); see ``config/erp.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sync_core.posting_plan import POLICIES

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "erp.yaml"
# what ``internal_ids`` maps, each by the platform's key: accounts by ERP account number,
# currencies by ISO code, subsidiaries by ``erp_subsidiary_id``, periods by ``YYYY-MM``,
# customers by ``erp_customer_id``, departments / classes / locations by a line's value
INTERNAL_ID_KINDS = ("accounts", "currencies", "subsidiaries", "periods", "customers",
                     "departments", "classes", "locations")  # fmt: skip
DIMENSIONS = ("department", "class", "location")
_CUSTOM_FIELD = re.compile(r"custcol[a-z0-9_]+")


@dataclass(frozen=True)
class ErpConfig:
    defaults: dict = field(default_factory=dict)
    entities: dict = field(default_factory=dict)

    def accounts(self, entity_id: str) -> dict[str, str]:
        merged = dict(self.defaults.get("accounts", {}))
        merged.update(self.entities.get(entity_id, {}).get("accounts", {}))
        return {str(k): str(v) for k, v in merged.items()}

    def materiality(self, entity_id: str) -> dict[str, int]:
        """Reconciliation thresholds of an entity, in minor units of its functional currency:
        ``{"default": n, <account>: n, ...}`` (the entity's block over ``defaults``)."""
        base = self.defaults.get("materiality") or {}
        own = self.entities.get(entity_id, {}).get("materiality") or {}
        out = {"default": own.get("default", base.get("default", 0))}
        out.update(base.get("accounts") or {})
        out.update(own.get("accounts") or {})
        where = f"materiality of {entity_id}"
        return {str(k): _threshold(v, f"{where}, {k}") for k, v in out.items()}

    def approval_required(self, entity_id: str) -> bool:
        """True when the entity's proposals wait for a person's approval before posting."""
        own = self.entities.get(entity_id, {}).get("approval")
        value = own if own is not None else self.defaults.get("approval", "none")
        return value == "required"

    def internal_ids(self, entity_id: str) -> dict[str, dict[str, str]]:
        """NetSuite internal ids configured for the entity, per kind (``INTERNAL_ID_KINDS``):
        ``{"accounts": {"1100": "54"}, "currencies": {"USD": "1"}, ...}``, the entity's block
        over ``defaults``; what is missing is looked up (``sync_core.erp.internal_ids``)."""
        base = self.defaults.get("internal_ids") or {}
        own = self.entities.get(entity_id, {}).get("internal_ids") or {}
        out = {}
        for kind in INTERNAL_ID_KINDS:
            merged = {**(base.get(kind) or {}), **(own.get(kind) or {})}
            out[kind] = {str(k): str(v) for k, v in merged.items()}
        return out

    def dimensions(self, entity_id: str) -> dict[str, str]:
        """Internal ids of the ``department``, ``class`` and ``location`` every line of the
        entity's journals carries (those configured; the entity's over ``defaults``)."""
        base = self.defaults.get("internal_ids") or {}
        own = self.entities.get(entity_id, {}).get("internal_ids") or {}
        return {d: str(own.get(d, base.get(d))) for d in DIMENSIONS
                if own.get(d, base.get(d)) is not None}  # fmt: skip

    def correlation_field(self, entity_id: str) -> str | None:
        """The custom line field (``custcol_...``) holding a line's correlation id, or None:
        then it goes in the line memo."""
        own = self.entities.get(entity_id, {})
        value = own["correlation_field"] if "correlation_field" in own else (
            self.defaults.get("correlation_field"))  # fmt: skip
        return str(value) if value else None

    def period_policy(self, entity_id: str) -> str:
        return self.entities.get(entity_id, {}).get(
            "period_policy", self.defaults.get("period_policy", "next_open")
        )


def _threshold(value, where: str) -> int:
    """A materiality threshold: a whole number of minor units, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{where}: threshold {value!r} must be a whole number of minor units >= 0 "
            "(100 = 1.00 in a two-decimal currency)"
        )
    return value


def _check_materiality(path, who: str, block, known: set[str]) -> None:
    m = (block or {}).get("materiality")
    if m is None:
        return
    if not isinstance(m, dict) or set(m) - {"default", "accounts"}:
        raise ValueError(f"{path}: {who}.materiality must be a mapping of 'default' and 'accounts'")
    if "default" in m:
        _threshold(m["default"], f"{path}: {who}.materiality.default")
    accounts = m.get("accounts") or {}
    if not isinstance(accounts, dict):
        raise ValueError(f"{path}: {who}.materiality.accounts must map accounts to thresholds")
    for account, v in accounts.items():
        if known and account not in known:
            raise ValueError(
                f"{path}: {who}.materiality.accounts.{account}: not a canonical account of "
                f"the chart ({', '.join(sorted(known))})"
            )
        _threshold(v, f"{path}: {who}.materiality.accounts.{account}")


def load_erp_config(path: str | Path | None = None) -> ErpConfig:
    """Read and check the configuration; a mistake is a clear error, not a silent default."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"ERP configuration {path} not found") from None
    cfg = ErpConfig(defaults=raw.get("defaults", {}) or {}, entities=raw.get("entities", {}) or {})
    for who, block in [("defaults", cfg.defaults), *cfg.entities.items()]:
        approval = (block or {}).get("approval")
        if approval is not None and approval not in ("none", "required"):
            raise ValueError(f"{path}: {who}.approval {approval!r} is not 'none' or 'required'")
        policy = (block or {}).get("period_policy")
        if policy is not None and policy not in POLICIES:
            raise ValueError(f"{path}: {who}.period_policy {policy!r} is not one of {POLICIES}")
        known = set(cfg.defaults.get("accounts") or {}) | set((block or {}).get("accounts") or {})
        _check_materiality(path, who, block, known)
        _check_netsuite(path, who, block or {})
    return cfg


def _check_netsuite(path, who: str, block: dict) -> None:
    field_ = block.get("correlation_field")
    if field_ is not None and not _CUSTOM_FIELD.fullmatch(str(field_)):
        raise ValueError(
            f"{path}: {who}.correlation_field {field_!r} is not a custom line field id "
            "(custcol followed by lower-case letters, digits and _), or null for the memo"
        )
    ids = block.get("internal_ids")
    if ids is None:
        return
    if not isinstance(ids, dict) or set(ids) - set(INTERNAL_ID_KINDS) - set(DIMENSIONS):
        raise ValueError(
            f"{path}: {who}.internal_ids must map kinds ({', '.join(INTERNAL_ID_KINDS)}) to "
            f"{{key: internal id}} and may set {', '.join(DIMENSIONS)}"
        )
    for kind in INTERNAL_ID_KINDS:
        m = ids.get(kind) or {}
        if not isinstance(m, dict) or any(
            isinstance(v, bool | dict | list) or v is None or str(v).strip() == ""
            for v in m.values()
        ):  # fmt: skip
            raise ValueError(f"{path}: {who}.internal_ids.{kind} must map keys to internal ids")
