"""The ``/sandbox/*`` test hooks (no authentication, not NetSuite's):

- ``GET /sandbox/journals``: every journal as stored (``{"count", "items"}``, the shape of
  ``ErpSandbox.journals()``, amounts as JSON numbers);
- ``GET /sandbox/stats``, ``GET /sandbox/requests`` (the log of record and SuiteQL requests);
- ``POST /sandbox/reset`` (journals, counters, log; the master data stays);
- ``POST /sandbox/configure`` (JSON body of :class:`~sandboxes.erp_server.config.FaultConfig`
  fields; answers the config);
- ``POST /sandbox/master_data`` (JSON body of ``MasterData.add``: ``customers``, ``accounts``,
  ``periods``, ...; answers the internal ids by kind), ``GET /sandbox/master_data`` (every
  master record by table).
"""

from __future__ import annotations

import json

from sandboxes.erp_server.records import render
from sandboxes.erp_server.wire import Response, json_response, one


def journals(state) -> list[dict]:
    return [render(head, lines, state.master) for head, lines in state.store.all()]


def sandbox(state, method: str, path: str, body: bytes) -> Response:
    if method == "GET" and path == "/sandbox/journals":
        items = journals(state)
        return json_response(200, {"count": len(items), "items": items})
    if method == "GET" and path == "/sandbox/stats":
        return json_response(200, state.stats())
    if method == "GET" and path == "/sandbox/requests":
        return json_response(200, state.requests())
    if method == "POST" and path == "/sandbox/reset":
        state.reset()
        return 204, {}, None
    if method == "GET" and path == "/sandbox/master_data":
        return json_response(200, state.master.snapshot()[1])
    if method == "POST" and path in ("/sandbox/configure", "/sandbox/master_data"):
        try:
            changes = json.loads(body or b"{}")
            if path == "/sandbox/configure":
                return json_response(200, state.configure(**changes).public())
            return json_response(200, state.master.add(changes))
        except (ValueError, TypeError, KeyError) as exc:
            return one(400, "INVALID_CONTENT", f"{type(exc).__name__}: {exc}")
    return one(404, "NONEXISTENT_ID", f"No sandbox resource {method} {path}.")
