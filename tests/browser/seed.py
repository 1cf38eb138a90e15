"""The browser tests' demo deployment, seeded in its own process (``python -m tests.browser.seed``).

Run with ``DAGSTER_HOME``, ``SYNC_WAREHOUSE_URL`` and ``SYNC_SOURCE_*`` pointing into a
temporary folder (``tests/browser/conftest.py``): the demo's main job on a small platform
(``sync_assets.demo_run``: two legal entities, three months), then the unpartitioned assets
the demo does not run (the posting exception queue), all in process on that instance. Prints
one JSON line of facts the UI must show.
"""

import json
import sys

import pandas as pd

ENTITIES, MONTHS = 2, 3  # US01 and UK01, 2025-01..03: January of both has no open exception


def main() -> int:
    from sync_assets import demo_run, runner
    from sync_assets.definitions import ALL_ASSETS, build_resources

    code = demo_run.main(
        ["--entities", str(ENTITIES), "--months", str(MONTHS), "--no-late-changes"]
    )
    if code:
        return code
    resources = build_resources()
    extra = sorted(  # unpartitioned assets besides the reference data the demo runs first
        k.to_user_string()
        for a in ALL_ASSETS
        for k in a.keys
        if a.partitions_def is None and k.to_user_string() != "legal_entities"
    )
    if extra:
        runner.materialize(runner.instance(), resources, extra)
    erp = resources["erp"].process_config_and_initialize()
    wh = resources["warehouse"].process_config_and_initialize().get()
    queue = erp.queue().all()
    open_rows = queue[queue["status"] == "open"]
    entities = sorted(wh.read("legal_entities")["entity_id"])
    periods = demo_run.periods(2025, MONTHS)
    held = {(str(r.entity_id), f"{pd.Timestamp(r.period):%Y-%m}") for r in open_rows.itertuples()}
    facts = {
        "entities": entities,
        "periods": periods,
        # months a close may take: no open posting exception (sync_core/period_close_flow.py)
        "closable": [[e, p[:7]] for e in entities for p in periods if (e, p[:7]) not in held],
        "open_exceptions": len(open_rows),
        "open_reasons": sorted(open_rows["reason_code"].astype(str).unique()),
        "open_journals": sorted(open_rows["journal_key"].astype(str).unique()),
        "extra_assets": extra,
    }
    print("SEED " + json.dumps(facts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
