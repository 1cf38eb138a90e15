"""``python -m sandboxes.erp_server``: serve the sandbox ERP until SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from sandboxes._http import check_host
from sandboxes.erp_server import __doc__ as PACKAGE_DOC
from sandboxes.erp_server.config import FaultConfig
from sandboxes.erp_server.server import ErpState, _Server


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandboxes.erp_server", description=PACKAGE_DOC.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address only")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--db", default=":memory:", help="SQLite file (default in memory)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--max-concurrency", type=int, default=None)
    p.add_argument("--error-rate-5xx", type=float, default=0.0)
    p.add_argument("--error-rate-429", type=float, default=0.0)
    p.add_argument("--timeout-rate", type=float, default=0.0)
    p.add_argument("--timeout-sleep-s", type=float, default=1.0)
    p.add_argument("--timeout-writes", action="store_true", help="write before a timeout")
    p.add_argument("--commit-then-fail-rate", type=float, default=0.0)
    p.add_argument("--retry-after-s", type=float, default=0.05)
    p.add_argument("--closed-period", action="append", default=[], metavar="SUB:YYYY-MM")
    p.add_argument("--locked-period", action="append", default=[], metavar="SUB:YYYY-MM")
    p.add_argument("--accounts", default=None, help="comma-separated account numbers")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    faults = {
        "latency_ms": a.latency_ms,
        "max_concurrency": a.max_concurrency,
        "error_rate_5xx": a.error_rate_5xx,
        "error_rate_429": a.error_rate_429,
        "timeout_rate": a.timeout_rate,
        "timeout_sleep_s": a.timeout_sleep_s,
        "timeout_writes": a.timeout_writes,
        "commit_then_fail_rate": a.commit_then_fail_rate,
        "retry_after_s": a.retry_after_s,
        "closed_periods": a.closed_period,
        "locked_periods": a.locked_period,
        "seed": a.seed,
        # a token on the command line would show in `ps`: read it from the environment
        "token": os.environ.get("ERP_SANDBOX_TOKEN") or None,
    }
    if a.accounts:
        faults["accounts"] = [s.strip() for s in a.accounts.split(",") if s.strip()]
    state = ErpState(a.db, FaultConfig(**faults))
    server = _Server((check_host(a.host), a.port), state, a.verbose)
    host, port = server.server_address[:2]

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"ERP sandbox listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.close_connections()
        state.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
