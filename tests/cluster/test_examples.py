"""Every example in examples/ applies and does what it says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.cluster.jobline_fixtures import Jobline, pipeline_status
from tests.conftest import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.usefixtures("sim")


def apply(jl: Jobline, folder: Path) -> None:
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            plural = doc["kind"].lower() + "s"
            jl.custom.create_namespaced_custom_object(
                "jobline.dev", "v1alpha1", jl.namespace, plural, doc
            )


def test_hello(jl: Jobline) -> None:
    apply(jl, EXAMPLES / "hello")
    status = jl.wait_done("hello-1")
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    assert status["variables"] == {"WHO": "data team"}
    assert status["logs"]["lines"] == ["hello from Jobline", "loading 3 tables", "done"]


def test_meltano_elt(jl: Jobline) -> None:
    apply(jl, EXAMPLES / "meltano-elt")
    status = jl.wait_done("sales-elt-backfill")
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    assert status["variables"] == {
        "START_DATE": "2024-06-01",
        "FULL_REFRESH": "true",
        "TARGET_SCHEMA": "raw",
    }
    assert status["outputs"] == [{"name": "orders", "records": 1234}]
    assert jl.main_env("sales-elt-backfill")["TARGET_SCHEMA"] == "raw"


def test_dbt_nightly_is_scheduled(jl: Jobline) -> None:
    apply(jl, EXAMPLES / "dbt-nightly")
    status = wait_for(
        "the schedule to be computed",
        lambda: (s := pipeline_status(jl, "dbt-nightly")).get("nextScheduleTime") and s,
    )
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "True"
    next_run = dt.datetime.fromisoformat(status["nextScheduleTime"].replace("Z", "+00:00"))
    assert next_run.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M") == "02:00"


def test_priority_queue(jl: Jobline) -> None:
    apply(jl, EXAMPLES / "priority-queue")
    statuses = {
        n: jl.wait_done(n, timeout=90) for n in ("load-routine-1", "load-routine-2", "load-urgent")
    }
    assert {s["phase"] for s in statuses.values()} == {"COMPLETE"}
    # The urgent run, queued behind whatever was running, goes before routine-2.
    assert statuses["load-urgent"]["startTime"] <= statuses["load-routine-2"]["startTime"]


def test_resilient_passes_its_pod_failure_policy_to_the_job(jl: Jobline) -> None:
    apply(jl, EXAMPLES / "resilient")
    status = jl.wait_done("orders-elt-1")
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    job = jl.batch.read_namespaced_job(status["jobName"], jl.namespace)
    assert job.spec.pod_replacement_policy == "Failed"
    rules = job.spec.pod_failure_policy.rules
    assert [r.action for r in rules] == ["Ignore", "FailJob"]
    assert rules[0].on_pod_conditions[0].type == "DisruptionTarget"
    assert rules[1].on_exit_codes.values == [42]
