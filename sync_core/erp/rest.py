"""REST ERP client on NetSuite's terms: idempotent upserts of journal entries, SuiteQL reads.

Every journal is ``PUT {base}/record/v1/journalEntry/eid:{externalId}?replace=line`` with
``X-NetSuite-PropertyNameValidation: Error`` (docs/netsuite-rest.md): the external id makes
it an upsert, and ``replace=line`` makes an update replace the lines instead of appending
them, so a rewrite never doubles a journal. Bodies come from
:mod:`sync_core.erp.netsuite_body` (exact decimal amounts, ``{"id"}`` references resolved by
:class:`~sync_core.erp.internal_ids.InternalIds`, looked up on this client and kept).

Retries: 429 (waiting at least ``Retry-After-Ms`` / ``Retry-After``), 5xx, NetSuite's
transient codes (:mod:`sync_core.erp.netsuite_errors`), timeouts and dropped connections,
with exponential backoff and full jitter; a refusal a retry cannot fix is ``rejected`` with
its reason and owner. An **ambiguous** attempt (a timeout or a dropped connection after the
request went out, a 5xx) may have been written: before sending again the client reads the
record back (``GET .../eid:{externalId}?expandSubResources=true``). The same lines
(accounts, sides, amounts) there: the journal is posted and not sent again; absent: it is
sent again; different lines: it is upserted again, ``replace=line`` overwriting them. A 401
is retried once with fresh credentials when the scheme can get them (OAuth 2.0,
:mod:`sync_core.erp.auth`).

One ``requests.Session`` (one kept-alive connection) per worker thread; ``post_many`` posts
on a thread pool of ``max_workers`` under a client-side cap that adapts to the ERP's
concurrency limit (:class:`~sync_core.erp.throttle.AdaptiveLimit`). No Dagster imports.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from sync_core.erp.auth import AuthError, BearerToken
from sync_core.erp.config import ErpConfig
from sync_core.erp.internal_ids import InternalIds
from sync_core.erp.netsuite_body import (
    Unresolved,
    dumps,
    journal_bodies,
    journal_records,
    line_signature,
    loads,
)
from sync_core.erp.netsuite_errors import Verdict, classify, no_answer, parse_error
from sync_core.erp.throttle import AdaptiveLimit, retry_after_s

log = logging.getLogger(__name__)

JOURNAL_PATH = "/record/v1/journalEntry/"
QUERY_PATH = "/query/v1/suiteql"  # SuiteQL, read-only (lookups, the GL read back)
WRITE_HEADERS = {"X-NetSuite-PropertyNameValidation": "Error"}
MAX_RETRY_AFTER_S = 60.0  # a Retry-After above this is capped (a misbehaving server)
STATUSES = ("posted", "rejected", "failed")


@dataclass(frozen=True)
class PostOutcome:
    """What became of one journal.

    ``posted``: the ERP holds it (``erp_internal_id`` set); ``rejected``: refused, or not
    sent because a reference could not be resolved (``error_code`` NetSuite's code or
    ``UNRESOLVED``; not retried); ``failed``: retries exhausted on transient errors (the last
    error kept). ``reason`` and ``owner`` are the exception queue's
    (:mod:`sync_core.erp.netsuite_errors`); ``message`` keeps the ERP's detail and
    ``o:errorPath``. ``attempts`` counts PUTs, ``checks`` the read-backs after ambiguous
    attempts. A failed journal may or may not have been written: posting it again is safe.
    """

    external_id: str
    status: str
    erp_internal_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    attempts: int = 0
    http_status: int | None = None
    reason: str | None = None
    owner: str | None = None
    checks: int = 0


def unresolved_outcome(u: Unresolved) -> PostOutcome:
    """The outcome of a journal that was not sent (a reference missing, a closed period, the
    lookups failing)."""
    return PostOutcome(u.external_id, "failed" if u.transient else "rejected", None, u.code,
                       u.message, 0, None, u.reason, u.owner)  # fmt: skip


class ErpQueryError(RuntimeError):
    """A SuiteQL query refused, or failed after its retries; ``verdict`` says why."""

    def __init__(self, message: str, verdict: Verdict):
        super().__init__(message)
        self.verdict = verdict


def _maybe_sent(exc: requests.RequestException) -> bool:
    """Whether a request that got no answer may have reached the ERP (not a refused or
    timed-out connection attempt)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    text = str(exc)
    return not any(s in text for s in ("NewConnectionError", "Failed to establish",
                                       "Connection refused"))  # fmt: skip


def _answer(resp: requests.Response) -> tuple[Verdict, float | None]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    verdict = classify(resp.status_code, parse_error(resp.status_code, body))
    hint = retry_after_s(resp.headers) if resp.status_code in (429, 503) else None
    return verdict, hint


