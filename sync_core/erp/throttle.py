"""Throttling and retry timing of the REST ERP client: ``Retry-After`` and a client-side
cap on requests in flight that adapts to the ERP's concurrency limit. No Dagster imports."""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
from collections.abc import Mapping


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After-Ms`` or ``Retry-After`` (seconds or HTTP date)."""
    ms = headers.get("Retry-After-Ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("Retry-After")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class AdaptiveLimit:
    """Client-side cap on requests in flight: additive increase, decrease on every 429.

    A 429 sets the cap to at most the number of our other requests still in flight (the
    ones the ERP accepted), so workers above the ERP's concurrency limit wait here instead of
    being refused there; ``4 x cap`` successes in a row probe one more, up to the maximum.
    """

    def __init__(self, maximum: int):
        self.maximum = self.limit = maximum
        self.in_flight = 0
        self._successes = 0
        self._cv = threading.Condition()

    def acquire(self) -> None:
        with self._cv:
            while self.in_flight >= self.limit:
                self._cv.wait()
            self.in_flight += 1

    def release(self, throttled: bool) -> None:
        with self._cv:
            self.in_flight -= 1
            if throttled:
                self.limit = max(1, min(self.limit - 1, self.in_flight))
                self._successes = 0
            else:
                self._successes += 1
                if self.limit < self.maximum and self._successes >= 4 * self.limit:
                    self.limit += 1
                    self._successes = 0
            self._cv.notify_all()
