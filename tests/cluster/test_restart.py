"""The operator can be killed at any instant: it finishes every run, with one Job each."""

from __future__ import annotations

import pytest

from tests.cluster.jobline_fixtures import Jobline, Operator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("sim")


def test_sigkill_after_job_creation_and_mid_run(jl: Jobline, operator: Operator) -> None:
    runs = [f"etl-{i}" for i in range(4)]
    jl.pipeline(
        "etl",
        {"sim.jobline.dev/duration": "6s", "sim.jobline.dev/log": "a\nb"},
        concurrencyPolicy="Allow",
    )
    try:
        for run in runs:
            jl.start(run, "etl")
        # Kill it the moment the first Job exists: statuses may not be written yet.
        wait_for("a first Job", jl.jobs, timeout=30, interval=0.02)
        operator.kill()
        operator.start()
        wait_for(
            "every run to be RUNNING",
            lambda: all(jl.status(r).get("phase") == "RUNNING" for r in runs),
        )
        operator.kill()  # mid-run
        operator.start()
        statuses = {r: jl.wait_done(r) for r in runs}
    finally:
        if operator.process is None:
            operator.start()
    assert sorted(j.metadata.name for j in jl.jobs()) == runs
    for run, status in statuses.items():
        assert (status["phase"], status["exitCode"], status["attempts"]) == ("COMPLETE", 0, 1), run
        assert status["logs"]["lines"] == ["a", "b"]
