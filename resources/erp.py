"""The ERP target resource: the SQL ledger (default) or a NetSuite-style REST ERP."""

import dagster as dg
import sqlalchemy as sa

from sync_core.erp.approvals import ProposalApprovals
from sync_core.erp.config import ErpConfig, load_erp_config
from sync_core.erp.gl_read import ledger_journals, ledger_movements, ledger_slice
from sync_core.erp.ledger import SqlLedger
from sync_core.erp.periods import closed_periods
from sync_core.erp.queue import ExceptionQueue
from sync_core.erp.rest import RestErpClient
from sync_core.reconcile.balances import movements
from sync_core.warehouse.store import _engine

TARGETS = ("sql_ledger", "rest")


class ErpResource(dg.ConfigurableResource):
    """Where journals go, and the posting log + exception queue beside them.

    ``target="sql_ledger"`` posts to ``ledger_journals`` in ``ledger_url``;
    ``target="rest"`` PUTs to ``rest_base_url`` with the bearer ``rest_token`` (an EnvVar,
    never shown) and keeps the posting log and exception queue in ``ledger_url``.
    """

    target: str = "sql_ledger"  # sql_ledger | rest
    ledger_url: str
    rest_base_url: str | None = None
    rest_token: str | None = None
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
        from the REST ERP's journals."""
        if self.target != "rest":
            return ledger_movements(self.engine(), entity_id, through)
        return movements(*self.read_gl(entity_id, subsidiary, functional_currency))

    def posting_slice(self, entity_id: str, documents):
        """The posting log's journals of ``documents`` and the moved journals
        (``sync_core.erp.gl_read.ledger_slice``)."""
        return ledger_slice(self.engine(), entity_id, documents)

    def read_gl(self, entity_id: str, subsidiary: str, functional_currency: str):
        """(journals, lines) of the entity read back from the target: the SQL ledger by query,
        a REST ERP through SuiteQL (``RestErpClient.read_journals``)."""
        rest = self.rest_client()
        if rest is None:
            return self.posting_log(entity_id)
        with rest:
            accounts = self.config().accounts(entity_id)
            return rest.read_journals(entity_id, subsidiary, accounts, functional_currency)

    def rest_client(self) -> RestErpClient | None:
        if self.target not in TARGETS:
            raise dg.Failure(f"unknown ERP target {self.target!r}; expected one of {TARGETS}")
        if self.target != "rest":
            return None
        if not self.rest_base_url:
            raise dg.Failure("ERP target 'rest' needs SYNC_ERP_URL (the REST base URL)")
        return RestErpClient(
            self.rest_base_url,
            token=self.rest_token,
            timeout_s=self.rest_timeout_s,
            max_workers=self.max_workers,
        )
