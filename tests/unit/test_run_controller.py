"""RunController.sync on fakes of our API layer and clock, as the CronJob controller's
syncCronJob tests are: cached objects and time in, API calls made and status written
out. Cluster tests show the same paths against a real apiserver and Job controller."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from jobline.controller.cache import Cache
from jobline.controller.run_controller import RunController
from jobline.core.admission import Admission, Admissions, Verdict
from jobline.core.jobs import pipeline_owner
from jobline.core.run_status import QUEUED_WRITE_DELAY
from jobline.models import LABEL_PIPELINE, LABEL_PIPELINEJOB, POD_FINALIZER, SCHEDULING_GATE
from tests.unit.fakes import FakeClock, FakeKube, api_error

Obj = dict[str, Any]
NS = "data"
STAMP = "2026-01-01T00:00:00Z"


class World:
    """The operator's caches, its API layer and clock, and one run controller."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.kube = FakeKube(self.clock)
        self.cache = Cache()
        self.admissions = Admissions()
        self.told: list[tuple[str, bool]] = []  # Pipeline changes: (name, urgent)
        self.runs = self.restart()

    def restart(self) -> RunController:
        """A new operator process: what it kept in memory is gone, the API is not."""
        self.admissions = Admissions()
        self.runs = RunController(
            self.kube,
            self.cache,
            self.admissions,
            lambda namespace: True,
            lambda namespace, name, urgent: self.told.append((name, urgent)),
            self.clock,
        )
        return self.runs

    def pipeline(self, policy: str = "Allow", **spec: Any) -> Obj:
        raw: Obj = {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "sales", "namespace": NS, "uid": "pl-uid", "generation": 1},
            "spec": {
                "concurrencyPolicy": policy,
                "template": {"spec": {"containers": [{"name": "main", "image": "busybox:1.35"}]}},
                **spec,
            },
        }
        raw["metadata"]["resourceVersion"] = "1"
        self.kube.pipelines[(NS, "sales")] = copy.deepcopy(raw)
        self.cache.pipelines.put(raw)
        return raw

    def run(self, name: str = "sales-1", status: Obj | None = None, **spec: Any) -> Obj:
        raw = {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "PipelineJob",
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"{name}-uid",
                "resourceVersion": "10",
                "generation": 1,
                "creationTimestamp": STAMP,
                "labels": {LABEL_PIPELINE: "sales"},
                "ownerReferences": [pipeline_owner("sales", "pl-uid")],
            },
            "spec": {"pipelineRef": {"name": "sales"}, **spec},
            "status": status or {},
        }
        self.kube.runs[(NS, name)] = copy.deepcopy(raw)
        self.cache.runs.put(raw)
        return raw

    def job(self, run: Obj, namespace: str = NS, **status: Any) -> Obj:
        """The run's Job, as the apiserver holds it (`namespace`: one made elsewhere that
        names the run as its controller)."""
        name = run["metadata"]["name"]
        raw = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"{namespace}-{name}-job-uid",
                "resourceVersion": "20",
                "creationTimestamp": STAMP,
                "ownerReferences": [controller_of(run)],
            },
            "spec": {"backoffLimit": 0},
            "status": status,
        }
        self.kube.jobs[(namespace, name)] = copy.deepcopy(raw)
        self.cache.jobs.put(raw)
        return raw

    def pod(self, job: Obj, phase: str, state: Obj | None = None, **meta: Any) -> Obj:
        name = job["metadata"]["name"] + "-abcde"
        namespace = job["metadata"]["namespace"]
        raw = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"{namespace}-{name}-uid",
                "resourceVersion": "30",
                "creationTimestamp": STAMP,
                "finalizers": [POD_FINALIZER],
                "labels": {LABEL_PIPELINE: "sales", LABEL_PIPELINEJOB: job["metadata"]["name"]},
                "ownerReferences": [
                    {**controller_of(job), "apiVersion": "batch/v1", "kind": "Job"}
                ],
                **meta,
            },
            "spec": {"containers": [{"name": "main", "image": "busybox:1.35"}]},
            "status": {
                "phase": phase,
                "containerStatuses": [{"name": "main", "state": state}] if state else [],
            },
        }
        self.kube.pods[(namespace, name)] = copy.deepcopy(raw)
        self.cache.pods.put(raw)
        return raw

    def failed_create(self, job: Obj, message: str, namespace: str = NS) -> None:
        """The Job controller's FailedCreate Event about `job`, posted in `namespace` (an
        Event of another namespace can only be a forgery)."""
        meta = job["metadata"]
        self.cache.job_events.put(
            {
                "metadata": {"name": f"{meta['name']}.1", "namespace": namespace,
                             "resourceVersion": "5"},
                "involvedObject": {"apiVersion": "batch/v1", "kind": "Job",
                                   "namespace": meta["namespace"], "name": meta["name"],
                                   "uid": meta["uid"]},
                "reason": "FailedCreate",
                "message": message,
                "lastTimestamp": STAMP,
            }
        )  # fmt: skip

    def sync(self, name: str = "sales-1") -> None:
        self.runs.sync((NS, name))

    def read_logs(self) -> None:
        """The log readers' work, done now."""
        while (uid := self.runs.logs.queue.get(block=False)) is not None:
            self.runs.logs.read(uid)
            self.runs.logs.queue.done(uid)

    def status(self, name: str = "sales-1") -> Obj:
        return dict(self.kube.runs[(NS, name)].get("status") or {})

    def writes(self) -> list[str]:
        return [c for c in self.kube.made() if not c.startswith(("stream_log", "post_event"))]


