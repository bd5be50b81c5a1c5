"""Runs of real containers: exit codes, signals, memory limits, deadlines, image pulls and
deleted pods as the kernel, containerd and the kubelet produce them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_for
from tests.e2e.conftest import RealJobline, seconds_between

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_hello_example_prints_its_real_output(jl: RealJobline) -> None:
    docs = [
        doc
        for path in sorted((EXAMPLES / "hello").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]
    for doc in docs:
        if doc["kind"] == "Pipeline":  # the example as written, placed on the real node
            pod = doc["spec"]["template"]["spec"]
            doc["spec"]["template"]["spec"] = jl.placement.pod_spec(pod)
            pod["containers"][0]["image"] = jl.images.busybox
        plural = doc["kind"].lower() + "s"
        jl.custom.create_namespaced_custom_object(
            "jobline.dev", "v1alpha1", jl.namespace, plural, doc
        )
    status = jl.wait_done("hello-1", timeout=120)
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    assert status["logs"]["lines"] == ["hello data team from Jobline", "loading 3 tables", "done"]
    assert jl.pod_of("hello-1").spec.node_name == jl.placement.node


def test_exit_code_3_after_five_lines(jl: RealJobline) -> None:
    jl.real_pipeline("three", "for i in 1 2 3 4 5; do echo line $i; sleep 1; done; exit 3")
    jl.start("three-1", "three")
    status = jl.wait_done("three-1", timeout=120)
    assert (status["phase"], status["reason"], status["exitCode"]) == ("ERROR", "Failed", 3)
    assert status["logs"]["lines"] == [f"line {i}" for i in range(1, 6)]
    assert seconds_between(status["startTime"], status["endTime"]) >= 4


def test_memory_over_the_limit_is_killed_by_the_kernel(jl: RealJobline) -> None:
    # dd holds a 200 MB block in memory; the cgroup allows 20 MiB.
    hungry = {
        "name": "main", "image": jl.images.busybox, "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", "echo allocating; dd if=/dev/zero of=/dev/null bs=200M count=1"],
        "resources": {"limits": {"memory": "20Mi"}},
    }  # fmt: skip
    jl.placed_pipeline("hungry", {"containers": [hungry]})
    jl.start("hungry-1", "hungry")
    status = jl.wait_done("hungry-1", timeout=120)
    assert (status["phase"], status["reason"], status["exitCode"]) == ("ERROR", "OOMKilled", 137)
    assert "memory" in status["message"]


def test_a_stopped_container_gets_sigterm_and_its_last_line_is_kept(jl: RealJobline) -> None:
    jl.real_pipeline(
        "graceful",
        "trap 'echo got SIGTERM, cleaning up; exit 143' TERM; echo working; "
        "while true; do sleep 1; done",
        pod={"terminationGracePeriodSeconds": 30},
    )
    jl.start("graceful-1", "graceful")
    wait_for(
        "the container to print its first line",
        lambda: "working" in (jl.status("graceful-1").get("logs") or {}).get("lines", []),
        timeout=120,
    )
    jl.patch("graceful-1", {"stopped": True})
    status = jl.wait_done("graceful-1", timeout=60)
    assert (status["phase"], status["reason"]) == ("STOPPED", "Stopped")
    assert status["logs"]["lines"] == ["working", "got SIGTERM, cleaning up"]


def test_active_deadline_stops_the_run_with_its_last_lines_and_holds_its_slot_till_then(
    jl: RealJobline,
) -> None:
    # The Job controller stops the pod at the deadline; the program prints on SIGTERM for
    # 3 s more. Those lines are the run's, and the next run of a one-slot Pipeline starts
    # only after the pod has ended.
    jl.real_pipeline(
        "slow",
        "trap 'echo got SIGTERM; sleep 3; echo saved; exit 143' TERM; "
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done",
        pod={"terminationGracePeriodSeconds": 30},
        activeDeadlineSeconds=6,
        concurrencyPolicy="Queue",
        maxConcurrentRuns=1,
    )
    jl.start("slow-1", "slow")
    jl.pod_of("slow-1")
    jl.start("slow-2", "slow")
    status = jl.wait_done("slow-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("STOPPED", "DeadlineExceeded")
    lines = status["logs"]["lines"]
    assert lines[-2:] == ["got SIGTERM", "saved"]  # printed in its grace period
    ticks = lines[:-2]
    assert ticks and ticks == [f"tick {i}" for i in range(len(ticks))]  # in order, none lost
    # The run ends once its pod has: the next one starts after that, never beside it.
    started = wait_for("slow-2 to start", lambda: jl.status("slow-2").get("startTime"), 120)
    assert seconds_between(status["endTime"], started) >= 0


@pytest.mark.parametrize(
    ("policy", "image"),
    [
        ("Never", "registry.invalid/jobline/absent:1"),  # not on the node, never pulled
        ("IfNotPresent", "registry.invalid/jobline/absent:2"),  # no registry answers
    ],
)
def test_an_image_the_node_cannot_have(jl: RealJobline, policy: str, image: str) -> None:
    main = {"name": "main", "image": image, "imagePullPolicy": policy}
    jl.placed_pipeline("pull", {"containers": [main]}, pendingDeadlineSeconds=5)
    jl.start("pull-1", "pull")
    status = jl.wait_done("pull-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "ImagePullFailed")
    assert image in status["message"]


def test_a_pod_deleted_by_a_person_ends_after_its_grace_period(jl: RealJobline) -> None:
    # sh as PID 1 ignores SIGTERM without a trap: the kubelet kills it after the grace period.
    jl.real_pipeline("victim", "echo up; while true; do sleep 1; done",
                     pod={"terminationGracePeriodSeconds": 5})  # fmt: skip
    jl.start("victim-1", "victim")
    jl.wait_phase("victim-1", "RUNNING", timeout=120)
    pod = jl.pod_of("victim-1")
    asked = dt.datetime.now(dt.UTC).isoformat()
    jl.core.delete_namespaced_pod(pod.metadata.name, jl.namespace)
    status = jl.wait_done("victim-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "PodDeleted")
    # Times in the status are whole seconds: allow one.
    assert seconds_between(asked, status["endTime"]) >= 4
