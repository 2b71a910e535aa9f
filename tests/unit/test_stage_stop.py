"""A SIGTERM that some library swallowed still stops the job at the next stage boundary."""

import pytest

from synthdiv import runtime
from synthdiv.stage import run_stage


def test_a_stop_request_ends_the_job_before_the_next_stage_starts():
    class NeverRuns:
        name = "never"

        def __getattr__(self, item):
            raise AssertionError("run_stage touched the stage after a stop request")

    runtime.request_stop()
    try:
        with pytest.raises(runtime.StageKilled, match="signal 15"):
            run_stage(NeverRuns(), reuse=True)
    finally:
        runtime._STOP_REQUESTED.clear()
    runtime.raise_if_stopped()  # cleared: no stop pending