RUNNING = {"running": {"startedAt": "2026-01-01T00:00:02Z"}}


def controller_of(owner: Obj) -> Obj:
    """The controller ownerReference naming `owner`, as the API stores it."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", "batch/v1"),
        "kind": owner.get("kind", "Job"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def ended_with(code: int, reason: str = "Error") -> Obj:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "startedAt": "2026-01-01T00:00:02Z",
            "finishedAt": "2026-01-01T00:00:09Z",
        }
    }


def test_a_new_run_gets_its_job_then_one_write_once_its_pod_runs() -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run()
    w.sync()
    assert w.writes() == [f"create_job {NS}/sales-1"]
    # Its pod starts within QUEUED_WRITE_DELAY: no QUEUED write, one RUNNING write.
    w.clock.advance(QUEUED_WRITE_DELAY / 2)
    w.sync()
    assert w.writes() == [f"create_job {NS}/sales-1"]
    w.pod(w.cache.jobs.get(NS, "sales-1") or {}, "Running", RUNNING)
    w.sync()
    assert w.writes() == [f"create_job {NS}/sales-1", f"patch_run_status {NS}/sales-1"]
    assert (w.status()["phase"], w.status()["podName"]) == ("RUNNING", "sales-1-abcde")
    assert w.status()["mainContainer"] == "main"  # what the CLI and server read logs from
    assert run["metadata"]["uid"] in {
        o["uid"] for o in w.kube.jobs[(NS, "sales-1")]["metadata"]["ownerReferences"]
    }


def test_a_pod_slow_to_start_shows_queued_after_the_delay() -> None:
    w = World()
    w.pipeline("Allow")
    w.run()
    w.sync()
    w.clock.advance(QUEUED_WRITE_DELAY)
    w.sync()
    assert (w.status()["phase"], w.status()["reason"]) == ("QUEUED", "Queued")
    assert w.status()["mainContainer"] == "main"


def test_a_run_waits_for_its_pipelines_verdict_and_writes_nothing() -> None:
    w = World()
    w.pipeline("Queue")
    w.run()
    w.sync()
    assert w.writes() == []
    assert w.told == [("sales", True)]
    w.admissions.set("sales-1-uid", Verdict(Admission.WAIT, position=2))
    w.sync()
    assert (w.status()["phase"], w.status()["reason"], w.status()["queuePosition"]) == (
        "QUEUED",
        "WaitingForRun",
        2,
    )
    assert w.kube.events == [("sales-1", "Normal", "Queued")]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (api_error(422, 'Job.batch "sales-1" is invalid: spec.template'), "is invalid"),
        (api_error(403, "exceeded quota: jobs"), "exceeded quota"),
        (api_error(500, "etcdserver: request is too large"), "too large"),
    ],
)
def test_a_job_the_apiserver_refuses_ends_the_run_with_its_answer(
    error: Exception, message: str
) -> None:
    w = World()
    w.pipeline("Allow")
    w.run()
    w.kube.fail["create_job"] = error
    w.sync()  # a permanent refusal: the run ends in the same sync (Tekton's permanent error)
    status = w.status()
    assert (status["phase"], status["reason"]) == ("ERROR", "JobRejected")
    assert message in status["message"]
    assert [c for c in w.writes() if c.startswith("create_job")] == [f"create_job {NS}/sales-1"]


def test_a_pipeline_the_operator_cannot_read_ends_the_run_naming_the_field() -> None:
    w = World()
    w.pipeline("Allow", maxConcurrentRuns=0)  # what only an older schema would let through
    w.run()
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"]) == ("ERROR", "InvalidTemplate")
    failed = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert failed["Failed"] == failed["Stalled"] == ("True", "InvalidTemplate")
    assert "spec.maxConcurrentRuns" in status["message"]  # the field as the Pipeline spells it
    assert w.writes() == [f"patch_run_status {NS}/sales-1"]  # ended, and no Job created
    assert w.kube.events == [("sales-1", "Warning", "Failed")]
    w.kube.calls.clear()
    w.sync()  # ended for good: nothing is retried
    assert w.writes() == []


def test_a_replaced_run_is_recorded_before_its_job_is_deleted() -> None:
    w = World()
    w.pipeline("Replace")
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    pod = w.pod(w.job(run), "Running", RUNNING)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"loading", b"still loading"]
    w.admissions.set("sales-1-uid", Verdict(Admission.REPLACE, by="sales-2"))
    w.sync()
    assert w.writes() == []  # the run's last lines first
    w.read_logs()
    w.sync()
    assert w.writes() == [
        f"patch_run_status {NS}/sales-1",
        f"delete_job {NS}/sales-1",
        f"remove_pod_finalizer {NS}/sales-1-abcde",
    ]
    status = w.status()
    assert (status["phase"], status["reason"]) == ("STOPPED", "Replaced")
    assert status["logs"]["lines"] == ["loading", "still loading"]


def test_an_operator_killed_between_its_write_and_its_delete_deletes_on_restart() -> None:
    w = World()
    w.pipeline("Replace")
    stopped = {"phase": "STOPPED", "reason": "Replaced", "jobName": "sales-1"}
    run = w.run(status=stopped)
    job = w.job(run)
    w.pod(job, "Running", RUNNING)
    w.restart()  # no verdict in memory: the status says what was decided
    w.sync()
    assert w.writes() == [f"delete_job {NS}/sales-1", f"remove_pod_finalizer {NS}/sales-1-abcde"]
    # The Job controller deletes the pod: the run stays STOPPED/Replaced, never PodDeleted.
    w.kube.calls.clear()
    w.pod(
        {**job, "metadata": {**job["metadata"], "deletionTimestamp": STAMP}},
        "Failed",
        ended_with(143),
        deletionTimestamp=STAMP,
    )
    w.sync()
    assert "patch_run_status" not in " ".join(w.writes())
    assert (w.status()["phase"], w.status()["reason"]) == ("STOPPED", "Replaced")


def test_a_write_that_conflicts_deletes_nothing() -> None:
    w = World()
    w.pipeline("Replace")
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    w.job(run)
    w.admissions.set("sales-1-uid", Verdict(Admission.REPLACE, by="sales-2"))
    w.kube.fail["patch_run_status"] = api_error(409, "the object has been modified")
    w.sync()
    assert w.writes() == [f"patch_run_status {NS}/sales-1"]


def test_a_pod_that_ended_is_recorded_with_its_last_lines_before_its_finalizer_goes() -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    pod = w.pod(w.job(run), "Failed", ended_with(3))
    w.kube.log_lines[pod["metadata"]["name"]] = [b"one", b"two", b"three"]
    w.sync()
    assert w.writes() == []  # waits for its last log read
    w.read_logs()
    w.sync()
    assert w.writes() == [
        f"patch_run_status {NS}/sales-1",
        f"remove_pod_finalizer {NS}/sales-1-abcde",
    ]
    status = w.status()
    assert (status["phase"], status["reason"], status["exitCode"]) == ("ERROR", "Failed", 3)
    assert status["logs"]["lines"] == ["one", "two", "three"]
    assert w.kube.events == [("sales-1", "Warning", "Failed")]


def test_a_pod_deleted_by_a_person_ends_the_run_as_pod_deleted() -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    job = w.job(run, conditions=[{"type": "FailureTarget", "status": "True"}])
    w.pod(job, "Failed", ended_with(137), deletionTimestamp=STAMP)
    w.sync()
    w.read_logs()
    w.sync()
    assert (w.status()["phase"], w.status()["reason"]) == ("ERROR", "PodDeleted")
    assert "delete_job" not in " ".join(w.writes())


def test_why_a_job_has_no_pod_comes_from_its_failed_create_event() -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run(status={"phase": "QUEUED", "reason": "Queued", "jobName": "sales-1"})
    job = w.job(run)
    w.failed_create(job, 'pods "sales-1-x" is forbidden: exceeded quota: pods')
    w.clock.advance(10)
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"]) == ("QUEUED", "PodCreationFailed")
    assert "exceeded quota" in status["message"]
    assert "stream_log" not in " ".join(w.kube.made())  # and no request to find out


def test_a_stopped_run_reads_at_once_and_ends_when_its_pod_has() -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run(
        status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"}, stopped=True
    )
    job = w.job(run)
    pod = w.pod(job, "Running", RUNNING)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working"]
    w.sync()
    # STOPPING is written and the Job deleted at once (the stop is in the run's spec).
    assert w.status()["phase"] == "STOPPING"
    assert f"delete_job {NS}/sales-1" in w.writes()
    w.read_logs()  # the read at once
    w.pod(job, "Failed", ended_with(143), deletionTimestamp=STAMP)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working", b"got SIGTERM"]
    w.cache.jobs.put(
        {
            **job,
            "metadata": {**job["metadata"], "deletionTimestamp": STAMP, "resourceVersion": "21"},
        }
    )
    w.sync()
    w.read_logs()  # the last read, now that the container has ended
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"]) == ("STOPPED", "Stopped")
    assert status["logs"]["lines"] == ["working", "got SIGTERM"]


def test_a_job_waiting_for_its_pod_is_looked_at_again_only_at_its_deadline() -> None:
    w = World()
    w.pipeline("Allow", pendingDeadlineSeconds=120)
    run = w.run(status={"phase": "QUEUED", "reason": "Queued", "jobName": "sales-1"})
    w.job(run)
    w.clock.advance(30)
    # No timer every few seconds: why it waits comes with the FailedCreate Event watch.
    # The sync says when to look again; the work queue alone requeues.
    assert w.runs.sync((NS, "sales-1")) == pytest.approx(120 - 30 + 1)


def test_the_pipeline_hears_at_once_when_a_run_the_operator_ended_lets_go_of_its_slot() -> None:
    # Such a run holds its slot until its pods stopped and its Job is gone: those events
    # must wake its Pipeline's admission, or a queue behind it never moves.
    w = World()
    w.pipeline("Queue")
    stopped = w.run(status={"phase": "STOPPED", "reason": "Replaced", "jobName": "sales-1"})
    job = w.job(stopped)
    pod = w.pod(job, "Failed")
    w.runs.on_pod("MODIFIED", pod, None)
    w.cache.jobs.delete((NS, "sales-1"))
    w.runs.on_job("DELETED", job, None)
    assert w.told == [("sales", True), ("sales", True)]
    finished = w.run("sales-2", {"phase": "ERROR", "reason": "Failed", "jobName": "sales-2"})
    w.told.clear()
    w.runs.on_job("DELETED", w.job(finished), None)  # ended by its pod: freed already
    assert w.told == []
    # A run that ended while its pod still ran (a deadline's stop) holds the slot until
    # the pod has ended, whatever ended it.
    deadline = w.run("sales-3", {"phase": "STOPPED", "reason": "DeadlineExceeded"})
    w.runs.on_pod("MODIFIED", w.pod(w.job(deadline), "Failed"), None)
    assert w.told == [("sales", True)]


def test_a_run_deleted_before_its_pipeline_owner_is_added_is_left_to_its_event() -> None:
    w = World()
    w.pipeline()
    run = w.run()
    del run["metadata"]["ownerReferences"]  # made by kubectl: the operator adds them
    w.cache.runs.put(run)
    w.kube.fail["patch_run_metadata"] = api_error(404, 'pipelinejobs "sales-1" not found')
    w.sync()  # no error: the run's DELETED event forgets it
    assert w.writes() == [f"patch_run_metadata {NS}/sales-1"]


def test_a_job_of_another_namespace_naming_a_run_as_its_controller_decides_nothing() -> None:
    # Someone who may create Jobs in namespace evil and knows a run's UID (the Jobs API's
    # id) makes a finished Job there whose controller reference names the waiting run.
    w = World()
    w.pipeline("Queue")
    run = w.run()
    w.admissions.set("sales-1-uid", Verdict(Admission.WAIT, position=1))
    forged = w.job(run, namespace="evil", conditions=[{"type": "Complete", "status": "True"}])
    pod = w.pod(forged, "Pending")
    pod["spec"]["schedulingGates"] = [{"name": SCHEDULING_GATE}]  # as our Jobs' pods have
    w.kube.pods[("evil", pod["metadata"]["name"])] = copy.deepcopy(pod)
    w.cache.pods.put(pod)
    w.runs.on_job("ADDED", forged, None)
    w.runs.on_pod("ADDED", pod, None)
    w.sync()
    done = w.pod(forged, "Succeeded", ended_with(0))
    w.kube.log_lines[done["metadata"]["name"]] = [b"forged"]
    w.runs.on_pod("MODIFIED", done, None)
    w.sync()
    w.read_logs()
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"]) == ("QUEUED", "WaitingForRun")
    assert [c for c in w.kube.made() if " evil/" in c] == []  # not read, ungated, released
    # Admitted, the run gets its own Job, in its own namespace.
    w.admissions.set("sales-1-uid", Verdict(Admission.START))
    w.sync()
    assert f"create_job {NS}/sales-1" in w.writes()


@pytest.mark.parametrize(
    "forged",
    [
        {"apiVersion": "v1", "kind": "ConfigMap"},  # another kind, the run's name and UID
        {"apiVersion": "example.com/v1alpha1"},  # another API group's PipelineJob
        {"name": "sales-2"},  # another name
    ],
)
def test_a_job_whose_controller_reference_differs_from_the_run_but_in_uid_is_not_its(
    forged: Obj,
) -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run()
    job = w.job(run, conditions=[{"type": "Complete", "status": "True"}])
    job["metadata"]["name"] = "imposter"
    job["metadata"]["ownerReferences"] = [{**controller_of(run), **forged}]
    w.cache.jobs.delete((NS, "sales-1"))
    w.cache.jobs.put(job)
    w.runs.on_job("ADDED", job, None)
    w.sync()
    assert w.status().get("phase") != "COMPLETE"
    assert f"create_job {NS}/sales-1" in w.writes()


def test_a_failed_create_event_of_another_namespace_is_not_the_runs() -> None:
    w = World()
    w.pipeline("Allow")
    run = w.run(status={"phase": "QUEUED", "reason": "Queued", "jobName": "sales-1"})
    job = w.job(run)
    w.failed_create(job, "forged: exceeded quota", namespace="evil")
    w.clock.advance(10)
    w.sync()
    assert w.status()["reason"] == "Queued"
    assert "forged" not in w.status()["message"]


def test_a_run_past_its_active_deadline_is_stopping_until_its_pod_has_ended() -> None:
    # The Job controller marks the Job Failed/DeadlineExceeded and deletes the pod, which
    # has its grace period to print its last lines: the run holds its slot till it ends.
    w = World()
    w.pipeline("Queue", activeDeadlineSeconds=60)
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    exceeded = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
    job = w.job(run, conditions=[exceeded], startTime=STAMP)
    pod = w.pod(job, "Running", RUNNING, deletionTimestamp=STAMP)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working"]
    w.clock.advance(61)
    w.sync()
    w.read_logs()
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"]) == ("STOPPING", "DeadlineExceeded")
    assert "remove_pod_finalizer" not in " ".join(w.writes())  # its log stays readable
    assert "delete_job" not in " ".join(w.writes())  # the Job controller ends it
    w.pod(job, "Failed", ended_with(143), deletionTimestamp=STAMP)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working", b"got SIGTERM, saved state"]
    w.sync()
    w.read_logs()
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"], status["exitCode"]) == (
        "STOPPED",
        "DeadlineExceeded",
        143,
    )
    assert status["logs"]["lines"] == ["working", "got SIGTERM, saved state"]
    assert f"remove_pod_finalizer {NS}/sales-1-abcde" in w.writes()


def test_a_run_whose_job_someone_deleted_is_stopping_until_its_pod_has_ended() -> None:
    w = World()
    w.pipeline("Queue")
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    job = w.job(run)
    pod = w.pod(job, "Running", RUNNING, deletionTimestamp=STAMP)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working"]
    w.cache.jobs.delete((NS, "sales-1"))  # deleted by someone else; its pod terminates
    w.sync()
    w.read_logs()
    w.sync()
    assert w.status()["phase"] == "STOPPING"
    assert "remove_pod_finalizer" not in " ".join(w.writes())
    w.pod(job, "Failed", ended_with(143), deletionTimestamp=STAMP)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working", b"bye"]
    w.sync()
    w.read_logs()
    w.sync()
    status = w.status()
    assert (status["phase"], status["reason"]) == ("ERROR", "Failed")
    assert "deleted by someone else" in status["message"]
    assert status["logs"]["lines"] == ["working", "bye"]


def test_a_pipeline_the_operator_cannot_read_leaves_runs_that_have_a_job_to_finish() -> None:
    # After a `helm upgrade` (Helm never upgrades crds/), an older CRD's Pipeline must not
    # end runs whose programs are running: they are followed to their own end.
    w = World()
    w.pipeline("Queue", maxConcurrentRuns=0)  # what only an older schema would let through
    run = w.run(status={"phase": "RUNNING", "reason": "Running", "jobName": "sales-1"})
    job = w.job(run)
    pod = w.pod(job, "Running", RUNNING)
    w.kube.log_lines[pod["metadata"]["name"]] = [b"working"]
    w.sync()
    w.read_logs()
    w.sync()
    assert w.status()["phase"] == "RUNNING"
    assert "delete_job" not in " ".join(w.writes())
    w.pod(job, "Succeeded", ended_with(0, "Completed"))
    w.sync()
    w.read_logs()
    w.sync()
    assert (w.status()["phase"], w.status()["exitCode"]) == ("COMPLETE", 0)


def test_a_run_made_again_under_its_name_waits_for_its_predecessors_job_to_go() -> None:
    # `kubectl delete pj sales-1 && kubectl apply -f sales-1.yaml` (or a GitOps replace):
    # the garbage collector has not yet removed the deleted run's Job of the same name.
    w = World()
    w.pipeline("Allow")
    w.run()
    predecessor: Obj = {"metadata": {"name": "sales-1", "namespace": NS, "uid": "old-run-uid"}}
    predecessor.update(apiVersion="jobline.dev/v1alpha1", kind="PipelineJob")
    old_job = w.job(predecessor)
    w.cache.jobs.restore((NS, "sales-1"), None)  # not cached yet: the create finds it (409)
    w.sync()
    w.sync()
    assert w.status().get("phase") in (None, "QUEUED")
    assert w.status().get("reason") != "JobRejected"
    assert w.kube.made("create_job") == [f"create_job {NS}/sales-1"]
    # Its Job goes: the run is woken, and gets a Job of its own.
    del w.kube.jobs[(NS, "sales-1")]
    w.cache.jobs.delete((NS, "sales-1"))
    w.restart()  # an empty work queue, to see what wakes the run
    w.runs.on_job("DELETED", old_job, None)
    assert len(w.runs.queue) == 1
    w.sync()
    assert w.kube.made("create_job") == [f"create_job {NS}/sales-1"] * 2
    assert w.kube.jobs[(NS, "sales-1")]["metadata"]["ownerReferences"][0]["uid"] == "sales-1-uid"


def test_the_pending_deadline_counts_from_when_the_operator_lifts_its_gate() -> None:
    # Pods made while the operator was down (or without its Lease) wait behind its
    # scheduling gate: on its return they are let go, not ended for having waited.
    w = World()
    w.pipeline("Allow", pendingDeadlineSeconds=60)
    run = w.run(status={"phase": "QUEUED", "reason": "Queued", "jobName": "sales-1"})
    pod = w.pod(w.job(run), "Pending")
    pod["spec"]["schedulingGates"] = [{"name": SCHEDULING_GATE}]
    w.kube.pods[(NS, pod["metadata"]["name"])] = copy.deepcopy(pod)
    w.cache.pods.put(pod)
    w.clock.advance(600)  # the operator was away for ten minutes
    w.sync()
    assert (w.status()["phase"], w.status()["reason"]) == ("QUEUED", "Queued")
    assert f"remove_scheduling_gate {NS}/sales-1-abcde" in w.writes()
    w.cache.pods.put(copy.deepcopy(w.kube.pods[(NS, pod["metadata"]["name"])]))  # its event
    w.clock.advance(30)
    w.sync()
    assert w.status()["phase"] == "QUEUED"  # 30 s of its 60 since the gate went
    w.clock.advance(31)
    w.sync()
    assert (w.status()["phase"], w.status()["reason"]) == ("ERROR", "PendingDeadlineExceeded")


def state_left(w: World) -> dict[str, int]:
    """What the operator keeps per run, in memory: nothing once the run is gone."""
    tracked = w.runs.tracked()
    return {
        "acted": tracked["acted"],
        "models": tracked["parsed"],
        "log follows": tracked["log_follows"],
        "verdicts": tracked["verdicts"],
    }


def test_a_run_deleted_while_its_sync_is_in_flight_leaves_no_state_behind() -> None:
    # The DELETED event is handled while the run's sync is between its look and its act:
    # what that sync then records must not outlive the run.
    w = World()
    w.pipeline("Queue")
    original_create, original_patch = w.kube.create_job, w.kube.patch_run_status

    def deleted_meanwhile(name: str) -> None:
        raw = w.cache.runs.get(NS, name)
        if raw is None:
            return  # gone already
        w.cache.runs.delete((NS, name))
        w.runs.on_run("DELETED", raw, None)

    def create_job(body: Obj) -> Obj:
        created = original_create(body)
        deleted_meanwhile(body["metadata"]["name"])
        return created

    def patch_run_status(namespace: str, name: str, version: str, status: Obj) -> Obj:
        patched = original_patch(namespace, name, version, status)
        deleted_meanwhile(name)
        return patched

    original_ungate = w.kube.remove_scheduling_gate

    def remove_scheduling_gate(namespace: str, name: str, gate: str) -> None:
        original_ungate(namespace, name, gate)
        deleted_meanwhile(name.removesuffix("-abcde"))

    w.kube.create_job = create_job  # type: ignore[method-assign]
    w.kube.patch_run_status = patch_run_status  # type: ignore[method-assign]
    w.kube.remove_scheduling_gate = remove_scheduling_gate  # type: ignore[method-assign]
    for i in range(20):
        gated = w.run(f"gated-{i}", status={"phase": "RUNNING", "jobName": f"gated-{i}"})
        pod = w.pod(w.job(gated), "Running", RUNNING)  # deleted as its pod is let go
        pod["spec"]["schedulingGates"] = [{"name": SCHEDULING_GATE}]
        w.kube.pods[(NS, pod["metadata"]["name"])] = copy.deepcopy(pod)
        w.cache.pods.put(pod)
        w.sync(f"gated-{i}")
        fresh = w.run(f"new-{i}")  # deleted as its Job is created
        w.admissions.set(fresh["metadata"]["uid"], Verdict(Admission.START))
        w.runs.on_run("ADDED", fresh, None)
        w.sync(f"new-{i}")
        running = w.run(f"run-{i}", status={"phase": "QUEUED", "jobName": f"run-{i}"})
        w.pod(w.job(running), "Running", RUNNING)  # deleted as it is written RUNNING
        w.admissions.set(running["metadata"]["uid"], Verdict(Admission.START))
        w.sync(f"run-{i}")
    assert state_left(w) == {"acted": 0, "models": 0, "log follows": 0, "verdicts": 0}
