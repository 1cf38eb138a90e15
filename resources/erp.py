"""The ERP target resource: the SQL ledger (default) or NetSuite REST web services."""

import hashlib
import threading

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sync_core.erp.approvals import ProposalApprovals
from sync_core.erp.auth import (
    SCHEMES,
    TOKEN_PATH,
    BearerToken,
    OAuth2ClientCredentials,
    TokenBasedAuth,
    netsuite_base_url,
)
from sync_core.erp.config import ErpConfig, load_erp_config
from sync_core.erp.gl_read import ledger_journals, ledger_movements, ledger_slice
from sync_core.erp.ledger import SqlLedger
from sync_core.erp.periods import closed_periods
from sync_core.erp.queue import ExceptionQueue
from sync_core.erp.rest import RestErpClient
from sync_core.reconcile.balances import movements
from sync_core.warehouse.store import _engine

TARGETS = ("sql_ledger", "rest")
# one OAuth 2.0 auth (and its cached access token) per integration and key, shared by the
# clients of every run in this process: a run does not fetch a token of its own
_OAUTH2: dict[tuple, OAuth2ClientCredentials] = {}
_OAUTH2_LOCK = threading.Lock()


def _secret(**kw):
    """A resource field that never shows in a repr (set it from a ``dg.EnvVar``)."""
    return Field(default=None, repr=False, **kw)


def _pem(value: str) -> str:
    """A PEM from an environment variable: ``\\n`` escapes (one-line secret stores) become
    newlines."""
    return value.replace("\\n", "\n").strip() + "\n"


