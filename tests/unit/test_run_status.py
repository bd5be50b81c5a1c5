"""decide_run as a table: the status and action for every case, with a Job or without."""

import datetime as dt
from typing import Any

import pytest

from jobline.core.jobs import build_job
from jobline.core.run_status import (
    Admission,
    Observed,
    Outcome,
    Step,
    Verdict,
    conditions_for,
    decide_run,
)
from jobline.models import LogArchive, LogTail, Phase, PipelineJobStatus, Reason
from tests.unit.builders import job, pipeline, pod, run

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


def failed(reason: str, condition: str = "Failed") -> list[dict[str, Any]]:
    return [{"type": condition, "status": "True", "reason": reason}]


COMPLETE = [{"type": "Complete", "status": "True"}]


def status_of(the_job: dict[str, Any], pods: list[dict[str, Any]], **kw: Any) -> Any:
    the_pipeline = pipeline(pendingDeadlineSeconds=kw.pop("pending", 600))
    seen = Observed(kw.pop("the_run", run()), the_pipeline, the_job, pods, generation=1)
    return decide_run(seen, NOW).status


@pytest.mark.parametrize(
    ("the_job", "pods", "phase", "reason", "exit_code", "says"),
    [
        (job(), [], Phase.QUEUED, "Queued", None, ["Job", "pod"]),
        (job(), [pod("p1", "Pending")], Phase.QUEUED, "Queued", None, ["Job", "pod"]),
        (
            job(),
            [pod("p1", "Running", state=RUNNING)],
            Phase.RUNNING,
            "Running",
            None,
            ["running"],
        ),
        (
            job(COMPLETE),
            [pod("p1", "Succeeded", state=terminated(0, "Completed"))],
            Phase.COMPLETE,
            "Completed",
            0,
            ["completed"],
        ),
        (
            job(),
            [pod("p1", "Succeeded", state=terminated(0, "Completed"))],
            Phase.COMPLETE,
            "Completed",
            0,
            ["completed"],
        ),
        (
            job(failed("BackoffLimitExceeded")),
            [pod("p1", "Failed", state=terminated(3))],
            Phase.ERROR,
            "Failed",
            3,
            ["exit code 3"],
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
            ["2 attempts", "exit code 4"],  # the last attempt's code
        ),
        (
            job(),
            [pod("p1", "Failed", state=terminated(3))],
            Phase.RUNNING,
            "Running",
            3,
            ["attempt 1", "exit code 3", "retrying"],
        ),
        (
            job(failed("BackoffLimitExceeded")),
            [pod("p1", "Failed", state=terminated(137, "OOMKilled"))],
            Phase.ERROR,
            "OOMKilled",
            137,
            ["OOMKilled", "137", "memory limit"],
        ),
        (
            job(failed("DeadlineExceeded"), activeDeadlineSeconds=5),
            [pod("p1", "Failed", state=RUNNING)],
            Phase.STOPPED,
            "DeadlineExceeded",
            None,
            ["activeDeadlineSeconds", "5 s"],
        ),
    ],
)
def test_phase_mapping(
    the_job: dict[str, Any],
    pods: list[dict[str, Any]],
    phase: Phase,
    reason: str,
    exit_code: int | None,
    says: list[str],
) -> None:
    status = status_of(the_job, pods)
    assert (status.phase, status.reason, status.exit_code) == (phase, reason, exit_code)
    for fact in says:  # what the person reading the run needs to know
        assert fact in (status.message or ""), fact
    if exit_code is None:
        assert "exit code" not in (status.message or "")


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


def test_a_failed_run_quotes_a_plain_termination_message_but_not_outputs() -> None:
    outputs = '{"outputs": [{"name": "orders", "records": 3}]}'
    quiet = status_of(
        job(backoffLimit=0), [pod("p1", "Failed", state=terminated(1, "Error", outputs))]
    )
    assert quiet.message == 'the main container "main" failed with exit code 1'
    said = status_of(
        job(backoffLimit=0), [pod("p1", "Failed", state=terminated(1, "Error", "bad\n  key"))]
    )
    assert said.message == 'the main container "main" failed with exit code 1: bad key'


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


def deleted(the_pod: dict[str, Any]) -> dict[str, Any]:
    the_pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:04:00Z"
    return the_pod


