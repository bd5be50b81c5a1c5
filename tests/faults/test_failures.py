"""Runs that cannot run, pods that go away, and poison objects: each ends once, with a
reason and a message a person can act on, and nothing else waits behind it."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.models import API_GROUP, API_VERSION
from tests.audit import AuditLog
from tests.cluster.jobline_fixtures import Jobline, Operator
from tests.conftest import wait_for
from tests.faults.plane import require_local_plane

pytestmark = pytest.mark.usefixtures("sim")


def test_a_quota_of_no_pods_fails_the_run_within_its_deadline_and_frees_the_queue(
    jl: Jobline,
) -> None:
    jl.core.create_namespaced_resource_quota(
        jl.namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    jl.pipeline("starved", pendingDeadlineSeconds=15)
    jl.start("starved-1", "starved")
    jl.start("starved-2", "starved")
    shown = wait_for(
        "the quota's message while the Job retries",
        lambda: (s := jl.status("starved-1")).get("reason") == "PodCreationFailed" and s,
        timeout=15,
    )
    assert shown["phase"] == "QUEUED" and "exceeded quota" in shown["message"]
    assert shown["jobName"] == "starved-1"  # its Job exists; the quota refuses its pod
    failed = jl.wait_done("starved-1", timeout=30)
    assert (failed["phase"], failed["reason"]) == ("ERROR", "PodCreationFailed")
    assert "exceeded quota" in failed["message"]
    # The slot is free: the next run gets its Job (and, the quota still there, fails alike).
    wait_for("the next run's Job", lambda: [j for j in jl.jobs() if j.metadata.name == "starved-2"])


def test_pod_security_refusing_a_privileged_template_fails_the_run(jl: Jobline) -> None:
    jl.core.patch_namespace(
        jl.namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    privileged = [
        {"name": "main", "image": "busybox:1.36", "securityContext": {"privileged": True}}
    ]
    jl.pipeline("root", containers=privileged, pendingDeadlineSeconds=10)
    jl.start("root-1", "root")
    failed = jl.wait_done("root-1", timeout=40)
    assert (failed["phase"], failed["reason"]) == ("ERROR", "PodCreationFailed")
    assert "privileged" in failed["message"]


def test_a_pod_deleted_while_running_ends_the_run_pod_deleted(jl: Jobline) -> None:
    jl.pipeline("victim", {"sim.jobline.dev/duration": "300s"})
    jl.start("victim-1", "victim")
    running = jl.wait_phase("victim-1", "RUNNING")
    jl.core.delete_namespaced_pod(running["podName"], jl.namespace)
    done = jl.wait_done("victim-1", timeout=30)
    assert (done["phase"], done["reason"], done["exitCode"]) == ("ERROR", "PodDeleted", 143)


def test_a_pod_deleted_while_the_operator_is_down_is_seen_after_it_is_back(
    jl: Jobline, operator: Operator
) -> None:
    jl.pipeline("victim", {"sim.jobline.dev/duration": "300s"})
    jl.start("victim-2", "victim")
    running = jl.wait_phase("victim-2", "RUNNING")
    operator.kill()
    try:
        jl.core.delete_namespaced_pod(running["podName"], jl.namespace)
        # The pod ends (Failed, 143) and stays, held by the operator's finalizer.
        wait_for(
            "the deleted pod to end",
            lambda: (
                (p := jl.core.read_namespaced_pod(running["podName"], jl.namespace))
                and p.status.phase == "Failed"
            ),
        )
        time.sleep(2)
    finally:
        operator.start()
    done = jl.wait_done("victim-2", timeout=60)
    assert (done["phase"], done["reason"], done["exitCode"]) == ("ERROR", "PodDeleted", 143)
    wait_for(
        "the pod to go once its end is recorded",
        lambda: not jl.pods("victim-2"),
        timeout=30,
    )


NODE = "jobline-node-2"


def test_a_node_deleted_under_a_running_pod_ends_the_run_node_lost(
    jl: Jobline, operator: Operator
) -> None:
    require_local_plane()
    node = client.CoreV1Api(jl.cluster.api).read_node(NODE)
    jl.pipeline(
        "far",
        {"sim.jobline.dev/duration": "600s"},
        containers=[{"name": "main", "image": "busybox:1.36"}],
    )
    # Pinned to the node that goes away.
    jl.custom.patch_namespaced_custom_object(
        API_GROUP,
        API_VERSION,
        jl.namespace,
        "pipelines",
        "far",
        {"spec": {"template": {"spec": {"nodeName": NODE}}}},
    )
    jl.start("far-1", "far")
    jl.wait_phase("far-1", "RUNNING")
    jl.core.delete_node(NODE)
    try:
        # PodGC waits 40 s for a vanished node to come back, then marks its pods
        # (DisruptionTarget: DeletionByPodGC) and deletes them.
        done = jl.wait_done("far-1", timeout=120)
        assert (done["phase"], done["reason"]) == ("ERROR", "NodeLost")
        assert NODE in done["message"]
    finally:
        _restore_node(jl, node)


def _restore_node(jl: Jobline, node: client.V1Node) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "annotations": node.metadata.annotations,
            "labels": node.metadata.labels,
        },
        "status": {
            "addresses": [{"type": a.type, "address": a.address} for a in node.status.addresses],
            "allocatable": node.status.allocatable,
            "capacity": node.status.capacity,
        },
    }
    core = client.CoreV1Api(jl.cluster.api)
    wait_for("the old node to be gone", lambda: _absent(core, NODE))
    core.create_node(body)
    wait_for(
        "the node to be Ready again",
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core.read_node(NODE).status.conditions or []
        ),
    )


def _absent(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_node(name)
    except ApiException as e:
        return e.status == 404
    return False


def test_a_template_the_schema_cannot_accept_is_refused_naming_the_field(jl: Jobline) -> None:
    bad = [{"name": "main", "image": "busybox:1.36", "env": "not-a-list"}]
    with pytest.raises(ApiException) as refused:
        jl.pipeline("poison", containers=bad)
    assert refused.value.status == 422
    assert "spec.template.spec.containers[0].env" in str(refused.value.body)


def test_poison_runs_end_once_with_a_bounded_message_and_others_run_meanwhile(
    jl: Jobline, request: pytest.FixtureRequest
) -> None:
    audit = AuditLog()
    jl.pipeline("target")
    # Hundreds of KB of undeclared variables: the message naming them stays small.
    flood = {f"UNDECLARED_{i}_{'X' * 2000}": "x" for i in range(100)}
    jl.start("flood-1", "target", variables=flood)
    # A Job too large for etcd: 100 variables of 4 KiB on each of 4 containers.
    declared = [{"name": f"V{i}", "default": "y" * 4096} for i in range(100)]
    four = [{"name": f"c{i}", "image": "busybox:1.36"} for i in range(4)]
    jl.pipeline("huge", containers=four, variables=declared)
    jl.start("huge-1", "huge")
    healthy = Jobline(jl.cluster, _other_namespace(jl, request))
    healthy.pipeline("fine")
    healthy.start("fine-1", "fine")

    flooded = jl.wait_done("flood-1", timeout=30)
    assert (flooded["phase"], flooded["reason"]) == ("ERROR", "InvalidVariables")
    assert len(flooded["message"].encode()) <= 1024
    assert all(len((c.get("message") or "").encode()) <= 1024 for c in flooded["conditions"])
    too_large = jl.wait_done("huge-1", timeout=30)
    assert (too_large["phase"], too_large["reason"]) == ("ERROR", "JobRejected")
    assert len(too_large["message"].encode()) <= 1024
    assert healthy.wait_done("fine-1", timeout=30)["phase"] == "COMPLETE"
    # Ended once: no retry loop keeps writing them, or asking about them. A retry loop
    # backs off from 5 ms: ten seconds would hold a dozen of its requests.
    requests = audit.operator_requests_about(jl.namespace, {"flood-1", "huge-1"})
    assert len(requests) < 20, requests
    since_ended = AuditLog()
    time.sleep(10)
    assert since_ended.operator_requests_about(jl.namespace, {"flood-1", "huge-1"}) == []


def _other_namespace(jl: Jobline, request: pytest.FixtureRequest) -> str:
    name = jl.namespace + "-b"
    jl.core.create_namespace({"metadata": {"name": name}})
    request.addfinalizer(lambda: jl.core.delete_namespace(name))
    return name