class ErpResource(dg.ConfigurableResource):
    """Where journals go, and the posting log + exception queue beside them.

    ``target="sql_ledger"`` posts to ``ledger_journals`` in ``ledger_url``;
    ``target="rest"`` posts to NetSuite REST web services at ``rest_base_url`` (default:
    the base of ``netsuite_account``) and keeps the posting log and exception queue in
    ``ledger_url``. ``rest_auth`` picks the scheme (``sync_core.erp.auth``): ``oauth2``
    (client credentials: ``oauth_client_id``, ``oauth_certificate_id``,
    ``oauth_private_key``), ``tba`` (``netsuite_account``, ``tba_consumer_key`` /
    ``tba_consumer_secret``, ``tba_token_id`` / ``tba_token_secret``) or ``bearer``
    (``rest_token``). Secrets come from ``dg.EnvVar`` and never show in a repr or an error.
    """

    target: str = "sql_ledger"  # sql_ledger | rest
    ledger_url: str
    rest_base_url: str | None = None
    rest_auth: str = "bearer"  # oauth2 | tba | bearer
    rest_token: str | None = _secret(description="static bearer token (SYNC_ERP_TOKEN)")
    netsuite_account: str | None = None  # e.g. 1234567 or 1234567_SB1
    oauth_client_id: str | None = None
    oauth_certificate_id: str | None = None
    oauth_private_key: str | None = _secret(description="PEM of the certificate's key")
    tba_consumer_key: str | None = _secret()
    tba_consumer_secret: str | None = _secret()
    tba_token_id: str | None = _secret()
    tba_token_secret: str | None = _secret()
    rest_timeout_s: float = 30.0
    max_workers: int = 5
    batch_size: int = 500
    config_path: str | None = None

    def engine(self) -> sa.Engine:
        return _engine(self.ledger_url)

    def ledger(self) -> SqlLedger:
        return SqlLedger(self.engine())

    def queue(self) -> ExceptionQueue:
        return ExceptionQueue(self.engine())

    def approvals(self) -> ProposalApprovals:
        return ProposalApprovals(self.engine())

    def config(self) -> ErpConfig:
        return load_erp_config(self.config_path)

    def closed_periods(self, entity_id: str):
        return closed_periods(self.engine(), entity_id)

    def posting_log(self, entity_id: str):
        """(journals, lines) of the entity as this platform posted them (the ledger tables)."""
        return ledger_journals(self.engine(), entity_id)

    def gl_movements(self, entity_id: str, subsidiary: str, functional_currency: str,
                     through=None):  # fmt: skip
        """The entity's GL summed per posting month, account and currency, read back from the
        target (``sync_core.reconcile.balances.movements``): summed in the SQL ledger, or
        from NetSuite's journal lines through ``through`` read by SuiteQL
        (``sync_core.erp.gl_read.read_gl``)."""
        if self.target != "rest":
            return ledger_movements(self.engine(), entity_id, through)
        return movements(*self._read_gl(entity_id, subsidiary, functional_currency, through))

    def posting_slice(self, entity_id: str, documents):
        """The posting log's journals of ``documents`` and the moved journals
        (``sync_core.erp.gl_read.ledger_slice``)."""
        return ledger_slice(self.engine(), entity_id, documents)

    def read_gl(self, entity_id: str, subsidiary: str, functional_currency: str):
        """(journals, lines) of the entity read back from the target: the SQL ledger by query,
        NetSuite through SuiteQL (``RestErpClient.read_journals``)."""
        return self._read_gl(entity_id, subsidiary, functional_currency)

    def _read_gl(self, entity_id: str, subsidiary: str, functional_currency: str, through=None):
        rest = self.rest_client()
        if rest is None:
            return self.posting_log(entity_id)
        with rest:
            accounts = self.config().accounts(entity_id)
            return rest.read_journals(entity_id, subsidiary, accounts, functional_currency,
                                      through)  # fmt: skip

    def rest_base(self) -> str:
        if self.rest_base_url:
            return self.rest_base_url.rstrip("/")
        if self.netsuite_account:
            return netsuite_base_url(self.netsuite_account)
        raise dg.Failure("ERP target 'rest' needs SYNC_ERP_URL (the REST base URL, "
                         ".../services/rest) or SYNC_NETSUITE_ACCOUNT")  # fmt: skip

    def rest_auth_scheme(self):
        """The auth of ``rest_auth`` (``sync_core.erp.auth``); a missing setting is named by
        its environment variable, never shown."""
        scheme = (self.rest_auth or "bearer").lower()
        if scheme not in SCHEMES:
            raise dg.Failure(f"SYNC_ERP_AUTH {scheme!r} is not one of {SCHEMES}")
        needs = {
            "oauth2": {"SYNC_ERP_CLIENT_ID": self.oauth_client_id,
                       "SYNC_ERP_CERTIFICATE_ID": self.oauth_certificate_id,
                       "SYNC_ERP_PRIVATE_KEY": self.oauth_private_key},
            "tba": {"SYNC_NETSUITE_ACCOUNT": self.netsuite_account,
                    "SYNC_ERP_CONSUMER_KEY": self.tba_consumer_key,
                    "SYNC_ERP_CONSUMER_SECRET": self.tba_consumer_secret,
                    "SYNC_ERP_TOKEN_ID": self.tba_token_id,
                    "SYNC_ERP_TOKEN_SECRET": self.tba_token_secret},
            "bearer": {},
        }[scheme]  # fmt: skip
        if missing := [name for name, value in needs.items() if not value]:
            raise dg.Failure(f"SYNC_ERP_AUTH={scheme} needs {', '.join(missing)}")
        if scheme == "tba":
            return TokenBasedAuth(self.netsuite_account, self.tba_consumer_key,
                                  self.tba_consumer_secret, self.tba_token_id,
                                  self.tba_token_secret)  # fmt: skip
        if scheme == "bearer":
            return BearerToken(self.rest_token) if self.rest_token else None
        token_url = f"{self.rest_base()}{TOKEN_PATH}"
        key = _pem(self.oauth_private_key)
        cache_key = (token_url, self.oauth_client_id, self.oauth_certificate_id,
                     hashlib.sha256(key.encode()).hexdigest())  # fmt: skip
        with _OAUTH2_LOCK:
            if cache_key not in _OAUTH2:
                _OAUTH2[cache_key] = OAuth2ClientCredentials(
                    token_url, self.oauth_client_id, self.oauth_certificate_id, key,
                    timeout_s=self.rest_timeout_s)  # fmt: skip
            return _OAUTH2[cache_key]

    def rest_client(self) -> RestErpClient | None:
        if self.target not in TARGETS:
            raise dg.Failure(f"unknown ERP target {self.target!r}; expected one of {TARGETS}")
        if self.target != "rest":
            return None
        return RestErpClient(
            self.rest_base(),
            auth=self.rest_auth_scheme(),
            timeout_s=self.rest_timeout_s,
            max_workers=self.max_workers,
            config=self.config(),
        )
