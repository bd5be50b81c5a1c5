"""PipelineController.sync on fakes of our API layer and clock: cached runs, Jobs and pods
in, each run's verdict (and the runs woken to act on it), deletions and status out."""

from __future__ import annotations

from typing import Any

import pytest

from jobline.controller.cache import Cache
from jobline.controller.pipeline_controller import PipelineController
from jobline.core.admission import Admission, Admissions
from jobline.models import LABEL_PIPELINE, LABEL_PIPELINEJOB
from tests.unit.fakes import FakeClock, FakeKube, api_error

Obj = dict[str, Any]
NS = "data"
START, WAIT, FORBID, REPLACE = (
    Admission.START,
    Admission.WAIT,
    Admission.FORBID,
    Admission.REPLACE,
)


class World:
    def __init__(self, policy: str, max_runs: int = 1, **spec: Any) -> None:
        self.clock = FakeClock()
        self.kube = FakeKube(self.clock)
        self.cache = Cache()
        self.admissions = Admissions()
        self.woken: list[str] = []
        self.controller = PipelineController(
            self.kube,
            self.cache,
            self.admissions,
            lambda namespace: True,
            lambda key: self.woken.append(key[1]),
            lambda namespace, name: self.woken.append(f"runs of {name}"),
            self.clock,
        )
        raw = {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {
                "name": "sales",
                "namespace": NS,
                "uid": "pl-uid",
                "generation": 1,
                "resourceVersion": "1",
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {
                "concurrencyPolicy": policy,
                "maxConcurrentRuns": max_runs,
                "template": {"spec": {"containers": [{"name": "main", "image": "busybox:1.35"}]}},
                **spec,
            },
        }
        self.kube.pipelines[(NS, "sales")] = raw
        self.cache.pipelines.put(raw)
        self._minute = 0

    def run(
        self, name: str, phase: str | None = None, reason: str | None = None, **spec: Any
    ) -> Obj:
        """A run created a minute after the previous one."""
        self._minute += 1
        status = {k: v for k, v in (("phase", phase), ("reason", reason)) if v}
        if phase in ("COMPLETE", "ERROR", "STOPPED"):
            status["endTime"] = f"2026-01-01T01:{self._minute:02d}:00Z"
        raw = {
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"{name}-uid",
                "resourceVersion": "10",
                "creationTimestamp": f"2026-01-01T00:{self._minute:02d}:00Z",
                "labels": {LABEL_PIPELINE: "sales"},
            },
            "spec": {"pipelineRef": {"name": "sales"}, **spec},
            "status": status,
        }
        self.kube.runs[(NS, name)] = raw
        self.cache.runs.put(raw)
        return raw

    def job(self, run: Obj | None, finished: bool = False, pod_phase: str | None = None) -> Obj:
        """The run's Job (run None: a Job whose run is not known yet), with one pod."""
        name = run["metadata"]["name"] if run else "unknown-run"
        conditions = [{"type": "Complete", "status": "True"}] if finished else []
        job: Obj = {
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"{name}-job-uid",
                "resourceVersion": "20",
                "labels": {LABEL_PIPELINE: "sales", LABEL_PIPELINEJOB: name},
                "ownerReferences": [
                    {
                        "apiVersion": "jobline.dev/v1alpha1",
                        "kind": "PipelineJob",
                        "name": name,
                        "uid": run["metadata"]["uid"] if run else "gone-uid",
                        "controller": True,
                    }
                ],
            },
            "status": {"conditions": conditions},
        }
        self.cache.jobs.put(job)
        if run is not None:
            run["status"]["jobName"] = name
            self.cache.runs.put({**run, "metadata": {**run["metadata"], "resourceVersion": "11"}})
        if pod_phase:
            self.cache.pods.put(
                {
                    "metadata": {
                        "name": f"{name}-pod",
                        "namespace": NS,
                        "uid": f"{name}-pod-uid",
                        "resourceVersion": "30",
                        "ownerReferences": [
                            {
                                "apiVersion": "batch/v1",
                                "kind": "Job",
                                "name": name,
                                "uid": job["metadata"]["uid"],
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {"containers": [{"name": "main"}]},
                    "status": {"phase": pod_phase},
                }
            )
        return job

    def sync(self) -> dict[str, tuple[Admission, Any]]:
        """One pass; the verdict of every run told one, as (admission, position or by)."""
        self.controller.sync((NS, "sales"))
        found = {}
        for run in self.cache.runs.by("pipeline", (NS, "sales")):
            verdict = self.admissions.get(run["metadata"]["uid"])
            if verdict is not None:
                extra = verdict.by or verdict.position
                found[run["metadata"]["name"]] = (verdict.admission, extra)
        return found


def test_queue_starts_in_priority_order_and_numbers_the_rest() -> None:
    w = World("Queue", max_runs=1)
    w.job(w.run("running", "RUNNING", "Running"), pod_phase="Running")
    w.run("old-low")
    w.run("new-high", priority=5)
    w.run("newest-high", priority=5)
    assert w.sync() == {"new-high": (WAIT, 1), "newest-high": (WAIT, 2), "old-low": (WAIT, 3)}
    assert sorted(w.woken) == ["new-high", "newest-high", "old-low"]


def test_a_run_admitted_whose_job_is_not_created_yet_holds_its_slot() -> None:
    w = World("Queue", max_runs=1)
    w.run("first")
    assert w.sync() == {"first": (START, None)}
    w.run("second")
    assert w.sync()["second"] == (WAIT, 1)


def test_a_slot_frees_once_the_job_has_finished() -> None:
    w = World("Queue", max_runs=1)
    first = w.run("first", "RUNNING", "Running")
    w.job(first, pod_phase="Running")
    w.run("second")
    assert w.sync()["second"] == (WAIT, 1)
    w.job(first, finished=True, pod_phase="Succeeded")
    assert w.sync()["second"] == (START, None)


@pytest.mark.parametrize("reason", ["Replaced", "Stopped", "ImagePullFailed"])
def test_a_run_the_operator_ended_holds_its_slot_until_its_pod_and_job_are_gone(
    reason: str,
) -> None:
    w = World("Queue", max_runs=1)
    ended = w.run("ended", "STOPPED", reason)
    w.job(ended)  # its pod, just made, not cached yet
    w.run("next")
    assert w.sync()["next"] == (WAIT, 1)
    w.job(ended, pod_phase="Running")
    assert w.sync()["next"] == (WAIT, 1)
    w.job(ended, pod_phase="Failed")
    assert w.sync()["next"] == (WAIT, 1)  # its Job, deleted in the foreground, goes last
    w.cache.jobs.delete((NS, "ended"))
    assert w.sync()["next"] == (START, None)


def test_a_run_that_failed_by_itself_frees_its_slot_at_once() -> None:
    w = World("Queue", max_runs=1)
    failed = w.run("failed", "ERROR", "Failed")
    w.job(failed, pod_phase="Failed")  # the Job controller has not marked its Job yet
    w.run("next")
    assert w.sync()["next"] == (START, None)


def test_replace_replaces_the_old_run_and_starts_the_new_one_once_its_job_is_gone() -> None:
    w = World("Replace", max_runs=1)
    old = w.run("old", "RUNNING", "Running")
    w.job(old, pod_phase="Running")
    w.run("new")
    assert w.sync() == {"old": (REPLACE, "new"), "new": (WAIT, 1)}
    # The old run's status says Replaced; its pod still stops: the new one still waits,
    # and the old one is not replaced twice.
    old["status"].update(phase="STOPPED", reason="Replaced")
    w.cache.runs.put({**old, "metadata": {**old["metadata"], "resourceVersion": "12"}})
    w.admissions.forget("old-uid")
    assert w.sync() == {"new": (WAIT, 1)}
    w.job(old, pod_phase="Failed")
    assert w.sync() == {"new": (WAIT, 1)}
    w.cache.jobs.delete((NS, "old"))  # the Job goes after its pods
    assert w.sync() == {"new": (START, None)}


def test_a_pod_made_as_the_replaced_runs_job_was_deleted_holds_the_slot_until_it_stops() -> None:
    # The Job controller, its cache not yet showing the Job's deletion, made a pod; the
    # garbage collector, not yet seeing that pod, let the Job go: an orphan that runs.
    w = World("Replace", max_runs=1)
    w.run("old", "STOPPED", "Replaced")
    w.run("new")
    orphan: Obj = {
        "metadata": {
            "name": "old-xyz",
            "namespace": NS,
            "uid": "orphan-uid",
            "resourceVersion": "40",
            "labels": {LABEL_PIPELINE: "sales", LABEL_PIPELINEJOB: "old"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": "old",
                    "uid": "deleted-job-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "main"}]},
        "status": {"phase": "Running"},
    }
    w.cache.pods.put(orphan)
    assert w.sync() == {"new": (WAIT, 1)}
    w.cache.pods.put({**orphan, "metadata": {**orphan["metadata"], "resourceVersion": "41"},
                      "status": {"phase": "Failed"}})  # fmt: skip
    assert w.sync() == {"new": (START, None)}


def test_forbid_ends_what_does_not_fit() -> None:
    w = World("Forbid", max_runs=1)
    w.job(w.run("running", "RUNNING", "Running"), pod_phase="Running")
    w.run("late")
    assert w.sync() == {"late": (FORBID, None)}


def test_a_job_whose_run_is_not_known_yet_holds_a_slot() -> None:
    w = World("Queue", max_runs=1)
    w.job(None, pod_phase="Running")
    w.run("new")
    assert w.sync() == {"new": (WAIT, 1)}


def test_allow_makes_no_pass() -> None:
    w = World("Allow", max_runs=1)
    w.job(w.run("running", "RUNNING", "Running"), pod_phase="Running")
    w.run("new")
    assert w.sync() == {}


def test_history_beyond_its_limit_is_deleted_oldest_first() -> None:
    w = World("Allow", history={"successfulRuns": 1, "failedRuns": 1})
    for name in ("ok-1", "ok-2", "ok-3"):
        w.run(name, "COMPLETE", "Completed")
    w.run("bad-1", "ERROR", "Failed")
    w.sync()
    assert w.kube.made("delete_run") == [f"delete_run {NS}/ok-1", f"delete_run {NS}/ok-2"]


def test_the_pipeline_status_counts_its_runs_and_is_written_once() -> None:
    w = World("Queue", max_runs=1)
    w.job(w.run("running", "RUNNING", "Running"), pod_phase="Running")
    w.run("waiting")
    w.sync()
    w.sync()
    assert w.kube.made("patch_pipeline_status") == [f"patch_pipeline_status {NS}/sales"]
    status = w.kube.pipelines[(NS, "sales")]["status"]
    assert (status["activeRuns"], status["activeCount"], status["queuedRuns"]) == (
        ["running"],
        1,
        1,
    )


def test_a_pipeline_deleted_while_its_key_waited_is_forgotten_not_retried() -> None:
    # The operator frozen while the Pipeline was deleted: its cache still holds it, the
    # apiserver answers its status write with 404 before the watch says DELETED.
    w = World("Queue", max_runs=1)
    w.run("waiting")
    del w.kube.pipelines[(NS, "sales")]
    w.sync()
    assert w.kube.made("patch_pipeline_status") == [f"patch_pipeline_status {NS}/sales"]
    assert w.cache.pipelines.get(NS, "sales") is None
    assert "runs of sales" in w.woken  # they wait for it to exist again
    w.kube.calls.clear()
    w.sync()
    assert w.kube.calls == []


def test_verdicts_already_given_wake_nobody() -> None:
    w = World("Queue", max_runs=1)
    w.job(w.run("running", "RUNNING", "Running"), pod_phase="Running")
    w.run("waiting")
    w.sync()
    w.woken.clear()
    assert w.sync() == {"waiting": (WAIT, 1)}
    assert w.woken == []


def test_a_scheduled_run_the_apiserver_refuses_is_recorded_and_the_rest_of_the_sync_goes_on() -> (
    None
):
    # A quota on PipelineJobs filled with finished runs: the refusal must not stop
    # admission or history (whose deletions free the quota).
    w = World(
        "Queue", max_runs=1, schedule="*/5 * * * *", history={"successfulRuns": 1, "failedRuns": 1}
    )
    for name in ("ok-1", "ok-2", "ok-3"):
        w.run(name, "COMPLETE", "Completed")
    w.run("waiting")
    refusal = 'pipelinejobs.jobline.dev "sales-x" is forbidden: exceeded quota: runs'
    w.kube.fail["create_run"] = api_error(403, refusal)
    w.clock.advance(5 * 60 + 30)  # the 00:05 run is due
    assert w.sync()["waiting"] == (START, None)
    assert w.kube.made("delete_run") == [f"delete_run {NS}/ok-1", f"delete_run {NS}/ok-2"]
    status = w.kube.pipelines[(NS, "sales")]["status"]
    assert status.get("lastScheduleTime") is None  # not made: tried again later
    blocked = {c["type"]: c for c in status["conditions"]}["ScheduleBlocked"]
    assert (blocked["status"], blocked["reason"]) == ("True", "RunRefused")
    assert "exceeded quota" in blocked["message"]
    assert ("sales", "Warning", "RunRefused") in w.kube.events
    # Tried again later (not at once), and made: the condition clears.
    w.kube.calls.clear()
    w.sync()
    assert w.kube.made("create_run") == []
    w.clock.advance(31)
    w.sync()
    assert len(w.kube.made("create_run")) == 1
    status = w.kube.pipelines[(NS, "sales")]["status"]
    assert status["lastScheduleTime"] == "2026-01-01T00:05:00Z"
    blocked = {c["type"]: c for c in status["conditions"]}["ScheduleBlocked"]
    assert blocked["status"] == "False"
