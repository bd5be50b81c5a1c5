"""compute_status: phase, reason, exit code and times from a Job and its pods."""

import datetime as dt
from typing import Any

import pytest

from jobline.core.status import Outcome, compute_status, conditions_for
from jobline.models import Phase
from tests.unit.builders import job, pod, run

NOW = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
RUNNING = {"running": {"startedAt": "2026-01-01T00:00:01Z"}}


def terminated(code: int, reason: str = "Error", message: str = "") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "message": message,
            "startedAt": "2026-01-01T00:00:01Z",
            "finishedAt": "2026-01-01T00:00:11Z",
        }
    }


def failed(reason: str) -> list[dict[str, Any]]:
    return [{"type": "Failed", "status": "True", "reason": reason}]


COMPLETE = [{"type": "Complete", "status": "True"}]


def status_of(the_job: dict[str, Any], pods: list[dict[str, Any]], **kw: Any) -> Any:
    return compute_status(
        kw.pop("the_run", run()), the_job, pods, NOW, kw.pop("pending", 600), None, 1, **kw
    )


@pytest.mark.parametrize(
    ("the_job", "pods", "phase", "reason", "exit_code"),
    [
        (job(), [], Phase.QUEUED, "Queued", None),
        (job(), [pod("p1", "Pending")], Phase.QUEUED, "Queued", None),
        (job(), [pod("p1", "Running", state=RUNNING)], Phase.RUNNING, "Running", None),
        (
            job(COMPLETE),
            [pod("p1", "Succeeded", state=terminated(0, "Completed"))],
            Phase.COMPLETE,
            "Completed",
            0,
        ),
        (
            job(),
            [pod("p1", "Succeeded", state=terminated(0, "Completed"))],
            Phase.COMPLETE,
            "Completed",
            0,
        ),
        (
            job(failed("BackoffLimitExceeded")),
            [pod("p1", "Failed", state=terminated(3))],
            Phase.ERROR,
            "Failed",
            3,
        ),
        (
            job(failed("BackoffLimitExceeded")),
            [
                pod("p1", "Failed", "2026-01-01T00:00:00Z", terminated(3)),
                pod("p2", "Failed", "2026-01-01T00:00:20Z", terminated(4)),
            ],
            Phase.ERROR,
            "BackoffLimitExceeded",
            4,
        ),
        (job(), [pod("p1", "Failed", state=terminated(3))], Phase.RUNNING, "Running", 3),
        (
            job(failed("BackoffLimitExceeded")),
            [pod("p1", "Failed", state=terminated(137, "OOMKilled"))],
            Phase.ERROR,
            "OOMKilled",
            137,
        ),
        (
            job(failed("DeadlineExceeded"), activeDeadlineSeconds=5),
            [pod("p1", "Failed", state=RUNNING)],
            Phase.STOPPED,
            "DeadlineExceeded",
            None,
        ),
    ],
)
def test_phase_mapping(
    the_job: dict[str, Any],
    pods: list[dict[str, Any]],
    phase: Phase,
    reason: str,
    exit_code: int | None,
) -> None:
    status = status_of(the_job, pods)
    assert (status.phase, status.reason, status.exit_code) == (phase, reason, exit_code)
    assert status.message


def test_times_attempts_and_outputs() -> None:
    message = '{"outputs": [{"name": "orders", "records": 1234}]}'
    status = status_of(
        job(COMPLETE), [pod("p1", "Succeeded", state=terminated(0, "Completed", message))]
    )
    assert status.start_time == dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert status.end_time == dt.datetime(2026, 1, 1, 0, 0, 11, tzinfo=dt.UTC)
    assert status.duration_seconds == 10
    assert status.attempts == 1
    assert [(o.name, o.records) for o in status.outputs] == [("orders", 1234)]
    assert (status.job_name, status.pod_name) == ("sales-1", "p1")


def test_plain_text_termination_message_is_no_output() -> None:
    status = status_of(job(COMPLETE), [pod("p1", "Succeeded", state=terminated(0, "C", "done"))])
    assert status.outputs == []


def test_image_pull_error_waits_then_fails_past_the_pending_deadline() -> None:
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    young = pod("p1", "Pending", "2026-01-01T00:04:50Z", waiting)
    old = pod("p1", "Pending", "2026-01-01T00:00:00Z", waiting)
    assert status_of(job(), [young], pending=60).phase == Phase.QUEUED
    status = status_of(job(), [old], pending=60)
    assert (status.phase, status.reason) == (Phase.ERROR, "ImagePullFailed")
    assert "meltano:3" in status.message


def test_unschedulable_and_plain_pending_deadline() -> None:
    unschedulable = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    stuck = pod("p1", "Pending", conditions=unschedulable)
    assert status_of(job(), [stuck], pending=60).reason == "Unschedulable"
    assert status_of(job(), [pod("p1", "Pending")], pending=60).reason == (
        "PendingDeadlineExceeded"
    )


def test_pod_deleted_by_someone_else() -> None:
    status = status_of(job(failed("BackoffLimitExceeded")), [], pod_deleted=True)
    assert (status.phase, status.reason) == (Phase.ERROR, "PodDeleted")


def test_stop_requested_while_running_is_stopping() -> None:
    stopping = run(stopped=True)
    status = status_of(job(), [pod("p1", "Running", state=RUNNING)], the_run=stopping)
    assert status.phase == Phase.STOPPING


def test_conditions_follow_the_phase_and_keep_transition_times() -> None:
    earlier = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    running = conditions_for([], Outcome(Phase.RUNNING, "Running", "m"), earlier)
    assert {c.type: c.status for c in running} == {
        "Running": "True",
        "Complete": "False",
        "Failed": "False",
        "Stopped": "False",
        "Reconciling": "True",
        "Stalled": "False",
    }
    done = conditions_for(running, Outcome(Phase.COMPLETE, "Completed", "m"), NOW)
    by_type = {c.type: c for c in done}
    assert by_type["Complete"].status == "True"
    assert by_type["Complete"].last_transition_time == NOW
    assert by_type["Failed"].last_transition_time == earlier  # unchanged: still False
    assert (by_type["Reconciling"].status, by_type["Stalled"].status) == ("False", "False")
    failed = conditions_for(done, Outcome(Phase.ERROR, "Failed", "m"), NOW)
    assert {c.type: c.status for c in failed}["Stalled"] == "True"
    assert (by_type["Reconciling"].status, by_type["Stalled"].status) == ("False", "False")
    failed = conditions_for(done, Outcome(Phase.ERROR, "Failed", "m"), NOW)
    assert {c.type: c.status for c in failed}["Stalled"] == "True"
