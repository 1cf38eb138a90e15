"""A sandbox ERP with NetSuite REST journal-entry semantics, on the standard library only.

Endpoints (JSON; amounts are integer minor units):

- ``PUT /record/v1/journalEntry/eid:{externalId}``: upsert by external id. Creates the journal,
  or replaces the one with that external id (never a duplicate); answers ``204 No Content``
  with ``Location: http://HOST/record/v1/journalEntry/{internalId}``, the internal id staying
  the same across replaces.
- ``GET /record/v1/journalEntry/eid:{externalId}`` (or ``/{internalId}``): 200 with the journal
  (``id``, the lines, ``version`` = how many times it was written) or 404.
- ``POST /query/v1/suiteql`` (or ``/services/rest/query/v1/suiteql``): read-only SuiteQL over
  the journals, the GL read back for reconciliation (:mod:`sandboxes.erp_query`).
- ``GET /sandbox/journals``, ``GET /sandbox/stats``, ``GET /sandbox/requests`` (recent request
  log), ``POST /sandbox/reset``, ``POST /sandbox/configure`` (JSON body of faults).

Errors follow NetSuite's shape: ``{"type", "title", "status", "o:errorDetails": [{"detail",
"o:errorCode"}]}``. Validation (400): ``INVALID_CONTENT`` (malformed body or field),
``INVALID_ID`` (external id other than letters, digits, ``_`` and ``-``, or a body
``externalId`` that differs from the URL), ``MISSING_LINES``, ``INVALID_KEY_OR_REF`` (unknown
account), ``UNBALANCED`` (debits != credits), ``PERIOD_CLOSED`` / ``PERIOD_LOCKED`` for
(subsidiary, period) pairs configured as closed / locked (subsidiary ``*`` = all).

Faults (see :class:`FaultConfig`) apply to record requests: more than ``max_concurrency`` in
flight gets an immediate 429 (``CONCURRENCY_LIMIT_EXCEEDED``) with ``Retry-After`` (seconds,
fractional) and ``Retry-After-Ms``; every ``PUT`` then draws at most one injected fault from a
seeded generator, the rates being disjoint slices of one uniform draw so each holds on its
own: ``error_rate_429`` (immediate 429), ``error_rate_5xx`` (500 or 503 before writing),
``timeout_rate`` (sleep ``timeout_sleep_s`` so the client times out; no write unless
``timeout_writes``) and ``commit_then_fail_rate`` (write, then answer 500: the duplicate trap).
``latency_ms`` is the answer time of a record request (processing included), spent inside
the concurrency slot. A request leaves its slot before its
response is written, so a client with as many workers as the limit never sees a 429.

``/sandbox/stats`` counts responses per status code (``"204"``, ``"400"``, ``"429"``,
``"500"``, ...) plus the faults: ``timeouts``, ``commit_then_fail``, ``429_concurrency``,
``429_injected``, and ``max_in_flight``, ``journals`` (distinct), ``writes``.

Run: ``python -m sandboxes.erp_server --host 127.0.0.1 --port 0 --db erp.sqlite
--latency-ms 50 --max-concurrency 5 --error-rate-5xx 0.2``. In tests: ``with ErpSandbox(path,
max_concurrency=2) as erp: ... erp.url, erp.journals(), erp.stats(), erp.configure(...)``.
"""

from sandboxes.erp_server.config import DEFAULT_ACCOUNTS, FaultConfig
from sandboxes.erp_server.server import ErpSandbox, ErpState

__all__ = ["DEFAULT_ACCOUNTS", "ErpSandbox", "ErpState", "FaultConfig"]