def test_a_pod_being_deleted_keeps_the_run_running_until_its_containers_end() -> None:
    going = deleted(pod("p1", "Running", state=RUNNING))
    assert status_of(job(backoffLimit=0), [going]).phase == Phase.RUNNING
    # The Job controller counts a terminating pod as failed at once (a real kubelet takes
    # the grace period to stop it): the run still ends only when its container has.
    assert status_of(job(failed("BackoffLimitExceeded", "FailureTarget")), [going]).phase == (
        Phase.RUNNING
    )


def test_pod_deleted_by_someone_else() -> None:
    # As a kubelet ends it: SIGTERM (143), Failed, deletionTimestamp kept (our finalizer).
    gone = deleted(pod("p1", "Failed", state=terminated(143)))
    for the_job in (job(backoffLimit=0), job(failed("BackoffLimitExceeded"))):
        status = status_of(the_job, [gone])
        assert (status.phase, status.reason, status.exit_code) == (Phase.ERROR, "PodDeleted", 143)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("DeletionByPodGC", "NodeLost"),
        ("DeletionByTaintManager", "NodeLost"),
        ("EvictionByEvictionAPI", "Evicted"),
        ("TerminationByKubelet", "Evicted"),
        ("PreemptionByScheduler", "Preempted"),
    ],
)
def test_a_disrupted_pod_says_why(reason: str, expected: str) -> None:
    target = [{"type": "DisruptionTarget", "status": "True", "reason": reason, "message": "m"}]
    lost = deleted(pod("p1", "Failed", state=RUNNING, conditions=target))
    status = status_of(job(backoffLimit=0), [lost])
    assert (status.phase, status.reason) == (Phase.ERROR, expected)
    assert reason in (status.message or "")


def test_pods_deleted_by_the_job_controller_past_the_deadline_are_a_timeout() -> None:
    # The Job controller deletes them before its Failed condition reaches us.
    the_job = job(backoffLimit=0, activeDeadlineSeconds=60)
    the_job["status"]["startTime"] = "2026-01-01T00:00:00Z"
    status = status_of(the_job, [deleted(pod("p1", "Failed", state=terminated(143)))])
    assert (status.phase, status.reason) == (Phase.STOPPED, "DeadlineExceeded")
    target = job(backoffLimit=0, conditions=[])
    target["status"]["conditions"] = [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}
    ]
    # Its pod has its grace period to end: the run is stopping (and holds its slot) till then.
    status = status_of(target, [pod("p1", "Running", state=RUNNING)])
    assert (status.phase, status.reason) == (Phase.STOPPING, "DeadlineExceeded")


def test_a_complete_job_waits_for_its_pods_exit_code() -> None:
    # Job and pod events come by different watches: the Job's may come first.
    status = status_of(job(COMPLETE), [pod("p1", "Running", state=RUNNING)])
    assert status.phase == Phase.RUNNING
    status = status_of(job(COMPLETE), [])  # the pod is gone: say what is missing
    assert (status.phase, status.exit_code) == (Phase.COMPLETE, None)
    assert "exit code" in (status.message or "")


def test_a_stopped_run_is_stopped_once_its_job_is_going_and_its_pods_ended() -> None:
    stopping = run(stopped=True)
    going = job()
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:04:00Z"
    status = status_of(
        going, [deleted(pod("p1", "Failed", state=terminated(143)))], the_run=stopping
    )
    assert (status.phase, status.exit_code) == (Phase.STOPPED, 143)
    still = status_of(going, [deleted(pod("p1", "Running", state=RUNNING))], the_run=stopping)
    assert still.phase == Phase.STOPPING


def test_stop_requested_while_running_is_stopping() -> None:
    stopping = run(stopped=True)
    status = status_of(job(), [pod("p1", "Running", state=RUNNING)], the_run=stopping)
    assert status.phase == Phase.STOPPING


def test_conditions_follow_the_phase_and_keep_transition_times() -> None:
    earlier = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    running = conditions_for([], Outcome(Phase.RUNNING, Reason.RUNNING, "m"), earlier)
    assert {c.type: c.status for c in running} == {
        "Running": "True",
        "Complete": "False",
        "Failed": "False",
        "Stopped": "False",
        "Reconciling": "True",
        "Stalled": "False",
    }
    done = conditions_for(running, Outcome(Phase.COMPLETE, Reason.COMPLETED, "m"), NOW)
    by_type = {c.type: c for c in done}
    assert by_type["Complete"].status == "True"
    assert by_type["Complete"].last_transition_time == NOW
    assert by_type["Failed"].last_transition_time == earlier  # unchanged: still False
    assert (by_type["Reconciling"].status, by_type["Stalled"].status) == ("False", "False")
    failed = conditions_for(done, Outcome(Phase.ERROR, Reason.FAILED, "m"), NOW)
    assert {c.type: c.status for c in failed}["Stalled"] == "True"
    assert {c.type: c.reason for c in failed}["Failed"] == "Failed"


