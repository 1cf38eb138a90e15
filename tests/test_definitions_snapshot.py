"""A snapshot of the code location's structure, so that structural changes are deliberate.

Regenerate after an intended change with ``UPDATE_SNAPSHOTS=1 make test``.
"""

import json
import os
from pathlib import Path

import dagster as dg

from sync_assets.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def describe(d: dg.Definitions) -> dict:
    graph = d.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": None
            if pdef is None
            else {
                "type": type(pdef).__name__,
                "dimensions": [
                    {"name": dim.name, "type": type(dim.partitions_def).__name__}
                    for dim in getattr(pdef, "partitions_defs", [])
                ],
            },
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in d.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": {
            s.name: {
                # run-status sensors (alerts) watch runs and target no job
                "job": s.job_name if s.has_jobs else None,
                "interval_s": s.minimum_interval_seconds,
            }
            for s in d.sensors or []
        },
        "schedules": {
            s.name: {"job": s.job_name, "cron": s.cron_schedule} for s in d.schedules or []
        },
        "resources": sorted((d.resources or {}).keys()),
    }


def test_definitions_match_snapshot():
    current = describe(defs)
    if os.getenv("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1 and review it"
    assert current == json.loads(SNAPSHOT.read_text())


def test_definitions_load_and_resolve():
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("billing_sync")
    assert job.partitions_def is not None
