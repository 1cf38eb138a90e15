"""A small, dependency-light Stripe API client for pulling billing objects.

- One ``requests.Session`` (connection reuse), ``Authorization: Bearer <key>`` and a pinned
  ``Stripe-Version`` header on every request. The key is never logged, repr'd or put in an
  error message.
- List endpoints are paged with ``limit`` / ``starting_after`` / ``has_more`` (Stripe lists are
  newest first); ``created[gte]`` narrows a pull to objects created since a checkpoint.
- 429, 5xx, connection errors and timeouts are retried with exponential backoff and jitter,
  honouring ``Retry-After`` and Stripe's ``Stripe-Should-Retry`` header. Any other 4xx raises
  :class:`StripeAPIError` carrying Stripe's own error message.
- Nested lists that Stripe truncates (invoice ``lines``, credit note ``lines``, subscription
  ``items``) are completed through their own list endpoints.
- :meth:`StripeClient.iter_pages` yields ``(objects, next_cursor)`` so a caller can persist the
  cursor after every page and resume after a crash without a gap or a duplicate.

Only reads (GET) are issued, so every retry is safe without an ``Idempotency-Key``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

logger = logging.getLogger(__name__)

DEFAULT_STRIPE_VERSION = "2025-03-31.basil"
MAX_PAGE_SIZE = 100


class StripeError(Exception):
    """Base class of the client's errors."""


class StripeConnectionError(StripeError):
    """The API could not be reached (connection error or timeout) after every retry."""


class StripeAPIError(StripeError):
    """Stripe answered with an error status (a non-retryable 4xx, or retries exhausted)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        path: str,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ):
        self.status, self.path, self.message = status, path, message
        self.error_type, self.code, self.param, self.request_id = (
            error_type,
            code,
            param,
            request_id,
        )
        detail = ", ".join(
            f"{k}={v}"
            for k, v in (("type", error_type), ("code", code), ("param", param))
            if v is not None
        )
        req = f" [request {request_id}]" if request_id else ""
        super().__init__(
            f"Stripe API error {status} on GET {path}: {message}"
            + (f" ({detail})" if detail else "")
            + req
        )

    @classmethod
    def from_response(cls, resp: requests.Response, path: str) -> StripeAPIError:
        err: dict = {}
        try:
            body = resp.json()
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                err = body["error"]
        except ValueError:
            pass
        message = err.get("message") or (resp.text or "").strip()[:300] or resp.reason or "error"
        return cls(
            resp.status_code,
            str(message),
            path=path,
            error_type=err.get("type"),
            code=err.get("code"),
            param=err.get("param"),
            request_id=resp.headers.get("Request-Id"),
        )


def _epoch(value: int | float | dt.datetime | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp())
    return int(value)


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Stripe's form encoding for query strings: ``{"created": {"gte": 1}}`` becomes
    ``created[gte]=1``, a list of strings ``{"expand": ["a", "b"]}`` becomes
    ``expand[]=a&expand[]=b``, a list of hashes or lists is indexed (``items[0][price]=p``:
    with ``items[][id]=`` Stripe's parser puts a key in the previous hash when that hash lacks
    it, merging two elements), booleans ``true``/``false``, datetimes epoch seconds (naive
    ones as UTC); ``None`` values are left out."""
    out: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                add(f"{key}[{k}]", v)
        elif isinstance(value, (list, tuple)):
            base = key[:-2] if key.endswith("[]") else key
            for i, v in enumerate(value):
                nested = isinstance(v, (Mapping, list, tuple))
                add(f"{base}[{i}]" if nested else f"{base}[]", v)
        elif isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        elif isinstance(value, dt.datetime):
            out.append((key, str(_epoch(value))))
        else:
            out.append((key, str(value)))

    for k, v in (params or {}).items():
        add(k, v)
    return out