def test_a_failed_pod_past_the_backoff_limit_ends_the_run_before_the_job_says_so() -> None:
    # The Job controller marks the Job Failed later; the outcome is already known.
    status = status_of(job(backoffLimit=0), [pod("p1", "Failed", state=terminated(3))])
    assert (status.phase, status.reason, status.exit_code) == (Phase.ERROR, "Failed", 3)
    retrying = status_of(job(backoffLimit=1), [pod("p1", "Failed", state=terminated(3))])
    assert retrying.phase == Phase.RUNNING


def test_a_job_that_cannot_create_its_pod_fails_past_the_pending_deadline() -> None:
    young, old = job(), job()
    young["metadata"]["creationTimestamp"] = "2026-01-01T00:04:30Z"
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    assert status_of(young, [], pending=60).phase == Phase.QUEUED
    status = status_of(old, [], pending=60)
    assert (status.phase, status.reason) == (Phase.ERROR, "PodCreationFailed")


def test_the_job_controllers_reason_is_shown_while_it_retries() -> None:
    quota = 'pods "sales-1-x" is forbidden: exceeded quota: q, limited: pods=0'
    young, old = job(), job()
    young["metadata"]["creationTimestamp"] = "2026-01-01T00:04:30Z"
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    for the_job, phase in ((young, Phase.QUEUED), (old, Phase.ERROR)):
        seen = Observed(
            run(), pipeline(pendingDeadlineSeconds=60), the_job, [], pod_creation_error=quota
        )
        decision = decide_run(seen, NOW)
        assert (decision.status.phase, decision.status.reason) == (phase, "PodCreationFailed")
        assert quota in (decision.status.message or "")
    assert (
        decide_run(
            Observed(
                run(), pipeline(pendingDeadlineSeconds=60), young, [], pod_creation_error=quota
            ),
            NOW,
        ).delete_job
        is False
    )
    assert decision.delete_job is True  # past the deadline: the operator ends the Job


def test_messages_are_bounded() -> None:
    huge = {f"UNDECLARED_{i}_{'X' * 3000}": "x" for i in range(100)}
    status = decide_without_job(run(variables=huge))
    assert status.status.reason == "InvalidVariables"
    assert len((status.status.message or "").encode()) <= 1024
    assert all(len((c.message or "").encode()) <= 1024 for c in status.status.conditions)


def decide_without_job(the_run: Any = None, **kw: Any) -> Any:
    seen = Observed(
        the_run or run(),
        kw.pop("the_pipeline", pipeline(concurrencyPolicy="Queue")),
        None,
        generation=1,
        **kw,
    )
    return decide_run(seen, NOW)


def with_status(the_run: Any, **status: Any) -> Any:
    the_run.status = PipelineJobStatus.model_validate(status)
    return the_run


@pytest.mark.parametrize(
    ("case", "the_run", "kw", "phase", "reason", "creates", "says"),
    [
        (
            "stopped before it started",
            run(stopped=True),
            {},
            "STOPPED",
            "Stopped",
            False,
            ["before it started"],
        ),
        (
            "no such Pipeline",
            run(),
            {"the_pipeline": None},
            "QUEUED",
            "PipelineNotFound",
            False,
            ["Pipeline sales", "namespace data"],
        ),
        (
            "undeclared variable",
            run(variables={"NOPE": "1"}),
            {},
            "ERROR",
            "InvalidVariables",
            False,
            ["NOPE"],
        ),
        (
            "told to wait",
            run(),
            {"verdict": Verdict(Admission.WAIT, 3)},
            "QUEUED",
            "WaitingForRun",
            False,
            ["sales"],
        ),
        (
            "admitted",
            run(),
            {"verdict": Verdict(Admission.START)},
            "QUEUED",
            "Queued",
            True,
            ["pod"],
        ),
        (
            "forbidden",
            run(),
            {"verdict": Verdict(Admission.FORBID)},
            "STOPPED",
            "Forbidden",
            False,
            ["sales", "Forbid"],
        ),
        (
            "replaced before it began",
            run(),
            {"verdict": Verdict(Admission.REPLACE, by="new")},
            "STOPPED",
            "Replaced",
            False,
            ["run new"],
        ),
        (
            "Allow needs no verdict",
            run(),
            {"the_pipeline": pipeline(concurrencyPolicy="Allow")},
            "QUEUED",
            "Queued",
            True,
            ["pod"],
        ),
        (
            "its Job was deleted by someone else",
            with_status(run(), phase="RUNNING", jobName="sales-1"),
            {},
            "ERROR",
            "Failed",
            False,
            ["Job sales-1", "deleted"],
        ),
        (
            "a Job of its name is not its own",
            run(),
            {"foreign_job": True},
            "ERROR",
            "JobRejected",
            False,
            ["sales-1"],
        ),
    ],
)
def test_without_a_job(
    case: str,
    the_run: Any,
    kw: dict[str, Any],
    phase: str,
    reason: str,
    creates: bool,
    says: list[str],
) -> None:
    decision = decide_without_job(the_run, **kw)
    assert (decision.status.phase.value, decision.status.reason) == (phase, reason), case
    assert (decision.job_to_create is not None) == creates, case
    for fact in says:
        assert fact in (decision.status.message or ""), (case, fact)


