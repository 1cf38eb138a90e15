"""``python -m sandboxes.billing_api``: serve the sandbox billing API until SIGTERM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandboxes._http import check_host, serve_until_stopped
from sandboxes.billing_api import __doc__ as PACKAGE_DOC
from sandboxes.billing_api.server import BillingState, _prepare_folder, _Server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sandboxes.billing_api", description=PACKAGE_DOC.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address only")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--data-dir", type=Path, default=None, help="canonical file-drop folder")
    p.add_argument("--subscriptions", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--bad-rows", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    a = p.parse_args(argv)
    folder, tmp = _prepare_folder(a.data_dir, a.subscriptions, a.seed, a.year, a.bad_rows)
    state = BillingState(folder)
    server = _Server((check_host(a.host), a.port), state, a.verbose)
    host, port = server.server_address[:2]
    return serve_until_stopped(
        server,
        f"Billing sandbox listening on http://{host}:{port}",
        tmp.cleanup if tmp is not None else lambda: None,
    )


if __name__ == "__main__":
    sys.exit(main())
