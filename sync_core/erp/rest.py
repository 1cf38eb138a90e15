"""REST ERP client with NetSuite semantics: idempotent upserts of journal entries.

``PUT /record/v1/journalEntry/eid:{externalId}`` creates or replaces the journal with that
external id, so a retry after a timeout, a dropped connection or a 500 that came after the
write (commit-then-fail) still leaves exactly one journal. The client therefore retries 429,
5xx, timeouts and connection errors (exponential backoff with full jitter, waiting at least
``Retry-After-Ms`` / ``Retry-After`` when the ERP sends them) and nothing else: a 4xx is a
validation error that a retry cannot fix, reported as ``rejected`` with the ERP's error code.

One ``requests.Session`` (one kept-alive connection) per worker thread; ``post_many`` posts
on a thread pool of ``max_workers``, which should not exceed the ERP's concurrency limit
(the 429s above it are retried, but they cost a round trip each). No Dagster imports.
"""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

JOURNAL_PATH = "/record/v1/journalEntry/"
QUERY_PATH = "/query/v1/suiteql"  # SuiteQL, read-only (the GL read back)
MAX_RETRY_AFTER_S = 60.0  # a Retry-After above this is capped (a misbehaving server)
STATUSES = ("posted", "rejected", "failed")


@dataclass(frozen=True)
class PostOutcome:
    """What became of one journal.

    ``posted``: the ERP holds it (``erp_internal_id`` set); ``rejected``: the ERP refused it
    with a 4xx (``error_code`` and ``message`` from ``o:errorDetails``; not retried);
    ``failed``: retries exhausted on 429 / 5xx / timeouts (the last error is kept). A failed
    journal may or may not have been written: posting it again is safe (upsert).
    """

    external_id: str
    status: str
    erp_internal_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    attempts: int = 0
    http_status: int | None = None


# --------------------------------------------------------------------------------------------
# payloads


def _null(v) -> bool:
    return v is None or (not isinstance(v, str | bytes) and bool(pd.isna(v)))


def _minor(v, what: str) -> int:
    if _null(v):
        return 0
    f = float(v)
    if f != int(f):
        raise ValueError(f"{what} {v!r} is not in integer minor units")
    return int(v)


def _one(records: list[dict], col: str):
    values = {r[col] for r in records}
    if len(values) != 1:
        raise ValueError(f"one journal must have one {col}, got {sorted(map(str, values))}")
    return values.pop()


def _payload(records: list[dict]) -> dict:
    if not records:
        raise ValueError("a journal needs at least one line")
    eid = str(_one(records, "external_id"))
    period = pd.Timestamp(_one(records, "period"))
    last_day = calendar.monthrange(period.year, period.month)[1]
    first = records[0]
    memo = first.get("memo")
    memo = f"{first['event']} {first['document_id']}" if _null(memo) else str(memo)
    tran = first.get("transaction_date")
    tran_date = (
        dt.date(period.year, period.month, last_day) if _null(tran) else pd.Timestamp(tran).date()
    )
    items = []
    for r in records:
        customer = r.get("erp_customer_id")
        corr = r.get("correlation_id")
        items.append(
            {
                "account": str(r["erp_account"]),
                "debit": _minor(r["debit"], "debit"),
                "credit": _minor(r["credit"], "credit"),
                "memo": f"{r['event']} {r['document_id']}",
                "entity": None if _null(customer) else str(customer),
                "custcol_correlation_id": None if _null(corr) else str(corr),
            }
        )
    return {
        "externalId": eid,
        "subsidiary": str(_one(records, "erp_subsidiary_id")),
        "tranDate": tran_date.isoformat(),
        "period": f"{period.year:04d}-{period.month:02d}",
        "currency": str(_one(records, "currency")),
        "memo": memo,
        "line": {"items": items},
    }


def _records(lines) -> list[dict]:
    if isinstance(lines, pd.DataFrame):
        if "line_no" in lines.columns:
            lines = lines.sort_values("line_no", kind="stable")
        return lines.to_dict("records")
    return list(lines)


def journal_payload(lines) -> dict:
    """The REST body of one journal from its journal lines (a DataFrame or dict rows).

    Columns: external_id, period (UTC timestamp, month start), erp_subsidiary_id, currency,
    erp_account, debit, credit (integer minor units), erp_customer_id, correlation_id, event,
    document_id (``line_no`` orders the lines when present). ``tranDate`` is the last day of
    the period's month, ``period`` is ``YYYY-MM``.
    """
    return _payload(_records(lines))