def test_without_a_verdict_a_run_waits_for_admission_and_writes_nothing() -> None:
    decision = decide_without_job()
    assert decision.awaiting_admission
    assert decision.status.phase is None
    assert decision.job_to_create is None


def test_a_waiting_run_shows_its_position_and_an_admitted_one_drops_it() -> None:
    waiting = decide_without_job(verdict=Verdict(Admission.WAIT, 3)).status
    assert waiting.queue_position == 3
    started = decide_without_job(
        with_status(run(), phase="QUEUED", queuePosition=1), verdict=Verdict(Admission.START)
    )
    assert started.status.queue_position is None
    assert started.job_to_create["metadata"]["name"] == "sales-1"


def test_terminal_runs_never_change_and_a_job_the_operator_ended_is_deleted() -> None:
    stopped = with_status(run(stopped=True), phase="STOPPED", reason="Stopped")
    decision = decide_run(
        Observed(stopped, pipeline(), job(), [pod("p1", "Running", state=RUNNING)]), NOW
    )
    assert (decision.status.phase, decision.status.reason) == (Phase.STOPPED, "Stopped")
    assert decision.delete_job
    completed = with_status(run(), phase="COMPLETE", reason="Completed")
    decision = decide_run(Observed(completed, pipeline(), job()), NOW)
    assert decision.status.phase == Phase.COMPLETE
    assert not decision.delete_job


def test_a_replaced_running_run_stops_and_its_job_is_deleted() -> None:
    running = with_status(run(), phase="RUNNING", jobName="sales-1")
    seen = Observed(
        running,
        pipeline(concurrencyPolicy="Replace"),
        job(),
        [pod("p1", "Running", state=RUNNING)],
        verdict=Verdict(Admission.REPLACE, by="sales-2"),
    )
    decision = decide_run(seen, NOW)
    assert (decision.status.phase, decision.status.reason) == (Phase.STOPPED, "Replaced")
    assert "sales-2" in decision.status.message
    assert decision.delete_job


def test_the_pod_name_is_kept_once_the_pod_starts_or_is_stuck() -> None:
    # A pod being scheduled is no news: no status write for its name alone.
    assert status_of(job(), [pod("p1", "Pending")]).pod_name is None
    unschedulable = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    stuck = status_of(job(), [pod("p1", "Pending", conditions=unschedulable)])
    assert (stuck.reason, stuck.pod_name) == ("Unschedulable", "p1")
    assert status_of(job(), [pod("p1", "Running", state=RUNNING)]).pod_name == "p1"


def test_a_scheduled_time_mark_that_is_not_a_time_is_a_manual_run() -> None:
    marked = run()
    marked.metadata.annotations = {"jobline.dev/scheduled-time": "yesterday-ish"}
    decision = decide_without_job(marked, the_pipeline=pipeline(concurrencyPolicy="Allow"))
    assert decision.status.trigger.type.value == "Manual"
    assert decision.job_to_create is not None  # decided, not a crash retried forever