def _retry_after_s(resp: requests.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class StripeClient:
    """Read-only Stripe API client. See the module docstring for the behaviour.

    ``StripeClient(api_key="sk_test_...")``; ``base_url`` points at a sandbox in tests.
    ``max_retries`` is the number of retries after the first attempt. ``sleep`` and ``rng``
    can be injected to make backoff deterministic in tests.
    """

    def __init__(
        self,
        base_url: str = "https://api.stripe.com",
        api_key: str | None = None,
        stripe_version: str = DEFAULT_STRIPE_VERSION,
        timeout_s: float = 30,
        max_retries: int = 6,
        backoff_base_s: float = 0.25,
        page_size: int = MAX_PAGE_SIZE,
        *,
        backoff_max_s: float = 20.0,
        retry_after_max_s: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        if not api_key:
            raise ValueError("api_key is required")
        if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}, got {page_size}")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.stripe_version = stripe_version
        self.timeout_s = timeout_s
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.retry_after_max_s = float(retry_after_max_s)
        self.page_size = int(page_size)
        self.session = session or requests.Session()
        self._sleep = sleep
        self._rng = rng or random.Random()
        # private: the only place the key lives; never in repr, logs or errors
        self.__headers = {
            "Authorization": f"Bearer {api_key}",
            "Stripe-Version": stripe_version,
            "Accept": "application/json",
            "User-Agent": "billing-erp-sync/stripe-client",
        }
        self.stats = {"requests": 0, "retries": 0, "pages": 0, "objects": 0}

    def __repr__(self) -> str:
        return (
            f"StripeClient(base_url={self.base_url!r}, stripe_version={self.stripe_version!r}, "
            f"page_size={self.page_size}, max_retries={self.max_retries})"
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> StripeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------ transport

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        delay *= 0.5 + 0.5 * self._rng.random()  # jitter: 50-100 % of the step
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_max_s))
        return delay

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict:
        """GET ``path`` (e.g. ``/v1/customers``) and return the decoded JSON object."""
        url = self.base_url + path
        query = encode_params(params)
        attempt = 0
        while True:
            self.stats["requests"] += 1
            try:
                resp = self.session.get(
                    url, params=query, headers=self.__headers, timeout=self.timeout_s
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.max_retries:
                    raise StripeConnectionError(
                        f"Stripe API unreachable on GET {path} after {attempt + 1} attempts: "
                        f"{type(exc).__name__}"
                    ) from exc
                delay = self._backoff(attempt, None)
                logger.warning(
                    "stripe GET %s: %s, retry %d/%d in %.2fs",
                    path,
                    type(exc).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
            else:
                status = resp.status_code
                if status < 300:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise StripeError(f"Stripe API returned non-JSON on GET {path}") from exc
                should = (resp.headers.get("Stripe-Should-Retry") or "").lower()
                retryable = (status == 429 or status >= 500) if not should else should == "true"
                if not retryable or attempt >= self.max_retries:
                    raise StripeAPIError.from_response(resp, path)
                delay = self._backoff(attempt, _retry_after_s(resp))
                logger.warning(
                    "stripe GET %s: HTTP %d, retry %d/%d in %.2fs",
                    path,
                    status,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                resp.close()
            self.stats["retries"] += 1
            attempt += 1
            if delay > 0:
                self._sleep(delay)

    # ------------------------------------------------------------------------------ paging

    def iter_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        cursor: str | None = None,
        *,
        created_gte: int | float | dt.datetime | None = None,
    ) -> Iterator[tuple[list[dict], str | None]]:
        """Yield ``(page_objects, next_cursor)`` for a list endpoint, newest first.

        ``next_cursor`` is the id to resume *after* (Stripe's ``starting_after``); it is
        ``None`` on the last page. Persist it once the page is processed: resuming with
        ``cursor=next_cursor`` continues with the next older object, no gap and no repeat.
        Objects created while paging appear at the head of the list and are picked up by the
        next incremental pull (``created_gte``), not by this one.
        """
        base = dict(params or {})
        base["limit"] = self.page_size
        gte = _epoch(created_gte)
        if gte is not None:
            base["created[gte]"] = gte
        after = cursor
        while True:
            query = base if after is None else {**base, "starting_after": after}
            page = self.get(path, query)
            data = page.get("data") or []
            self.stats["pages"] += 1
            self.stats["objects"] += len(data)
            more = bool(page.get("has_more")) and bool(data)
            if page.get("has_more") and not data:
                logger.warning("stripe GET %s: has_more without data; stopping", path)
            nxt = data[-1]["id"] if more else None
            yield data, nxt
            if nxt is None:
                return
            after = nxt

    def list_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        created_gte: int | float | dt.datetime | None = None,
        start_after: str | None = None,
    ) -> Iterator[dict]:
        """Every object of a list endpoint, newest first, across all pages."""
        for data, _ in self.iter_pages(path, params, start_after, created_gte=created_gte):
            yield from data

    def _complete_list(self, obj: dict, field: str, path: str) -> dict:
        """Fill a truncated nested list (``obj[field]`` with ``has_more``) from ``path``."""
        nested = obj.get(field)
        if not isinstance(nested, dict) or not nested.get("has_more"):
            return obj
        data = list(nested.get("data") or [])
        rest = self.list_all(path, start_after=data[-1]["id"] if data else None)
        seen = {d.get("id") for d in data}
        for item in rest:
            if item.get("id") not in seen:  # defensive: never a duplicated line
                seen.add(item.get("id"))
                data.append(item)
        return {**obj, field: {**nested, "data": data, "has_more": False}}

    # ------------------------------------------------------------------------------ objects

    def customers(self, created_gte=None, params=None) -> Iterator[dict]:
        return self.list_all("/v1/customers", params, created_gte)

    def subscriptions(
        self, created_gte=None, params=None, *, expand_tiers: bool = True
    ) -> Iterator[dict]:
        """Every subscription (``status=all``: canceled ones too) with all its items.

        Tiered prices come without their ``tiers`` unless expanded, and Stripe cannot expand
        that deep from a list; with ``expand_tiers`` each distinct tiered price is fetched
        once (``GET /v1/prices/{id}?expand[]=tiers``) and its tiers are filled in.
        """
        params = {"status": "all", **(params or {})}
        tiers: dict[str, list | None] = {}
        for sub in self.list_all("/v1/subscriptions", params, created_gte):
            sub = self._complete_list(
                sub, "items", f"/v1/subscription_items?subscription={quote(sub['id'])}"
            )
            if expand_tiers:
                sub = self._with_tiers(sub, tiers)
            yield sub

    def _with_tiers(self, sub: dict, cache: dict[str, list | None]) -> dict:
        items = (sub.get("items") or {}).get("data") or []
        changed = False
        new_items = []
        for item in items:
            price = item.get("price")
            if (
                isinstance(price, dict)
                and price.get("billing_scheme") == "tiered"
                and price.get("tiers") is None
                and price.get("id")
            ):
                pid = price["id"]
                if pid not in cache:
                    cache[pid] = self.get(f"/v1/prices/{quote(pid)}", {"expand": ["tiers"]}).get(
                        "tiers"
                    )
                item = {**item, "price": {**price, "tiers": cache[pid]}}
                changed = True
            new_items.append(item)
        if not changed:
            return sub
        return {**sub, "items": {**sub["items"], "data": new_items}}

    def invoices(self, created_gte=None, params=None) -> Iterator[dict]:
        """Every invoice with all its lines (lines beyond the embedded page are fetched)."""
        for inv in self.list_all("/v1/invoices", params, created_gte):
            yield self._complete_list(inv, "lines", f"/v1/invoices/{quote(inv['id'])}/lines")

    def credit_notes(self, created_gte=None, params=None) -> Iterator[dict]:
        for cn in self.list_all("/v1/credit_notes", params, created_gte):
            yield self._complete_list(cn, "lines", f"/v1/credit_notes/{quote(cn['id'])}/lines")

    def invoice_payments(self, created_gte=None, params=None) -> Iterator[dict]:
        return self.list_all("/v1/invoice_payments", params, created_gte)

    def charges(self, created_gte=None, params=None) -> Iterator[dict]:
        return self.list_all("/v1/charges", params, created_gte)

    def payment_intents(self, created_gte=None, params=None) -> Iterator[dict]:
        return self.list_all("/v1/payment_intents", params, created_gte)

    def refunds(self, created_gte=None, params=None) -> Iterator[dict]:
        return self.list_all("/v1/refunds", params, created_gte)

    def billing_meter_events(self, created_gte=None, params=None) -> Iterator[dict]:
        """Meter events, **sandbox only**: Stripe's v1 API can create meter events but not list
        them (use meter event summaries or the v2 event stream in production)."""
        return self.list_all("/v1/billing/meter_events", params, created_gte)

    def events(
        self, created_gte=None, types: Iterable[str] | None = None, params=None
    ) -> Iterator[dict]:
        """The events feed (Stripe keeps 30 days). ``types`` filters by event type; Stripe
        accepts at most 20 types per request, so more are split over several pulls."""
        types = list(types or [])
        if len(types) <= 20:
            p = {**(params or {}), **({"types": types} if types else {})}
            yield from self.list_all("/v1/events", p, created_gte)
            return
        for i in range(0, len(types), 20):
            yield from self.list_all(
                "/v1/events", {**(params or {}), "types": types[i : i + 20]}, created_gte
            )
