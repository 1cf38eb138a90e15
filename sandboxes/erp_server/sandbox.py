"""The Python API: :class:`ErpSandbox`, the sandbox ERP on a background thread."""

from __future__ import annotations

import os

from sandboxes._http import BackgroundSandbox, check_host
from sandboxes.erp_server import hooks
from sandboxes.erp_server.auth import TOKEN_PATH, SandboxAuth
from sandboxes.erp_server.config import FaultConfig
from sandboxes.erp_server.credentials import ClientCredentials, test_credentials
from sandboxes.erp_server.master import MasterData
from sandboxes.erp_server.records import render
from sandboxes.erp_server.server import BASE, ErpState, _Server

GENERATE = object()  # default of ``auth``: fresh test credentials


class ErpSandbox(BackgroundSandbox):
    """The sandbox ERP served from a background thread on a free local port.

    ``with ErpSandbox(tmp_path / "erp.sqlite", latency_ms=5, max_concurrency=2) as erp:``
    then ``erp.url`` (the REST base, ``http://127.0.0.1:PORT/services/rest``: append
    ``/record/v1/...`` or ``/query/v1/suiteql``), ``erp.token_url``, ``erp.credentials``,
    ``erp.journals()``, ``erp.journal(eid)``, ``erp.stats()``, ``erp.requests()``,
    ``erp.configure(error_rate_5xx=0.2)``, ``erp.add_master_data({...})``, ``erp.reset()``.

    - ``auth``: a :class:`~sandboxes.erp_server.auth.SandboxAuth`; by default fresh test
      credentials (``erp.credentials`` holds the client side: OAuth 2.0 client and TBA token);
      ``auth=None`` serves without authentication, a sandbox-only convenience for tests of
      something else (faults, throughput).
    - ``master_data``: records to add to the default seed (``MasterData.add``), or a
      :class:`~sandboxes.erp_server.master.MasterData` to use instead of it;
    - ``filedrop``: a file-drop folder whose legal entities and customers (with their
      ``erp_customer_id``) are registered, re-read when its files change;
    - ``erp_config``: the ERP config whose account numbers seed the chart (``config/erp.yaml``);
    - other keyword arguments are :class:`~sandboxes.erp_server.config.FaultConfig` fields.

    ``journals()`` are the stored journals as GET shows them (``expandSubResources``) without
    links, plus ``version``; amounts are ``Decimal`` in currency units, lines in stored order
    (an appended duplicate shows as doubled lines).
    """

    def __init__(self, db_path: str | os.PathLike = ":memory:", host: str = "127.0.0.1",
                 port: int = 0, verbose: bool = False, auth=GENERATE, master_data=None,
                 filedrop=None, erp_config=None, **faults):  # fmt: skip
        self.credentials: ClientCredentials | None = None
        if auth is GENERATE:
            auth, self.credentials = test_credentials()
        if isinstance(master_data, MasterData):
            master = master_data
        else:
            master = MasterData.default(erp_config)
            if master_data:
                master.add(master_data)
        self.auth: SandboxAuth | None = auth
        self.state = ErpState(db_path, FaultConfig(**faults), auth, master, filedrop)
        self.url = self._serve(_Server((check_host(host), port), self.state, verbose)) + BASE
        self.token_url = self.url + TOKEN_PATH

    @property
    def account(self) -> str | None:
        return None if self.auth is None else self.auth.account

    @property
    def master(self) -> MasterData:
        return self.state.master

    def journals(self) -> list[dict]:
        return hooks.journals(self.state)

    def journal(self, external_id: str) -> dict | None:
        found = self.state.store.find(external_id=external_id)
        return None if found is None else render(*found, self.state.master)

    def add_master_data(self, data: dict) -> dict[str, list[str]]:
        return self.state.master.add(data)

    def stats(self) -> dict:
        return self.state.stats()

    def requests(self) -> list[dict]:
        """Recent record / SuiteQL requests: method, ref, status, fault, auth, start/end."""
        return self.state.requests()

    def configure(self, **faults) -> FaultConfig:
        return self.state.configure(**faults)

    @property
    def config(self) -> FaultConfig:
        return self.state.config

    def reset(self) -> None:
        self.state.reset()

    def _cleanup(self) -> None:
        self.state.store.close()

    def __repr__(self) -> str:
        return f"ErpSandbox({self.url}, {self.auth!r}, {self.state.config!r})"
