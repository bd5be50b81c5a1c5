"""Why a run failed, as the real kubelet says it: init containers, programs that are not
there, missing Secrets and ConfigMaps, sidecars without their image, evictions,
preemptions, and a pod failure policy that lets a drained run go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import Cluster, wait_for
from tests.e2e.conftest import RealJobline


def busybox(jl: RealJobline, name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": jl.images.busybox,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        **extra,
    }


def evict(jl: RealJobline, run: str) -> None:
    """What `kubectl drain` does to each pod of the node: the Eviction API."""
    pod = wait_for(
        f"the pod of {run} to run",
        lambda: next((p for p in jl.pods(run) if p.status.phase == "Running"), None),
        timeout=120,
    )
    body = {"metadata": {"name": pod.metadata.name, "namespace": jl.namespace}}
    jl.core.create_namespaced_pod_eviction(pod.metadata.name, jl.namespace, body)


def test_an_init_container_that_fails_is_named_and_its_log_kept(jl: RealJobline) -> None:
    prep = busybox(jl, "prep", "echo preparing data; exit 4")
    jl.placed_pipeline(
        "init-fails", {"initContainers": [prep], "containers": [busybox(jl, "main", "echo go")]}
    )
    jl.start("init-fails-1", "init-fails")
    status = jl.wait_done("init-fails-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "Failed")
    assert 'init container "prep" failed with exit code 4' in status["message"]
    assert status["failure"] == {
        "container": "prep", "kind": "init", "exitCode": 4, "reason": "Error"
    }  # fmt: skip
    assert status.get("exitCode") is None  # the main container never ran
    assert (status["logs"]["container"], status["logs"]["lines"]) == ("prep", ["preparing data"])


def test_a_program_that_is_not_there_says_so(jl: RealJobline) -> None:
    main = {**busybox(jl, "main", ""), "command": ["/no/such/program"]}
    jl.placed_pipeline("no-program", {"containers": [main]})
    jl.start("no-program-1", "no-program")
    status = jl.wait_done("no-program-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "StartFailed")
    assert "StartError" in status["message"]
    assert '"/no/such/program"' in status["message"] and "no such file" in status["message"]
    assert status.get("exitCode") is None and status.get("startTime") is None


def test_a_missing_secret_waits_with_its_reason_and_the_run_starts_once_it_exists(
    jl: RealJobline,
) -> None:
    secret = {"secretKeyRef": {"name": "warehouse-creds", "key": "password"}}
    env = [{"name": "PASSWORD", "valueFrom": secret}]
    main = busybox(jl, "main", 'echo "connecting with ${#PASSWORD} characters"', env=env)
    jl.placed_pipeline("needs-secret", {"containers": [main]})
    jl.start("needs-secret-1", "needs-secret")
    waiting = jl.wait_reason("needs-secret-1", "ConfigError")
    assert waiting["phase"] == "QUEUED"
    assert 'secret "warehouse-creds" not found' in waiting["message"]
    stalled = {c["type"]: c["status"] for c in waiting["conditions"]}["Stalled"]
    assert stalled == "True"
    jl.core.create_namespaced_secret(
        jl.namespace,
        {"metadata": {"name": "warehouse-creds"}, "stringData": {"password": "hunter2"}},
    )
    status = jl.wait_done("needs-secret-1", timeout=120)
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    assert status["logs"]["lines"] == ["connecting with 7 characters"]


def test_a_missing_configmap_volume_is_a_mount_failure(jl: RealJobline) -> None:
    main = busybox(jl, "main", "cat /config/tap.json",
                   volumeMounts=[{"name": "config", "mountPath": "/config"}])  # fmt: skip
    jl.placed_pipeline(
        "needs-config",
        {
            "containers": [main],
            "volumes": [{"name": "config", "configMap": {"name": "tap-config"}}],
        },
        pendingDeadlineSeconds=45,
    )
    jl.start("needs-config-1", "needs-config")
    waiting = jl.wait_reason("needs-config-1", "MountFailed")
    assert waiting["phase"] == "QUEUED"
    assert 'configmap "tap-config" not found' in waiting["message"]
    status = jl.wait_done("needs-config-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "MountFailed")
    assert "pendingDeadlineSeconds, 45 s" in status["message"]


def test_a_sidecar_without_its_image_is_named(jl: RealJobline) -> None:
    proxy = {"name": "proxy", "image": "registry.invalid/jobline/proxy:1",
             "imagePullPolicy": "Never", "restartPolicy": "Always"}  # fmt: skip
    jl.placed_pipeline(
        "sidecar-pull",
        {"initContainers": [proxy], "containers": [busybox(jl, "main", "echo go")]},
        pendingDeadlineSeconds=20,
    )
    jl.start("sidecar-pull-1", "sidecar-pull")
    waiting = jl.wait_reason("sidecar-pull-1", "ImagePullFailed")
    assert 'of sidecar "proxy"' in waiting["message"]
    assert "registry.invalid/jobline/proxy:1" in waiting["message"]
    status = jl.wait_done("sidecar-pull-1", timeout=90)
    assert (status["phase"], status["reason"]) == ("ERROR", "ImagePullFailed")


def test_an_eviction_is_not_a_deletion(jl: RealJobline) -> None:
    jl.real_pipeline("drained", "echo loading; while true; do sleep 1; done",
                     pod={"terminationGracePeriodSeconds": 2})  # fmt: skip
    jl.start("drained-1", "drained")
    evict(jl, "drained-1")
    status = jl.wait_done("drained-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "Evicted")
    assert "EvictionByEvictionAPI" in status["message"]
    assert status["logs"]["lines"] == ["loading"]


def test_a_pod_failure_policy_that_ignores_a_drain_runs_the_run_again(jl: RealJobline) -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    # The first pod is drained as soon as it runs; the second one runs to its end.
    jl.real_pipeline(
        "survives",
        "echo attempt; sleep 8; echo done",
        pod={"terminationGracePeriodSeconds": 2},
        backoffLimit=0,
        podFailurePolicy=policy,
    )
    jl.start("survives-1", "survives")
    evict(jl, "survives-1")
    status = jl.wait_done("survives-1", timeout=180)
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0), status
    assert status["attempts"] == 2  # the drained pod and the one that completed
    assert status["logs"]["lines"] == ["attempt", "done"]
    job = jl.batch.read_namespaced_job(status["jobName"], jl.namespace)
    assert job.spec.backoff_limit == 0 and job.status.failed in (None, 0)  # not counted


@pytest.fixture
def priorities(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """A class below every other pod's (the operator's is 0: never the scheduler's
    victim before the run's) and one above it."""
    scheduling = client.SchedulingV1Api(cluster.api)
    names = ("jobline-e2e-low", "jobline-e2e-high")
    for name, value in zip(names, (-10, 1000), strict=True):
        try:
            scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
        except client.ApiException as e:
            if e.status != 409:
                raise
    yield names
    for name in names:
        scheduling.delete_priority_class(name)


