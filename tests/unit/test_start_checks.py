"""What `jobline start` and the Jobs API check before creating a run: the Pipeline's
variables, and under Forbid its slots, counted as the operator's admission counts them."""

from __future__ import annotations

from typing import Any

import pytest

from jobline.client.runs import UserError, check_slots, check_variables

Obj = dict[str, Any]
FORBID = {
    "metadata": {"name": "nightly"},
    "spec": {"concurrencyPolicy": "Forbid", "maxConcurrentRuns": 1},
}


def run(name: str, phase: str | None = None, reason: str | None = None) -> Obj:
    status = {k: v for k, v in (("phase", phase), ("reason", reason), ("jobName", name)) if v}
    return {
        "metadata": {
            "name": name,
            "uid": f"{name}-uid",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"pipelineRef": {"name": "nightly"}},
        "status": status,
    }


def job(owner: str, finished: bool = False, owner_kind: str = "PipelineJob") -> Obj:
    conditions = [{"type": "Complete", "status": "True"}] if finished else []
    return {
        "metadata": {
            "name": owner,
            "uid": f"{owner}-job",
            "ownerReferences": [
                {
                    "apiVersion": "jobline.dev/v1alpha1",
                    "kind": owner_kind,
                    "name": owner,
                    "uid": f"{owner}-uid",
                    "controller": True,
                }
            ],
        },
        "status": {"conditions": conditions},
    }


def pod(owner: str, phase: str) -> Obj:
    return {
        "metadata": {
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": owner,
                    "uid": f"{owner}-job",
                    "controller": True,
                }
            ]
        },
        "spec": {"containers": [{"name": "main"}]},
        "status": {"phase": phase},
    }


def test_a_running_run_takes_the_slot() -> None:
    with pytest.raises(UserError, match="running now: a") as found:
        check_slots(FORBID, [run("a", "RUNNING", "Running")], [job("a")], [pod("a", "Running")])
    assert found.value.status == 409


def test_a_run_the_operator_ended_holds_the_slot_until_its_pod_and_job_are_gone() -> None:
    ending = [run("a", "STOPPED", "Stopped")]
    for pods in ([pod("a", "Running")], [pod("a", "Failed")], []):
        with pytest.raises(UserError):
            check_slots(FORBID, ending, [job("a")], pods)
    check_slots(FORBID, ending, [], [pod("a", "Failed")])
    check_slots(FORBID, ending, [job("a", finished=True)], [pod("a", "Failed")])


def test_a_job_whose_run_is_gone_holds_the_slot_until_it_finished() -> None:
    with pytest.raises(UserError, match="runs being deleted"):
        check_slots(FORBID, [], [job("gone")], [])
    check_slots(FORBID, [], [job("gone", finished=True)], [])


def test_a_foreign_job_with_the_pipelines_label_takes_no_slot() -> None:
    # As the operator counts: a Job no PipelineJob controls is not one of its runs.
    check_slots(FORBID, [], [job("cron", owner_kind="CronJob")], [])
    with pytest.raises(UserError, match="running now: a"):
        check_slots(
            FORBID, [run("a", "RUNNING", "Running")], [job("a"), job("x", owner_kind="CronJob")], []
        )


def test_without_access_to_jobs_a_run_with_a_job_that_has_not_ended_holds_the_slot() -> None:
    with pytest.raises(UserError, match="running now: a"):
        check_slots(FORBID, [run("a", "RUNNING", "Running"), run("b", "COMPLETE")], None, [])
    waiting = run("c", "QUEUED", "WaitingForRun")
    del waiting["status"]["jobName"]
    check_slots(FORBID, [waiting, run("b", "COMPLETE")], None, [])


def test_ended_runs_and_other_policies_take_nothing() -> None:
    check_slots(FORBID, [run("a", "COMPLETE", "Completed")], [job("a", True)], [])
    queue = {**FORBID, "spec": {"concurrencyPolicy": "Queue", "maxConcurrentRuns": 1}}
    check_slots(queue, [run("a", "RUNNING", "Running")], [job("a")], [pod("a", "Running")])


def test_variables_the_pipeline_does_not_declare_are_refused() -> None:
    pipeline = {"metadata": {"name": "nightly"}, "spec": {"variables": [{"name": "DAY"}]}}
    with pytest.raises(UserError, match="invalid variables") as found:
        check_variables(pipeline, {"NIGHT": "1"})
    assert found.value.status == 422