def journal_payloads(lines) -> list[dict]:
    """One payload per external id of ``lines`` (many journals), in external-id order."""
    by_id: dict[str, list[dict]] = {}
    for r in _records(lines):
        by_id.setdefault(r["external_id"], []).append(r)
    return [_payload(by_id[k]) for k in sorted(by_id)]


# --------------------------------------------------------------------------------------------
# client


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
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


def _error_details(resp: requests.Response) -> tuple[str | None, str]:
    """(first ``o:errorCode``, joined details) of a NetSuite-style error body."""
    try:
        body = resp.json()
        details = body.get("o:errorDetails") or []
        code = next((d.get("o:errorCode") for d in details if d.get("o:errorCode")), None)
        message = "; ".join(str(d.get("detail", "")) for d in details) or body.get("title")
        return code, message or f"HTTP {resp.status_code}"
    except (ValueError, AttributeError):
        return None, f"HTTP {resp.status_code}: {resp.text[:200]}"


class _AdaptiveLimit:
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


class RestErpClient:
    """Posts journals to a NetSuite-style REST ERP; see the module docstring.

    ``max_retries`` is the number of retries after the first attempt (so at most
    ``max_retries + 1`` attempts). The backoff before retry *n* is uniform in
    ``[0, min(backoff_max_s, backoff_base_s * 2**(n-1))]`` (full jitter), added to the
    server's ``Retry-After`` when it sent one (429 or 503), so the hint is always honoured.
    Each 429 also lowers a client-side cap on requests in flight (see ``_AdaptiveLimit``), so
    more workers than the ERP's concurrency limit converge on the limit instead of spending
    their retries on 429s.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 8,
        backoff_base_s: float = 0.05,
        backoff_max_s: float = 5.0,
        max_workers: int = 5,
    ):
        if max_retries < 0 or max_workers < 1:
            raise ValueError("max_retries must be >= 0 and max_workers >= 1")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_workers = max_workers
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []
        self._executor: ThreadPoolExecutor | None = None
        self._gate = _AdaptiveLimit(max_workers)
        self._rng = random.Random()
        self._sleep = time.sleep

    def __repr__(self) -> str:  # never shows the token
        token = "***" if self._token else None
        return (
            f"RestErpClient({self.base_url!r}, token={token}, timeout_s={self.timeout_s}, "
            f"max_retries={self.max_retries}, max_workers={self.max_workers})"
        )

    # sessions and pool ------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
            if self._token:
                s.headers["Authorization"] = f"Bearer {self._token}"
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="erp-put")
            return self._executor

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            sessions, self._sessions = self._sessions, []
        if executor is not None:
            executor.shutdown(wait=True)
        for s in sessions:
            s.close()
        self._local = threading.local()

    def __enter__(self) -> RestErpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # posting ----------------------------------------------------------------------------------
    def journal_url(self, external_id: str) -> str:
        return f"{self.base_url}{JOURNAL_PATH}eid:{quote(str(external_id), safe='')}"

    def backoff_delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry - 1))
        jitter = self._rng.uniform(0, cap)
        if retry_after_s is None:
            return jitter
        return min(retry_after_s, MAX_RETRY_AFTER_S) + jitter

    def put_journal(self, journal: dict) -> PostOutcome:
        """Upsert one journal by its ``externalId``, retrying only what a retry can fix."""
        eid = journal.get("externalId")
        if not eid:
            raise ValueError("the journal has no externalId")
        eid = str(eid)
        url = self.journal_url(eid)
        body = json.dumps(journal, separators=(",", ":")).encode()
        session = self._session()
        code = message = status = None
        for attempt in range(1, self.max_retries + 2):
            hint, resp = None, None
            self._gate.acquire()
            try:
                resp = session.put(url, data=body, timeout=self.timeout_s)
            except requests.Timeout:
                code, message, status = "TIMEOUT", f"no answer within {self.timeout_s}s", None
            except requests.ConnectionError as exc:
                code, message, status = "CONNECTION_ERROR", str(exc)[:300], None
            except requests.RequestException as exc:  # invalid URL and the like: no retry
                return PostOutcome(eid, "failed", None, "REQUEST_ERROR", str(exc)[:300], attempt)
            finally:
                self._gate.release(throttled=resp is not None and resp.status_code == 429)
            if resp is not None:
                status = resp.status_code
                if 200 <= status < 300:
                    return PostOutcome(
                        eid, "posted", _internal_id(resp), None, None, attempt, status
                    )
                code, message = _error_details(resp)
                code = code or f"HTTP_{status}"
                if status != 429 and status < 500:
                    return PostOutcome(eid, "rejected", None, code, message, attempt, status)
                if status in (429, 503):
                    hint = _retry_after_s(resp.headers)
            if attempt > self.max_retries:
                break
            delay = self.backoff_delay(attempt, hint)
            log.debug(
                "journal %s attempt %d: %s (%s); retrying in %.3fs",
                eid,
                attempt,
                code,
                status,
                delay,
            )
            self._sleep(delay)
        log.warning("journal %s failed after %d attempts: %s %s", eid, attempt, code, message)
        return PostOutcome(eid, "failed", None, code, message, attempt, status)

    def _put_safe(self, journal: dict) -> PostOutcome:
        try:
            return self.put_journal(journal)
        except (ValueError, TypeError) as exc:  # a payload that cannot be sent at all
            eid = str(journal.get("externalId") or "") if isinstance(journal, dict) else ""
            return PostOutcome(eid, "rejected", None, "INVALID_PAYLOAD", str(exc), 0)

    def post_many(self, journals: Iterable[dict]) -> list[PostOutcome]:
        """Post every journal on ``max_workers`` threads; outcomes in input order."""
        journals = list(journals)
        if self.max_workers == 1 or len(journals) <= 1:
            return [self._put_safe(j) for j in journals]
        return list(self._pool().map(self._put_safe, journals))

    # reading the GL back (SuiteQL; read-only) -------------------------------------------------
    def suiteql(self, q: str, page_size: int = 1000) -> list[dict]:
        """Every row of a SuiteQL query, page by page (``limit``/``offset`` until ``hasMore``
        is false); 429, 5xx and timeouts are retried like posts, anything else raises."""
        rows: list[dict] = []
        offset = 0
        while True:
            page = self._query_page(q, page_size, offset)
            items = page.get("items") or []
            rows += [{k: v for k, v in i.items() if k != "links"} for i in items]
            if not page.get("hasMore") or not items:
                return rows
            offset += len(items)

    def _query_page(self, q: str, limit: int, offset: int) -> dict:
        url = f"{self.base_url}{QUERY_PATH}?limit={limit}&offset={offset}"
        body = json.dumps({"q": q}).encode()
        for attempt in range(1, self.max_retries + 2):
            hint = None
            try:
                resp = self._session().post(
                    url, data=body, timeout=self.timeout_s, headers={"Prefer": "transient"}
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                resp, error = None, str(exc)[:300]
            if resp is not None:
                if resp.status_code == 200:
                    return resp.json()
                code, error = _error_details(resp)
                if resp.status_code != 429 and resp.status_code < 500:
                    raise RuntimeError(f"SuiteQL query refused ({code}): {error}")
                hint = _retry_after_s(resp.headers)
            if attempt > self.max_retries:
                break
            self._sleep(self.backoff_delay(attempt, hint))
        raise RuntimeError(f"SuiteQL query failed after {attempt} attempts: {error}")

    def read_journals(self, entity_id: str, subsidiary: str, accounts: dict[str, str],
                      functional_currency: str):  # fmt: skip
        """The entity's journals and lines as the ERP holds them, in the shape of
        :meth:`SqlLedger.journals` / :meth:`SqlLedger.lines` (see :mod:`sync_core.erp.gl_read`)."""
        from sync_core.erp.gl_read import journal_frames, journals_query

        rows = self.suiteql(journals_query(subsidiary))
        return journal_frames(rows, entity_id, accounts, functional_currency)


def _internal_id(resp: requests.Response) -> str | None:
    """Internal id from ``Location: .../journalEntry/{id}`` (204) or a JSON ``id`` (200)."""
    location = resp.headers.get("Location")
    if location:
        return location.rstrip("/").rsplit("/", 1)[-1]
    try:
        return str(resp.json()["id"])
    except (ValueError, KeyError, TypeError):
        return None
