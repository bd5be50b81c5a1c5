"""decide_run for runs of a Pipeline that names a Kueue LocalQueue: the Job as Jobline
creates it, a Job Kueue holds (pending, inadmissible, preempted), the deadlines, and the
backoffLimit that preemptions do not use up. Workload conditions as Kueue v0.17 writes
them (pkg/workload)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from kubernetes import client

from jobline.controller import manager as manager_module
from jobline.core.admission import Admission, Verdict
from jobline.core.jobs import build_job
from jobline.core.run_status import Observed, decide_run
from jobline.models import Phase, Reason
from tests.unit.builders import job, pipeline, pod, run

NOW = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
KUEUE = {"localQueue": "team", "priorityClass": "low"}
PENDING = {
    "type": "QuotaReserved",
    "status": "False",
    "reason": "Pending",
    "message": "couldn't assign flavors to pod set main: insufficient unused quota for cpu "
    "in flavor default, 1 more needed",
}
RUNNING = {"running": {"startedAt": "2026-01-01T00:00:01Z"}}


def workload(*conditions: dict[str, Any], evictions: int = 0) -> dict[str, Any]:
    stats = {"evictions": [{"reason": "Preempted", "underlyingCause": "", "count": evictions}]}
    return {
        "metadata": {"name": "job-sales-1-3f2a1", "namespace": "data"},
        "spec": {"queueName": "team"},
        "status": {
            "conditions": list(conditions),
            "admission": {"clusterQueue": "analytics"},
            "schedulingStats": stats if evictions else {},
        },
    }


def kueue_job(suspend: bool, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    held = job(conditions, suspend=suspend, backoffLimit=0)
    held["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    held["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team"}
    return held


def decide(the_job: dict[str, Any] | None, pods: list[dict[str, Any]], **kw: Any) -> Any:
    the_pipeline = pipeline(kueue=KUEUE, pendingDeadlineSeconds=60)
    seen = Observed(
        kw.pop("the_run", run()),
        the_pipeline,
        the_job,
        pods,
        generation=1,
        kueue_installed=kw.pop("installed", True),
        **kw,
    )
    return decide_run(seen, NOW)


def test_the_job_is_created_suspended_in_the_local_queue() -> None:
    the_pipeline = pipeline(kueue=KUEUE, backoffLimit=2)
    created = build_job(the_pipeline, run(), {})
    assert created["spec"]["suspend"] is True
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team"
    assert created["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "low"
    # The pod template carries no Kueue label: Kueue reads the Job's.
    assert "kueue.x-k8s.io/queue-name" not in created["spec"]["template"]["metadata"]["labels"]
    assert created["spec"]["backoffLimit"] == 2


def test_a_run_may_have_a_kueue_priority_of_its_own() -> None:
    urgent = run(kueue={"priorityClass": "daily"})
    created = build_job(pipeline(kueue=KUEUE), urgent, {})
    assert created["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "daily"


def test_without_kueue_a_job_is_neither_suspended_nor_labelled() -> None:
    created = build_job(pipeline(backoffLimit=2), run(), {})
    assert "suspend" not in created["spec"]
    assert created["spec"]["backoffLimit"] == 2
    assert not any(k.startswith("kueue.x-k8s.io/") for k in created["metadata"]["labels"])


def test_a_job_waiting_for_quota_is_queued_with_kueues_words_and_no_deadline() -> None:
    decision = decide(kueue_job(True), [], workload=workload(PENDING))
    status = decision.status
    assert (status.phase, status.reason) == (Phase.QUEUED, Reason.WAITING_FOR_ADMISSION)
    assert (
        status.message == f"waiting for Kueue to admit it to LocalQueue team: {PENDING['message']}"
    )
    assert status.kueue is not None and status.kueue.workload == "job-sales-1-3f2a1"
    # 30 minutes after the Job's creation, far past pendingDeadlineSeconds (60 s): still
    # waiting, and no timer for a deadline that does not apply.
    assert not decision.delete_job and decision.recheck_after is None
    stalled = {c.type: c.status for c in status.conditions}["Stalled"]
    assert stalled == "False"


def test_a_job_kueue_has_no_workload_for_yet_waits_for_it() -> None:
    status = decide(kueue_job(True), []).status
    assert (status.phase, status.reason) == (Phase.QUEUED, Reason.WAITING_FOR_ADMISSION)
    assert "has not made its Workload yet" in status.message


def test_a_missing_local_queue_is_inadmissible_and_stalled() -> None:
    inadmissible = {
        "type": "QuotaReserved",
        "status": "False",
        "reason": "Inadmissible",
        "message": "LocalQueue team doesn't exist",
    }
    status = decide(kueue_job(True), [], workload=workload(inadmissible)).status
    assert (status.phase, status.reason) == (Phase.QUEUED, Reason.INADMISSIBLE)
    assert "LocalQueue team doesn't exist" in status.message
    assert "spec.kueue.localQueue" in status.message
    assert {c.type: c.status for c in status.conditions}["Stalled"] == "True"


def test_a_preempted_run_is_queued_again_not_failed() -> None:
    evicted = {
        "type": "Evicted",
        "status": "True",
        "reason": "Preempted",
        "message": "Preempted to accommodate a workload (UID: 1f) due to prioritization in "
        "the ClusterQueue",
    }
    # The Job suspended again; its pod deleted by the Job controller, still terminating.
    terminating = pod("p1", "Running", state=RUNNING)
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:29:50Z"
    the_run = run()
    the_run.status.phase, the_run.status.pod_name, the_run.status.attempts = Phase.RUNNING, "p1", 1
    decision = decide(
        kueue_job(True),
        [terminating],
        workload=workload(evicted, PENDING, evictions=1),
        the_run=the_run,
    )
    status = decision.status
    assert (status.phase, status.reason) == (Phase.QUEUED, Reason.PREEMPTED)
    assert status.message.startswith("Kueue preempted the run (Preempted to accommodate")
    assert PENDING["message"] in status.message
    assert status.kueue is not None and status.kueue.evictions == 1
    assert not decision.delete_job


# Admitted again at 00:20: the Job controller's Suspended condition turned False.
RESUMED = [
    {
        "type": "Suspended",
        "status": "False",
        "reason": "JobResumed",
        "lastTransitionTime": "2026-01-01T00:20:00Z",
    }
]


def deleted_before_resume(phase: str, code: int) -> dict[str, Any]:
    """The pod the preemption deleted: at 00:19:40 with 30 s of grace, so that its
    deletionTimestamp is past the resume."""
    reason = "Completed" if code == 0 else "Error"
    deleted = pod("p1", phase, state={"terminated": {"exitCode": code, "reason": reason}})
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:20:10Z"
    deleted["metadata"]["deletionGracePeriodSeconds"] = 30
    return deleted


def test_a_pod_its_preemption_deleted_does_not_use_up_the_backoff_limit() -> None:
    preempted = deleted_before_resume("Failed", 143)
    second = pod("p2", "Running", created="2026-01-01T00:20:01Z", state=RUNNING)
    status = decide(kueue_job(False, RESUMED), [preempted, second]).status
    assert (status.phase, status.reason) == (Phase.RUNNING, Reason.RUNNING)
    assert status.attempts == 2


def test_a_preempted_pod_that_finishes_in_its_grace_period_completes_the_run() -> None:
    # Found on the real kubelet: a program that ignored SIGTERM finished within the grace
    # period, exit 0. The Job controller does not count that pod and would run the program
    # again (its new pod, gated, would hold Kueue's quota): the run completes, its Job goes.
    decision = decide(kueue_job(False, RESUMED), [deleted_before_resume("Succeeded", 0)])
    assert (decision.status.phase, decision.status.exit_code) == (Phase.COMPLETE, 0)
    assert decision.delete_job
    # An ordinary completion leaves the Job to the Job controller.
    ordinary = pod("p1", "Succeeded", state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    assert not decide(kueue_job(False, RESUMED), [ordinary]).delete_job


def test_a_real_failure_under_kueue_still_counts() -> None:
    failed = pod("p1", "Failed", state={"terminated": {"exitCode": 3, "reason": "Error"}})
    decision = decide(kueue_job(False), [failed])
    assert (decision.status.phase, decision.status.reason) == (Phase.ERROR, Reason.FAILED)
    assert decision.status.exit_code == 3


def test_pending_deadline_counts_from_the_jobs_admission() -> None:
    resumed = [
        {
            "type": "Suspended",
            "status": "False",
            "reason": "JobResumed",
            "lastTransitionTime": "2026-01-01T00:29:30Z",
        }
    ]
    decision = decide(kueue_job(False, resumed), [])
    assert (decision.status.phase, decision.status.reason) == (Phase.QUEUED, Reason.QUEUED)
    assert decision.recheck_after == 31  # 60 s from the resume, not from the creation


def test_a_job_kueue_has_just_unsuspended_starts_its_pending_clock_now() -> None:
    # Kueue unsuspended it; the Job controller has not turned its condition False yet.
    suspended = [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]
    decision = decide(kueue_job(False, suspended), [])
    assert (decision.status.phase, decision.status.reason) == (Phase.QUEUED, Reason.QUEUED)
    assert decision.recheck_after == 61  # found by the cluster test: it failed at once


def test_a_queue_named_where_kueue_is_not_installed_creates_no_job() -> None:
    the_run = run()
    the_run.metadata.creation_timestamp = NOW - dt.timedelta(seconds=10)
    start = Verdict(Admission.START)  # the Pipeline's slot is given: Kueue's turn next
    decision = decide(None, [], installed=False, the_run=the_run, verdict=start)
    status = decision.status
    assert (status.phase, status.reason) == (Phase.QUEUED, Reason.KUEUE_NOT_INSTALLED)
    assert decision.job_to_create is None
    assert "Kueue is not installed" in status.message and "spec.kueue" in status.message
    assert decision.recheck_after == 51
    the_run.metadata.creation_timestamp = NOW - dt.timedelta(seconds=61)
    ended = decide(None, [], installed=False, the_run=the_run, verdict=start).status
    assert (ended.phase, ended.reason) == (Phase.ERROR, Reason.KUEUE_NOT_INSTALLED)
    assert "(waited pendingDeadlineSeconds, 60 s)" in ended.message


def test_the_operator_asks_for_kueue_once_unless_a_pipeline_names_a_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(manager_module, "KUEUE_LOOK_EVERY", 0.01)
    manager = manager_module.Manager(client.ApiClient(), None)
    answers: list[bool] = []
    started: list[bool] = []

    def served() -> bool:
        answers.append(len(answers) >= 3)  # Kueue is installed at the fourth question
        return answers[-1]

    monkeypatch.setattr(manager, "kueue_served", served)
    monkeypatch.setattr(manager.workloads, "start", lambda: started.append(True))
    looking = threading.Thread(target=manager._look_for_kueue, daemon=True)
    looking.start()
    try:
        wait_until(lambda: manager._kueue_looked.is_set())
        time.sleep(0.2)  # twenty periods: no Pipeline names a queue, no more questions
        assert answers == [False]
        assert not manager.runs.kueue_installed()
        manager.cache.pipelines.put(
            {
                "metadata": {"namespace": "data", "name": "sales", "resourceVersion": "1"},
                "spec": {"kueue": {"localQueue": "team"}},
            }
        )
        wait_until(lambda: started)
        assert answers == [False, False, False, True]
        assert manager.runs.kueue_installed() and manager.workloads in manager.informers
    finally:
        manager.stop()


def wait_until(probe: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_job_a_preempted_pod_completed_is_deleted_by_every_later_sync_till_it_goes() -> None:
    # The delete after the status write failed, or the operator restarted between the two:
    # the run is COMPLETE already, its pod (kept by the operator's finalizer until the
    # Job is deleted) still shows why the Job must go.
    done = deleted_before_resume("Succeeded", 0)
    first = decide(kueue_job(False, RESUMED), [done])
    assert first.delete_job
    completed = run()
    completed.status = first.status
    later = decide(kueue_job(False, RESUMED), [done], the_run=completed)
    assert later.delete_job  # its pod is let go after the deletion (RunController._act)
    # An ordinary completion's Job is left to the Job controller, after the end too.
    ordinary = pod("p1", "Succeeded", state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    assert not decide(kueue_job(False, RESUMED), [ordinary], the_run=completed).delete_job
