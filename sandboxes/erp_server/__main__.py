"""``python -m sandboxes.erp_server``: serve the sandbox ERP until SIGTERM.

Credentials come from the environment (a secret on the command line would show in ``ps``):
``ERP_SANDBOX_TBA="consumer_key,consumer_secret,token_id,token_secret"`` (several separated
by ``;``) and ``ERP_SANDBOX_OAUTH2="client_id,certificate_id,/path/to/public_key.pem"``
(several separated by ``;``); ``--account`` names the account (the TBA realm). Without
either the server refuses to start unless ``--no-auth`` (a sandbox-only convenience).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sandboxes._http import check_host, serve_until_stopped
from sandboxes.erp_server import __doc__ as PACKAGE_DOC
from sandboxes.erp_server.auth import SandboxAuth
from sandboxes.erp_server.config import FaultConfig
from sandboxes.erp_server.master import MasterData
from sandboxes.erp_server.server import ErpState, _Server


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandboxes.erp_server",
                                description=PACKAGE_DOC.splitlines()[0])  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="loopback address only")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--db", default=":memory:", help="SQLite file (default in memory)")
    p.add_argument("--account", default=os.environ.get("ERP_SANDBOX_ACCOUNT", "TSTDRV123"))
    p.add_argument("--no-auth", action="store_true", help="serve without authentication")
    p.add_argument("--filedrop", type=Path, default=None, help="register its customers")
    p.add_argument("--erp-config", type=Path, default=None, help="chart of accounts (erp.yaml)")
    p.add_argument("--accounts", default=None, help="more comma-separated account numbers")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--max-concurrency", type=int, default=None)
    p.add_argument("--error-rate-5xx", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--timeout-rate", type=float, default=0.0)
    p.add_argument("--timeout-sleep-s", type=float, default=1.0)
    p.add_argument("--timeout-writes", action="store_true", help="write before a timeout")
    p.add_argument("--commit-then-fail-rate", type=float, default=0.0)
    p.add_argument("--retry-after-s", type=float, default=0.05)
    p.add_argument("--closed-period", action="append", default=[], metavar="[SUB:]YYYY-MM")
    p.add_argument("--locked-period", action="append", default=[], metavar="[SUB:]YYYY-MM")
    p.add_argument("--date-period-mismatch", default="disallow",
                   choices=("disallow", "warn", "allow"))  # fmt: skip
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return p


def auth_from_env(account: str, env=os.environ) -> SandboxAuth | None:
    """The :class:`SandboxAuth` of ``ERP_SANDBOX_TBA`` / ``ERP_SANDBOX_OAUTH2``, or None."""
    tba, clients = {}, {}
    for entry in filter(None, (env.get("ERP_SANDBOX_TBA") or "").split(";")):
        ck, cs, tid, ts = (s.strip() for s in entry.split(","))
        tba[(ck, tid)] = (cs, ts)
    for entry in filter(None, (env.get("ERP_SANDBOX_OAUTH2") or "").split(";")):
        cid, kid, pem = (s.strip() for s in entry.split(","))
        clients[cid] = (kid, Path(pem).read_text())
    if not tba and not clients:
        return None
    return SandboxAuth(account=account, oauth2_clients=clients, tba=tba)


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    auth = None if a.no_auth else auth_from_env(a.account)
    if auth is None and not a.no_auth:
        print("no credentials: set ERP_SANDBOX_TBA and/or ERP_SANDBOX_OAUTH2, or --no-auth",
              file=sys.stderr)  # fmt: skip
        return 2
    faults = FaultConfig(
        latency_ms=a.latency_ms, max_concurrency=a.max_concurrency,
        error_rate_5xx=a.error_rate_5xx, error_rate_429=a.error_rate_429,
        timeout_rate=a.timeout_rate, timeout_sleep_s=a.timeout_sleep_s,
        timeout_writes=a.timeout_writes, commit_then_fail_rate=a.commit_then_fail_rate,
        retry_after_s=a.retry_after_s, closed_periods=a.closed_period,
        locked_periods=a.locked_period, date_period_mismatch=a.date_period_mismatch,
        seed=a.seed,
    )  # fmt: skip
    master = MasterData.default(a.erp_config)
    if a.accounts:
        master.add({"accounts": [s.strip() for s in a.accounts.split(",") if s.strip()]})
    state = ErpState(a.db, faults, auth, master, a.filedrop)
    server = _Server((check_host(a.host), a.port), state, a.verbose)
    host, port = server.server_address[:2]
    return serve_until_stopped(
        server, f"ERP sandbox listening on http://{host}:{port}/services/rest", state.store.close
    )


if __name__ == "__main__":
    sys.exit(main())
