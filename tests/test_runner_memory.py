"""The runner's in-process runs keep no step output in memory: a ranged run of many months
would otherwise hold every asset's frames of every month until it ends (dg.materialize
captures outputs for its result; sync_assets.runner turns that off, see
``_outputs_not_kept``). If a Dagster upgrade moves the hook, the first test fails."""

import dagster as dg
import pytest
from dagster._core.execution import execute_in_process

from sync_assets import runner


@dg.asset
def frame_of_a_month() -> list[int]:
    return [10025, 5000]


def test_a_run_inside_the_runner_keeps_no_output_and_the_hook_is_restored():
    original = execute_in_process.core_execute_in_process
    with runner._outputs_not_kept():
        result = dg.materialize([frame_of_a_month])
    assert result.success
    with pytest.raises(Exception, match="frame_of_a_month"):
        result.output_for_node("frame_of_a_month")
    assert execute_in_process.core_execute_in_process is original
    # outside it, dg.materialize keeps outputs as documented
    assert dg.materialize([frame_of_a_month]).output_for_node("frame_of_a_month") == [10025, 5000]


def test_the_hook_is_restored_when_the_run_fails():
    original = execute_in_process.core_execute_in_process

    @dg.asset
    def broken() -> int:
        raise ValueError("bad month")

    with pytest.raises(ValueError, match="bad month"), runner._outputs_not_kept():
        dg.materialize([broken])
    assert execute_in_process.core_execute_in_process is original