class RestErpClient:
    """Posts journals to NetSuite REST and reads it with SuiteQL; see the module docstring.

    ``auth``: a scheme of :mod:`sync_core.erp.auth` (``token`` alone: a static bearer).
    ``config``: the ERP configuration (internal ids, correlation field). ``max_retries`` is
    the number of retries after the first attempt. The backoff before retry *n* is uniform in
    ``[0, min(backoff_max_s, backoff_base_s * 2**(n-1))]`` (full jitter), added to the
    server's ``Retry-After`` when it sent one (429 or 503). Each 429 also lowers a
    client-side cap on requests in flight, so more workers than the ERP's limit converge on
    the limit instead of spending their retries on 429s.
    """

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 10.0,
                 max_retries: int = 8, backoff_base_s: float = 0.05, backoff_max_s: float = 5.0,
                 max_workers: int = 5, *, auth=None, config: ErpConfig | None = None):  # fmt: skip
        if max_retries < 0 or max_workers < 1:
            raise ValueError("max_retries must be >= 0 and max_workers >= 1")
        self.base_url = base_url.rstrip("/")
        self.auth = auth if auth is not None else (BearerToken(token) if token else None)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_workers = max_workers
        self.ids = InternalIds(config, self.suiteql)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []
        self._executor: ThreadPoolExecutor | None = None
        self._gate = AdaptiveLimit(max_workers)
        self._rng = random.Random()
        self._sleep = time.sleep

    def __repr__(self) -> str:  # the auth's repr shows no secret
        return (f"RestErpClient({self.base_url!r}, auth={self.auth!r}, "
                f"timeout_s={self.timeout_s}, max_retries={self.max_retries}, "
                f"max_workers={self.max_workers})")  # fmt: skip

    # sessions and pool ------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
            s.auth = self.auth
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

    # one request ------------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kw):
        """(response or None, verdict of a failure or None, Retry-After hint, maybe sent):
        one request through the in-flight cap, retried once at once after a 401 when the
        auth can get fresh credentials."""
        for fresh in (False, True):
            resp = None
            self._gate.acquire()
            try:
                resp = self._session().request(method, url, timeout=self.timeout_s, **kw)
            except AuthError as exc:
                return None, exc.verdict, None, False
            except requests.Timeout as exc:
                return None, no_answer("TIMEOUT", f"no answer within {self.timeout_s}s"), None, (
                    _maybe_sent(exc))  # fmt: skip
            except requests.ConnectionError as exc:
                return None, no_answer("CONNECTION_ERROR", str(exc)[:300]), None, _maybe_sent(exc)
            except requests.RequestException as exc:  # an answer cut mid-body: after the write?
                return None, no_answer("CONNECTION_ERROR", type(exc).__name__), None, True
            finally:
                self._gate.release(throttled=resp is not None and resp.status_code == 429)
            if 200 <= resp.status_code < 300:
                return resp, None, None, True
            if (resp.status_code == 401 and not fresh and self.auth is not None
                    and self.auth.refused(resp.request)):  # fmt: skip
                continue
            verdict, hint = _answer(resp)
            return resp, verdict, hint, True
        raise AssertionError("unreachable")

    def backoff_delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry - 1))
        jitter = self._rng.uniform(0, cap)
        if retry_after_s is None:
            return jitter
        return min(retry_after_s, MAX_RETRY_AFTER_S) + jitter

    # posting ----------------------------------------------------------------------------------
    def journal_url(self, external_id: str) -> str:
        return f"{self.base_url}{JOURNAL_PATH}eid:{quote(str(external_id), safe='')}"

    def get_journal(self, external_id: str) -> dict | None:
        """The journal with that external id, its lines inlined (amounts as ``Decimal``), or
        None when the ERP has none; raises :class:`ErpQueryError` when it cannot tell."""
        url = self.journal_url(external_id) + "?expandSubResources=true"
        resp, verdict, _, _ = self._request("GET", url)
        if resp is not None and resp.status_code == 404:
            return None
        if verdict is not None:
            raise ErpQueryError(f"reading journal {external_id} failed: {verdict.message}",
                                verdict)  # fmt: skip
        return loads(resp.content)

    def _check(self, eid: str, journal: dict) -> tuple[str, str | None]:
        """After an ambiguous attempt: ("same", internal id), ("absent"|"differs"|"unknown",
        None)."""
        try:
            record = self.get_journal(eid)
        except (ErpQueryError, ValueError):
            return "unknown", None
        if record is None:
            return "absent", None
        line = record.get("line")
        items = line.get("items") if isinstance(line, dict) else None
        if items is None:
            return "unknown", None
        same = line_signature(items) == line_signature(journal["line"]["items"])
        return ("same", str(record.get("id"))) if same else ("differs", None)

    def put_journal(self, journal: dict) -> PostOutcome:
        """Upsert one journal by its ``externalId`` (module docstring)."""
        eid = journal.get("externalId")
        if not eid:
            raise ValueError("the journal has no externalId")
        eid = str(eid)
        url = self.journal_url(eid) + "?replace=line"
        body = dumps(journal)
        verdict, status, checks = None, None, 0
        for attempt in range(1, self.max_retries + 2):
            resp, verdict, hint, sent = self._request("PUT", url, data=body, headers=WRITE_HEADERS)
            status = None if resp is None else resp.status_code
            if verdict is None:
                return PostOutcome(eid, "posted", _internal_id(resp), None, None, attempt, status,
                                   checks=checks)  # fmt: skip
            if not verdict.transient:
                return PostOutcome(eid, "rejected", None, verdict.code, verdict.message, attempt,
                                   status, verdict.reason, verdict.owner, checks)  # fmt: skip
            if sent and status != 429:  # it may have been written: look before sending again
                checks += 1
                found, internal_id = self._check(eid, journal)
                if found == "same":
                    return PostOutcome(eid, "posted", internal_id, None, None, attempt, status,
                                       checks=checks)  # fmt: skip
            if attempt > self.max_retries:
                break
            delay = self.backoff_delay(attempt, hint)
            log.debug("journal %s attempt %d: %s (%s); retrying in %.3fs", eid, attempt,
                      verdict.code, status, delay)  # fmt: skip
            self._sleep(delay)
        log.warning("journal %s failed after %d attempts: %s", eid, attempt, verdict.message)
        return PostOutcome(eid, "failed", None, verdict.code, verdict.message, attempt, status,
                           verdict.reason, verdict.owner, checks)  # fmt: skip

    def _put_safe(self, journal: dict) -> PostOutcome:
        try:
            return self.put_journal(journal)
        except (ValueError, TypeError) as exc:  # a payload that cannot be sent at all
            eid = str(journal.get("externalId") or "") if isinstance(journal, dict) else ""
            return PostOutcome(eid, "rejected", None, "INVALID_PAYLOAD", str(exc), 0,
                               reason="invalid_content", owner="integration")  # fmt: skip

    def post_many(self, journals: Iterable[dict]) -> list[PostOutcome]:
        """Post every journal body on ``max_workers`` threads; outcomes in input order."""
        journals = list(journals)
        if self.max_workers == 1 or len(journals) <= 1:
            return [self._put_safe(j) for j in journals]
        return list(self._pool().map(self._put_safe, journals))

    def journal_bodies(self, entity_id: str, lines) -> list[dict | Unresolved]:
        """The bodies of the journals of ``lines`` (:func:`sync_core.erp.netsuite_body.
        journal_bodies`), references resolved through this client's :attr:`ids`. When the
        lookups themselves fail (the ERP down, the login refused), no journal is sent: each
        is :class:`Unresolved` with the failure's reason and owner, to be posted by a replay."""
        try:
            return journal_bodies(lines, self.ids, entity_id)
        except ErpQueryError as exc:
            v = exc.verdict
            return [Unresolved(str(r[0]["external_id"]), v.reason, v.owner,
                               (f"the NetSuite lookups failed: {v.message}",), v.code or "LOOKUP",
                               v.transient) for r in journal_records(lines)]  # fmt: skip

    def post_journals(self, entity_id: str, lines) -> list[PostOutcome]:
        """Build and post the journals of ``lines``; one outcome per journal, in external-id
        order (an unresolved one rejected without a request)."""
        bodies = self.journal_bodies(entity_id, lines)
        sent = iter(self.post_many([b for b in bodies if isinstance(b, dict)]))
        return [next(sent) if isinstance(b, dict) else unresolved_outcome(b) for b in bodies]

    # SuiteQL (read-only) ----------------------------------------------------------------------
    def suiteql(self, q: str, page_size: int = 1000) -> list[dict]:
        """Every row of a SuiteQL query, page by page (``limit``/``offset`` until ``hasMore``
        is false); transient failures are retried like posts, a refusal raises
        :class:`ErpQueryError`."""
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
        body = dumps({"q": q})
        for attempt in range(1, self.max_retries + 2):
            resp, verdict, hint, _ = self._request("POST", url, data=body,
                                                   headers={"Prefer": "transient"})  # fmt: skip
            if verdict is None:
                return loads(resp.content)
            if not verdict.transient:
                raise ErpQueryError(f"SuiteQL query refused: {verdict.message}", verdict)
            if attempt > self.max_retries:
                break
            self._sleep(self.backoff_delay(attempt, hint))
        raise ErpQueryError(f"SuiteQL query failed after {attempt} attempts: {verdict.message}",
                            verdict)  # fmt: skip

    def read_journals(self, entity_id: str, subsidiary: str, accounts: dict[str, str],
                      functional_currency: str, through=None):  # fmt: skip
        """The entity's journals and lines as the ERP holds them, in the shape of
        :meth:`SqlLedger.journals` / :meth:`SqlLedger.lines` (:mod:`sync_core.erp.gl_read`):
        the subsidiary's journal lines on the chart's accounts, posted through ``through``."""
        from sync_core.erp.gl_read import read_gl

        return read_gl(self, entity_id, subsidiary, accounts, functional_currency, through)


def _internal_id(resp: requests.Response) -> str | None:
    """Internal id from ``Location: .../journalEntry/{id}`` (204) or a JSON ``id`` (200)."""
    location = resp.headers.get("Location")
    if location:
        return location.rstrip("/").rsplit("/", 1)[-1]
    try:
        return str(resp.json()["id"])
    except (ValueError, KeyError, TypeError):
        return None