def test_an_ended_runs_pod_is_kept_while_its_archive_catches_up_and_the_news_written() -> None:
    ended = run()
    ended.status = PipelineJobStatus(phase=Phase.COMPLETE, reason="Completed")
    ended.status.conditions = conditions_for(
        [], Outcome(Phase.COMPLETE, Reason.COMPLETED, "done"), NOW
    )
    the_pod = pod("p1", "Succeeded", state=terminated(0, "Completed"))
    the_pod["metadata"]["uid"] = "pod-uid"
    seen = Observed(ended, pipeline(), job(COMPLETE), [the_pod], archive_pending_for="pod-uid")
    assert decide_run(seen, NOW).release == []

    gave_up = LogArchive(location="s3://logs/x/", lines=40, error="lines 40-49 are not archived")
    gave_up.incomplete = True
    seen = Observed(ended, pipeline(), job(COMPLETE), [the_pod], log_tail=LogTail(archive=gave_up))
    decision = decide_run(seen, NOW)
    assert decision.release == [the_pod]
    assert decision.status.logs == LogTail(archive=gave_up)
    kinds = {c.type: (c.status, c.reason) for c in decision.status.conditions}
    assert kinds["LogArchived"] == ("False", "ArchiveIncomplete")
    assert kinds["Complete"] == ("True", "Completed")  # the run's own are kept


def test_the_log_archived_condition_follows_the_archive_and_survives_phase_changes() -> None:
    running = run()
    the_pod = pod("p1", "Running", state=RUNNING)
    failing = LogTail(archive=LogArchive(location="s3://l/", lines=4, error="store down"))
    seen = Observed(running, pipeline(), job(), [the_pod], log_tail=failing, generation=1)
    status = decide_run(seen, NOW).status
    archived = next(c for c in status.conditions if c.type == "LogArchived")
    assert (archived.status, archived.reason, archived.message) == (
        "False",
        "ArchiveFailing",
        "store down",
    )
    running.status = status
    caught_up = LogTail(archive=LogArchive(location="s3://l/", lines=9))
    seen = Observed(running, pipeline(), job(), [the_pod], log_tail=caught_up, generation=1)
    status = decide_run(seen, NOW).status
    kinds = {c.type: (c.status, c.reason) for c in status.conditions}
    assert kinds["LogArchived"] == ("True", "Archived")
    assert kinds["Running"] == ("True", "Running")


def gated_pod(name: str = "p1") -> dict[str, Any]:
    waiting = pod(name, "Pending")
    waiting["spec"]["schedulingGates"] = [{"name": "jobline.dev/run-active"}]
    return waiting


def test_the_run_lets_its_own_pod_be_scheduled() -> None:
    # Every run's pod is created gated; the run's sync lifts the gate of its Job's pods.
    seen = Observed(run(), pipeline(), job(), [gated_pod()], generation=1)
    assert [p["metadata"]["name"] for p in decide_run(seen, NOW).ungate] == ["p1"]
    assert "schedulingGates" in build_job(pipeline(), run(), {})["spec"]["template"]["spec"]
    # The apiserver refuses gates on a pod placed by hand (nodeName): the CI found it.
    pod = {"nodeName": "node-1", "containers": [{"name": "main", "image": "meltano:3"}]}
    placed = pipeline(template={"spec": pod})
    assert "schedulingGates" not in build_job(placed, run(), {})["spec"]["template"]["spec"]


def test_a_run_that_ends_or_stops_lets_no_pod_be_scheduled() -> None:
    # A pod the Job controller made for a run replaced meanwhile never runs beside the
    # run that took the slot.
    replaced = Observed(
        run(), pipeline(), job(), [gated_pod()], generation=1, verdict=Verdict(Admission.REPLACE)
    )
    assert decide_run(replaced, NOW).ungate == []
    stopping = Observed(run(stopped=True), pipeline(), job(), [gated_pod()], generation=1)
    assert decide_run(stopping, NOW).ungate == []


def test_a_pod_that_ended_is_read_a_last_time_before_the_one_write_that_ends_the_run() -> None:
    # The decision's layout: requests (a log read), then one step. The run's end waits
    # for its last lines (AWAIT_LOG); once they are in, one WRITE, then the pod goes.
    running = run()
    running.status = PipelineJobStatus(phase=Phase.RUNNING, reason="Running", job_name="sales-1")
    the_pod = pod("p1", "Failed", state=terminated(3))
    the_pod["metadata"]["uid"] = "pod-uid"
    first = decide_run(Observed(running, pipeline(), job(backoffLimit=0), [the_pod]), NOW)
    assert first.step == Step.AWAIT_LOG
    assert first.read_log is not None and first.read_log.final
    assert (first.status.phase, first.status.exit_code) == (Phase.ERROR, 3)
    read = Observed(running, pipeline(), job(backoffLimit=0), [the_pod], log_done_for="pod-uid")
    second = decide_run(read, NOW)
    assert (second.step, second.read_log, second.release) == (Step.WRITE, None, [the_pod])
