"""The sandbox ERP's configuration: faults and rules (:class:`FaultConfig`)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from sync_core.posting import DEFAULT_CHART

# the sandbox account's chart: every account number of the platform's default mapping
DEFAULT_ACCOUNTS: frozenset[str] = frozenset(DEFAULT_CHART.values())
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _period_keys(values: Iterable | None) -> frozenset[tuple[str, str]]:
    """``{"1:2025-03", ("2", "2025-04"), "*:2025-05"}`` -> {(subsidiary, "YYYY-MM")}."""
    keys = set()
    for v in values or ():
        sub, period = v.split(":", 1) if isinstance(v, str) else v
        sub, period = str(sub).strip(), str(period).strip()
        if not sub or not PERIOD.fullmatch(period):
            raise ValueError(f"period key must be SUBSIDIARY:YYYY-MM (or *:YYYY-MM), got {v!r}")
        keys.add((sub, period))
    return frozenset(keys)


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """Faults and rules of the sandbox; change at run time with ``ErpSandbox.configure``."""

    latency_ms: float = 0.0
    error_rate_5xx: float = 0.0
    error_rate_429: float = 0.0
    timeout_rate: float = 0.0
    timeout_sleep_s: float = 1.0
    timeout_writes: bool = False
    commit_then_fail_rate: float = 0.0
    max_concurrency: int | None = None  # None or 0: unlimited
    retry_after_s: float = 0.05
    closed_periods: frozenset = frozenset()
    locked_periods: frozenset = frozenset()
    accounts: frozenset = DEFAULT_ACCOUNTS
    seed: int | None = None
    token: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "closed_periods", _period_keys(self.closed_periods))
        set_(self, "locked_periods", _period_keys(self.locked_periods))
        set_(self, "accounts", frozenset(str(a) for a in self.accounts))
        rates = {
            "error_rate_5xx": self.error_rate_5xx,
            "error_rate_429": self.error_rate_429,
            "timeout_rate": self.timeout_rate,
            "commit_then_fail_rate": self.commit_then_fail_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to more than 1: {rates}")
        if self.latency_ms < 0 or self.timeout_sleep_s < 0 or self.retry_after_s < 0:
            raise ValueError("latency_ms, timeout_sleep_s and retry_after_s must be >= 0")
        if self.max_concurrency is not None and self.max_concurrency < 0:
            raise ValueError("max_concurrency must be >= 0 (0 or None: unlimited)")

    def public(self) -> dict:
        """JSON-ready view (the token is never shown)."""
        d = dataclasses.asdict(self)
        d.pop("token")
        d["token_required"] = self.token is not None
        for k in ("closed_periods", "locked_periods"):
            d[k] = sorted(f"{s}:{p}" for s, p in d[k])
        d["accounts"] = sorted(d["accounts"])
        return d
