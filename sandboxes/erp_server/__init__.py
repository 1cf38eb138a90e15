"""A sandbox ERP that behaves as NetSuite's SuiteTalk REST web services document it.

The contract is ``docs/netsuite-rest.md``; this package enforces it on the standard library's
HTTP server, SQLite, PyJWT and oauthlib. Served under ``/services/rest``:

- ``PUT /record/v1/journalEntry/eid:{externalId}[?replace=line]`` (upsert), ``POST
  /record/v1/journalEntry`` (create), ``PATCH .../{id | eid:X}`` (update), ``GET .../{id |
  eid:X}[?expandSubResources=true]``, ``GET /record/v1/journalEntry?limit=&offset=``
  (:mod:`~sandboxes.erp_server.records`); an update **appends** its lines unless
  ``?replace=line``, the duplicate trap;
- ``POST /query/v1/suiteql`` (``Prefer: transient``), SuiteQL over NetSuite-named tables of
  the master data and the journals (:mod:`~sandboxes.erp_server.query`);
- ``POST /auth/oauth2/v1/token``, OAuth 2.0 client credentials; every other request is
  authenticated by its bearer token or an OAuth 1.0 TBA signature
  (:mod:`~sandboxes.erp_server.auth`).

A body is validated as NetSuite does (:mod:`~sandboxes.erp_server.validate`): amounts are JSON
numbers in currency units within the currency's decimals, references ``{"id": ...}`` to
existing internal ids of the master data (:mod:`~sandboxes.erp_server.master`: accounts of
``config/erp.yaml``, the demo's subsidiaries and currencies, periods 2023-2028, customers
given or read from a file drop), the posting period open, debits equal to credits; errors are
NetSuite's body with ``o:errorCode`` and ``o:errorPath``. The fault harness
(:mod:`~sandboxes.erp_server.server`) adds latency, a concurrency limit (429
``CONCURRENCY_LIMIT_EXCEEDED``), injected 429 / 5xx / timeouts and commit-then-fail; test
hooks live under ``/sandbox/*`` (:mod:`~sandboxes.erp_server.hooks`).

Run: ``python -m sandboxes.erp_server --port 8700 --db erp.sqlite --latency-ms 50``
(credentials from the environment, see ``__main__``). In tests: ``with ErpSandbox(path) as
erp: ... erp.url, erp.credentials, erp.journals(), erp.stats(), erp.configure(...)``.
"""

from sandboxes.erp_server.auth import SandboxAuth
from sandboxes.erp_server.config import FaultConfig
from sandboxes.erp_server.credentials import ClientCredentials, test_credentials
from sandboxes.erp_server.master import MasterData, chart_accounts
from sandboxes.erp_server.sandbox import ErpSandbox
from sandboxes.erp_server.server import ErpState

# every account number of config/erp.yaml: the sandbox's default chart
DEFAULT_ACCOUNTS: frozenset[str] = frozenset(chart_accounts())

__all__ = ["DEFAULT_ACCOUNTS", "ClientCredentials", "ErpSandbox", "ErpState", "FaultConfig",
           "MasterData", "SandboxAuth", "test_credentials"]  # fmt: skip
