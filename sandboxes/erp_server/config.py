"""The sandbox ERP's run-time rules and faults (:class:`FaultConfig`).

Period status: ``closed_periods`` / ``locked_periods`` take ``"YYYY-MM"`` (the period is
closed for every subsidiary: SuiteQL shows ``accountingperiod.closed = 'T'``) or
``"SUB:YYYY-MM"`` (closed for subsidiary ``SUB`` only, a sandbox extension that SuiteQL does not
show; ``"*:YYYY-MM"`` is the same as ``"YYYY-MM"``). ``date_period_mismatch`` is NetSuite's
accounting preference *Allow Transaction Date Outside of Posting Period*: ``disallow`` (the
default) refuses a ``tranDate`` outside its ``postingPeriod``, ``warn`` and ``allow`` accept it
(REST has nobody to click through a warning). ``custom_line_fields`` are the custom line
fields (``custcol...``) defined on the account's journal lines.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
CUSTOM_FIELD = re.compile(r"custcol[a-z0-9_]+")
DATE_PERIOD_MISMATCH = ("disallow", "warn", "allow")
ALL = "*"  # every subsidiary


def period_keys(values: Iterable | None) -> frozenset[tuple[str, str]]:
    """``{"2025-03", "1:2025-04", ("2", "2025-05"), "*:2025-06"}`` -> {(subsidiary or "*", "YYYY-MM")}."""
    keys = set()
    for v in values or ():
        if isinstance(v, str):
            sub, period = v.split(":", 1) if ":" in v else (ALL, v)
        else:
            sub, period = v
        sub, period = str(sub).strip(), str(period).strip()
        if not sub or not PERIOD.fullmatch(period):
            raise ValueError(f"a period is YYYY-MM or SUBSIDIARY:YYYY-MM, got {v!r}")
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
    date_period_mismatch: str = "disallow"
    custom_line_fields: tuple = ("custcol_sync_correlation",)
    seed: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "closed_periods", period_keys(self.closed_periods))
        set_(self, "locked_periods", period_keys(self.locked_periods))
        fields = tuple(str(f) for f in self.custom_line_fields)
        bad = [f for f in fields if not CUSTOM_FIELD.fullmatch(f)]
        if bad:
            raise ValueError(f"custom line fields are custcol + [a-z0-9_], got {bad}")
        set_(self, "custom_line_fields", fields)
        if self.date_period_mismatch not in DATE_PERIOD_MISMATCH:
            raise ValueError(f"date_period_mismatch must be one of {DATE_PERIOD_MISMATCH}")
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

    def period_status(self, subsidiary: str, month: str) -> str:
        """``closed``, ``locked`` or ``open`` for a subsidiary's posting month (``YYYY-MM``)."""
        for status, keys in (("closed", self.closed_periods), ("locked", self.locked_periods)):
            if (ALL, month) in keys or (str(subsidiary), month) in keys:
                return status
        return "open"

    def public(self) -> dict:
        """JSON-ready view."""
        d = dataclasses.asdict(self)
        for k in ("closed_periods", "locked_periods"):
            d[k] = sorted(p if s == ALL else f"{s}:{p}" for s, p in d[k])
        d["custom_line_fields"] = list(d["custom_line_fields"])
        return d