def test_a_preemption_by_a_higher_priority_pod(
    jl: RealJobline, priorities: tuple[str, str]
) -> None:
    low, high = priorities
    node = jl.core.read_node(jl.placement.node)
    cpu = node.status.allocatable["cpu"]
    millicores = int(cpu[:-1]) if cpu.endswith("m") else int(cpu) * 1000
    most = {"requests": {"cpu": f"{millicores * 6 // 10}m"}}
    main = {**busybox(jl, "main", "echo loading; while true; do sleep 1; done"), "resources": most}
    jl.placed_pipeline(
        "big",
        {"containers": [main], "priorityClassName": low, "terminationGracePeriodSeconds": 2},
    )
    jl.start("big-1", "big")
    jl.wait_phase("big-1", "RUNNING", timeout=120)
    urgent = jl.placement.pod_spec(
        {"priorityClassName": high, "restartPolicy": "Never",
         "containers": [{**busybox(jl, "urgent", "sleep 5"), "resources": most}]}
    )  # fmt: skip
    jl.core.create_namespaced_pod(jl.namespace, {"metadata": {"name": "urgent"}, "spec": urgent})
    status = jl.wait_done("big-1", timeout=120)
    assert (status["phase"], status["reason"]) == ("ERROR", "Preempted")
    assert "PreemptionByScheduler" in status["message"]
