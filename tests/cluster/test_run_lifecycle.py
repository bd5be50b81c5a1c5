"""A PipelineJob from creation to its final phase, on a real control plane."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.cluster.jobline_fixtures import Jobline, events_of, eventually_gone
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("sim")

LOG = "extracting orders\nloaded 1234 rows\ndone"
OUTPUTS = '{"outputs": [{"name": "orders", "records": 1234}]}'


def test_run_completes_with_exit_code_times_and_log(jl: Jobline) -> None:
    jl.pipeline(
        "ok",
        {
            "sim.jobline.dev/log": LOG,
            "sim.jobline.dev/duration": "2s",
            "sim.jobline.dev/termination-message": OUTPUTS,
        },
    )
    jl.start("ok-1", "ok")
    status = jl.wait_done("ok-1")
    assert (status["phase"], status["reason"], status["exitCode"]) == ("COMPLETE", "Completed", 0)
    assert status["startTime"] <= status["endTime"]
    assert status["durationSeconds"] >= 2
    assert status["attempts"] == 1
    assert status["logs"]["lines"] == LOG.split("\n")
    assert (status["logs"]["sequence"], status["logs"]["totalLines"]) == (0, 3)
    assert status["outputs"] == [{"name": "orders", "records": 1234}]
    assert status["trigger"] == {"type": "Manual"}
    assert status["jobName"] == "ok-1"
    assert status["podName"].startswith("ok-1-")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    archived = {"LogArchived": "True"} if "archive" in status["logs"] else {}  # with a store
    assert conditions == {
        "Running": "False",
        "Complete": "True",
        "Failed": "False",
        "Stopped": "False",
        "Reconciling": "False",
        "Stalled": "False",
        **archived,
    }
    [job] = jl.jobs()
    assert job.metadata.labels == {"jobline.dev/pipeline": "ok", "jobline.dev/pipelinejob": "ok-1"}
    [owner] = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("PipelineJob", "ok-1", True)
    assert not jl.run("ok-1")["metadata"].get("finalizers")  # deletion never waits on us
    run_owners = jl.run("ok-1")["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in run_owners] == [("Pipeline", "ok")]
    events = jl.core.list_namespaced_event(
        jl.namespace, field_selector="involvedObject.kind=PipelineJob,involvedObject.name=ok-1"
    ).items
    # A run that starts at once needs no Queued event: only waiting runs get one; its
    # start is in its status, not in an Event.
    assert sorted(e.reason for e in events) == ["Completed"], [
        (e.reason, e.message) for e in events
    ]


@pytest.mark.parametrize(
    ("pipeline", "annotations", "spec", "timeout", "fields", "says"),
    [
        pytest.param(
            "fails",
            {"sim.jobline.dev/exit-code": "3"},
            {},
            60,
            {"phase": "ERROR", "reason": "Failed", "exitCode": 3},
            "exit code 3",
            id="exit code 3 is an error",
        ),
        pytest.param(
            "retries",
            {"sim.jobline.dev/exit-code": "2"},
            {"backoffLimit": 2},
            120,  # the Job controller backs off 10 s, then 20 s, between attempts
            {"phase": "ERROR", "reason": "BackoffLimitExceeded", "attempts": 3, "exitCode": 2},
            None,
            id="retries are attempts",
        ),
        pytest.param(
            "slow",
            {"sim.jobline.dev/duration": "120s"},
            {"activeDeadlineSeconds": 3},
            60,
            {"phase": "STOPPED", "reason": "DeadlineExceeded"},
            "activeDeadlineSeconds",
            id="the active deadline stops the run",
        ),
        pytest.param(
            "oom",
            {"sim.jobline.dev/oom": "true"},
            {},
            60,
            {"phase": "ERROR", "reason": "OOMKilled", "exitCode": 137},
            "memory",
            id="an OOM kill",
        ),
    ],
)
def test_a_run_that_fails_or_is_stopped_says_how(
    jl: Jobline,
    pipeline: str,
    annotations: dict[str, str],
    spec: dict[str, Any],
    timeout: float,
    fields: dict[str, Any],
    says: str | None,
) -> None:
    jl.pipeline(pipeline, annotations, **spec)
    jl.start(f"{pipeline}-1", pipeline)
    status = jl.wait_done(f"{pipeline}-1", timeout=timeout)
    assert {field: status.get(field) for field in fields} == fields
    if says is not None:
        assert says in status["message"]


def test_image_pull_failure_past_the_pending_deadline(jl: Jobline) -> None:
    jl.pipeline("pull", {"sim.jobline.dev/image-pull-error": "true"}, pendingDeadlineSeconds=5)
    jl.start("pull-1", "pull")
    # While the pod waits, the run says why, before the deadline ends it.
    waiting = jl.wait_reason("pull-1", "ImagePullFailed", timeout=30, interval=0.1)
    assert waiting["phase"] == "QUEUED"
    assert "busybox:1.36" in waiting["message"]
    status = jl.wait_done("pull-1", timeout=60)
    assert (status["phase"], status["reason"]) == ("ERROR", "ImagePullFailed")
    assert "busybox:1.36" in status["message"]
    eventually_gone("the run's Job", jl.jobs)


def test_stop_while_running_keeps_the_log_tail(jl: Jobline) -> None:
    jl.pipeline("long", {"sim.jobline.dev/duration": "300s", "sim.jobline.dev/log": LOG})
    jl.start("long-1", "long")
    jl.wait_phase("long-1", "RUNNING")
    jl.patch("long-1", {"stopped": True})
    status = jl.wait_done("long-1")
    assert (status["phase"], status["reason"]) == ("STOPPED", "Stopped")
    assert status["logs"]["lines"] == LOG.split("\n")
    eventually_gone("the Job", jl.jobs)
    eventually_gone("the pods", lambda: jl.pods("long-1"))


def test_stop_while_queued(jl: Jobline) -> None:
    jl.pipeline("single", {"sim.jobline.dev/duration": "300s"})
    jl.start("single-1", "single")
    jl.wait_phase("single-1", "RUNNING")
    jl.start("single-2", "single")
    waiting = jl.wait_phase("single-2", "QUEUED")
    assert waiting["reason"] == "WaitingForRun"
    jl.patch("single-2", {"stopped": True})
    status = jl.wait_done("single-2")
    assert (status["phase"], status["reason"]) == ("STOPPED", "Stopped")
    assert not status.get("jobName")
    assert [j.metadata.name for j in jl.jobs()] == ["single-1"]


def test_second_run_waits_until_the_first_ends(jl: Jobline) -> None:
    jl.pipeline("one-at-a-time", {"sim.jobline.dev/duration": "4s"})
    jl.start("first", "one-at-a-time")
    jl.wait_phase("first", "RUNNING")
    jl.start("second", "one-at-a-time")
    queued = jl.wait_phase("second", "QUEUED")
    assert (queued["reason"], queued["queuePosition"]) == ("WaitingForRun", 1)
    first = jl.wait_done("first")
    second = jl.wait_done("second", timeout=60)
    assert first["phase"] == second["phase"] == "COMPLETE"
    assert second["startTime"] >= first["endTime"]
    # The Event follows the status write that it announces.
    wait_for(
        "the second run's Events",
        lambda: len(events_of(jl, "PipelineJob", "second")) >= 2,
    )
    reasons = [e.reason for e in events_of(jl, "PipelineJob", "second")]
    assert sorted(reasons) == ["Completed", "Queued"]  # Queued: it had to wait


def test_delete_while_running_removes_job_and_pods(jl: Jobline) -> None:
    jl.pipeline("doomed", {"sim.jobline.dev/duration": "300s"})
    jl.start("doomed-1", "doomed")
    jl.wait_phase("doomed-1", "RUNNING")
    jl.delete("doomed-1")
    eventually_gone("the Job", jl.jobs)
    eventually_gone("the pods", lambda: jl.pods("doomed-1"))


def test_a_run_deleted_and_made_again_under_its_name_runs_once_the_old_job_is_gone(
    jl: Jobline,
) -> None:
    # `kubectl delete pj X && kubectl apply -f X.yaml`, or a GitOps replace: the garbage
    # collector removes the old run's Job (same name) after the new run is created.
    jl.pipeline("again", {"sim.jobline.dev/duration": "300s"})
    jl.start("again-1", "again")
    jl.wait_phase("again-1", "RUNNING")
    jl.delete("again-1")
    jl.start("again-1", "again")
    uid = jl.run("again-1")["metadata"]["uid"]
    status = jl.wait_phase("again-1", "RUNNING", "ERROR", timeout=120)
    assert status["phase"] == "RUNNING", status
    [job] = jl.jobs()
    assert job.metadata.owner_references[0].uid == uid


def test_pod_deleted_by_someone_else(jl: Jobline) -> None:
    jl.pipeline("victim", {"sim.jobline.dev/duration": "300s"})
    jl.start("victim-1", "victim")
    jl.wait_phase("victim-1", "RUNNING")
    [pod] = jl.pods("victim-1")
    jl.core.delete_namespaced_pod(pod.metadata.name, jl.namespace)
    status = jl.wait_done("victim-1")
    assert (status["phase"], status["reason"]) == ("ERROR", "PodDeleted")


def test_large_log_keeps_exactly_the_tail(jl: Jobline) -> None:
    jl.pipeline("chatty", {"sim.jobline.dev/log-lines": "5000"}, logs={"tailLines": 50})
    jl.start("chatty-1", "chatty")
    status = jl.wait_done("chatty-1")
    logs = status["logs"]
    assert logs["lines"] == [f"line {i}" for i in range(4950, 5000)]
    assert (logs["sequence"], logs["totalLines"], logs["truncated"]) == (4950, 5000, True)
    assert len(str(status).encode()) < 64 * 1024


def test_a_200_mib_log_written_over_time_ends_with_exactly_its_last_lines(jl: Jobline) -> None:
    # 204,800 lines of 1 KiB, appended over 12 s while the pod runs: the operator reads it
    # incrementally, and its final tail is the log's real end.
    lines, width = 204_800, 1023
    jl.pipeline(
        "huge",
        {
            "sim.jobline.dev/duration": "16s",
            "sim.jobline.dev/log-lines": str(lines),
            "sim.jobline.dev/log-line-bytes": str(width),
            "sim.jobline.dev/log-over": "12s",
        },
        logs={"tailLines": 20},
    )
    jl.start("huge-1", "huge")
    status = jl.wait_done("huge-1", timeout=180)
    logs = status["logs"]
    expected = [
        f"line {i} " + "x" * (width - len(f"line {i}") - 1) for i in range(lines - 20, lines)
    ]
    assert logs["lines"] == expected
    assert (logs["sequence"], logs["totalLines"], logs["truncated"]) == (lines - 20, lines, True)


def test_invalid_utf8_and_huge_lines(jl: Jobline) -> None:
    raw = b"start\n\xff\xfe broken\n" + b"y" * 100_000 + b"\nend\n"
    jl.pipeline("binary", {"sim.jobline.dev/log-base64": base64.b64encode(raw).decode()})
    jl.start("binary-1", "binary")
    status = jl.wait_done("binary-1")
    lines = status["logs"]["lines"]
    assert lines[0] == "start"
    assert lines[1] == "\ufffd\ufffd broken"
    assert len(lines[2].encode()) <= 2048 and lines[2].startswith("yyy")
    assert lines[3] == "end"
    assert status["logs"]["truncated"] is True
    assert status["phase"] == "COMPLETE"


def test_variables_reach_the_container_env(jl: Jobline) -> None:
    jl.pipeline(
        "vars",
        variables=[
            {"name": "START_DATE", "default": "2024-01-01"},
            {"name": "MODE", "default": "incremental", "enum": ["incremental", "full"]},
            {"name": "TARGET", "required": True},
        ],
    )
    jl.start("vars-ok", "vars", variables={"TARGET": "raw", "MODE": "full"})
    status = jl.wait_done("vars-ok")
    assert status["phase"] == "COMPLETE"
    expected = {"START_DATE": "2024-01-01", "MODE": "full", "TARGET": "raw"}
    assert status["variables"] == expected
    env = jl.main_env("vars-ok")
    assert env == {**expected, "JOBLINE_PIPELINE": "vars", "JOBLINE_PIPELINEJOB": "vars-ok"}

    for name, variables, named in (
        ("vars-unknown", {"TARGET": "raw", "OOPS": "1"}, "OOPS"),
        ("vars-missing", {}, "TARGET"),
        ("vars-enum", {"TARGET": "raw", "MODE": "sometimes"}, "MODE"),
    ):
        jl.start(name, "vars", variables=variables)
        status = jl.wait_done(name)
        assert (status["phase"], status["reason"]) == ("ERROR", "InvalidVariables")
        assert named in status["message"]
    assert [j.metadata.name for j in jl.jobs()] == ["vars-ok"]


def test_run_applied_before_its_pipeline(jl: Jobline) -> None:
    jl.start("early-1", "late-pipeline")
    waiting = jl.wait_phase("early-1", "QUEUED")
    assert waiting["reason"] == "PipelineNotFound"
    assert "late-pipeline" in waiting["message"]
    jl.pipeline("late-pipeline")
    assert jl.wait_done("early-1")["phase"] == "COMPLETE"


def test_rejected_job_ends_the_run(jl: Jobline) -> None:
    # The schema accepts any container fields; the apiserver rejects this one at Job creation.
    jl.pipeline(
        "broken",
        containers=[{"name": "Not_A_DNS_Label", "image": "busybox"}],
    )
    jl.start("broken-1", "broken")
    status = jl.wait_done("broken-1")
    assert (status["phase"], status["reason"]) == ("ERROR", "JobRejected")
    assert "spec.template.spec.containers[0].name" in status["message"]


def test_existing_job_of_someone_else_is_never_touched(jl: Jobline) -> None:
    jl.batch.create_namespaced_job(
        jl.namespace,
        {
            "metadata": {"name": "taken-1", "labels": {"jobline.dev/pipelinejob": "taken-1"}},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "busybox"}],
                    }
                }
            },
        },
    )
    jl.pipeline("taken")
    jl.start("taken-1", "taken")
    status = jl.wait_done("taken-1")
    assert (status["phase"], status["reason"]) == ("ERROR", "JobRejected")
    assert "taken-1" in status["message"]
    assert [j.metadata.owner_references for j in jl.jobs()] == [None]


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("Pipeline", {"template": {"spec": {"containers": []}}}, "spec.template.spec.containers"),
        (
            "Pipeline",
            {
                "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}},
                "variables": [{"name": "1BAD"}],
            },
            "spec.variables[0].name",
        ),
        (
            "Pipeline",
            {
                "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}},
                "variables": [{"name": "A"}, {"name": "A"}],
            },
            "Duplicate value",
        ),
        (
            "Pipeline",
            {
                "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}},
                "logs": {"tailLines": 5000},
            },
            "spec.logs.tailLines",
        ),
        (
            "Pipeline",
            {
                "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}},
                "concurrencyPolicy": "Sometimes",
            },
            "spec.concurrencyPolicy",
        ),
        (
            "Pipeline",
            {
                "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}},
                "variables": [{"name": "A", "default": "x", "enum": ["y"]}],
            },
            "default must be one of its enum values",
        ),
        ("PipelineJob", {}, "spec.pipelineRef"),
        ("PipelineJob", {"pipelineRef": {"name": "Not_A_Name"}}, "spec.pipelineRef.name"),
    ],
)
def test_schema_rejects_invalid_objects(
    jl: Jobline, kind: str, spec: dict[str, object], message: str
) -> None:
    plural = kind.lower() + "s"
    body = {
        "apiVersion": "jobline.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "invalid"},
        "spec": spec,
    }
    with pytest.raises(ApiException) as rejected:
        jl.custom.create_namespaced_custom_object(
            "jobline.dev", "v1alpha1", jl.namespace, plural, body
        )
    assert rejected.value.status == 422
    assert message in rejected.value.body


def test_pipeline_ref_is_immutable_and_stop_is_final(jl: Jobline) -> None:
    jl.start("fixed", "nowhere", stopped=True)
    for spec, message in (
        ({"pipelineRef": {"name": "elsewhere"}}, "spec.pipelineRef is immutable"),
        ({"stopped": False}, "spec.stopped cannot be set back to false"),
    ):
        with pytest.raises(ApiException) as rejected:
            jl.patch("fixed", spec)
        assert message in rejected.value.body
    wait_for("the stopped run to end", lambda: jl.status("fixed").get("phase") == "STOPPED")
