"""Runs admitted by Kueue itself (hack/cluster/kueue.sh: Kueue v0.17 built from its Go
module, its CRDs and webhooks): quota, preemption, stops, and Jobs Kueue manages without
a queue name. Pods are kwok's: admission is the control plane's business."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml

from tests.cluster.jobline_fixtures import Jobline
from tests.cluster.test_orchestration import RunWatch
from tests.conftest import REPO, Cluster, wait_for
from tests.kueue import (
    cluster_queue,
    delete_cluster_queue,
    kueue,
    kueue_object,
    kueue_served,
    kueue_sh,
    workloads,
)

__all__ = ["kueue"]  # the fixture

pytestmark = pytest.mark.usefixtures("sim")
HELD = ("WaitingForAdmission", "Inadmissible")
ONE_CPU = [
    {
        "name": "main",
        "image": "busybox:1.36",
        "command": ["true"],
        "resources": {"requests": {"cpu": "1", "memory": "64Mi"}},
    }
]


@pytest.fixture
def queue(cluster: Cluster, kueue: None, jl: Jobline) -> Iterator[str]:
    """The LocalQueue `team` of the test's namespace, in a ClusterQueue of its own whose
    quota is 2 CPUs: two runs' worth."""
    name = f"cq-{jl.namespace}"
    cluster_queue(cluster, name, jl.namespace)
    yield "team"
    delete_cluster_queue(cluster, name)


def test_a_queue_named_without_kueue_installed_says_so(cluster: Cluster, jl: Jobline) -> None:
    if kueue_served(cluster):
        pytest.skip("Kueue's CRDs are installed on this plane (a run of the Kueue tests)")
    jl.pipeline("quota", containers=ONE_CPU, kueue={"localQueue": "team"}, pendingDeadlineSeconds=4)
    jl.start("quota-1", "quota")
    queued = jl.wait_reason("quota-1", "KueueNotInstalled")
    assert queued["phase"] == "QUEUED"
    assert "Kueue is not installed" in queued["message"]
    assert "spec.kueue" in queued["message"]
    assert jl.jobs() == []  # a suspended Job would wait for good
    ended = jl.wait_done("quota-1", timeout=30)
    assert (ended["phase"], ended["reason"]) == ("ERROR", "KueueNotInstalled")
    assert "pendingDeadlineSeconds, 4 s" in ended["message"]


def test_five_runs_share_a_quota_of_two(cluster: Cluster, jl: Jobline, queue: str) -> None:
    jl.pipeline(
        "quota",
        {"sim.jobline.dev/duration": "4s"},
        containers=ONE_CPU,
        concurrencyPolicy="Allow",  # Kueue's quota alone limits them
        kueue={"localQueue": queue},
        # Not counted while Kueue holds a run; long enough for the operator to find
        # Kueue (it asks every 10 s once it was not installed).
        pendingDeadlineSeconds=60,
        history={"successfulRuns": 5},
    )
    watcher = RunWatch(jl)
    names = [f"quota-{i}" for i in range(5)]
    try:
        for name in names:
            jl.start(name, "quota")
        waiting = wait_for(
            "three runs waiting for Kueue",
            lambda: (
                (
                    w := [
                        s
                        for s in map(jl.status, names)
                        if s.get("reason") == "WaitingForAdmission"
                        and "quota" in s.get("message", "")
                    ]
                )
                and len(w) == 3
                and w
            ),
            timeout=60,
        )
        for status in waiting:
            assert status["phase"] == "QUEUED"
            assert "LocalQueue team" in status["message"]
            assert "insufficient unused quota for cpu" in status["message"]  # Kueue's words
            assert "queuePosition" not in status  # Jobline's own queue is another thing
        statuses = {n: jl.wait_done(n, timeout=120) for n in names}
    finally:
        watcher.stop()
    assert {s["phase"] for s in statuses.values()} == {"COMPLETE"}, statuses
    assert watcher.most_live <= 2
    assert len(jl.jobs()) == 5
    for status in statuses.values():
        assert status["kueue"]["clusterQueue"] == f"cq-{jl.namespace}"
        assert status["kueue"]["workload"].startswith(f"job-{status['jobName']}-")
    job = jl.batch.read_namespaced_job("quota-0", jl.namespace)
    assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == queue


def test_a_preempted_run_waits_again_and_completes(
    cluster: Cluster, jl: Jobline, queue: str
) -> None:
    jl.pipeline(
        "backfill",
        {"sim.jobline.dev/duration": "15s"},
        containers=ONE_CPU,
        kueue={"localQueue": queue, "priorityClass": "low"},
    )
    jl.start("backfill-1", "backfill")
    jl.wait_phase("backfill-1", "RUNNING", timeout=60)
    [first_job] = jl.jobs()
    # A higher-priority Job that needs the whole quota.
    urgent = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "urgent",
            "labels": {"kueue.x-k8s.io/queue-name": queue, "kueue.x-k8s.io/priority-class": "high"},
        },
        "spec": {
            "suspend": True,
            "template": {
                "metadata": {"annotations": {"sim.jobline.dev/duration": "3s"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox:1.36",
                            "resources": {"requests": {"cpu": "2"}},
                        }
                    ],
                },
            },
        },
    }
    jl.batch.create_namespaced_job(jl.namespace, urgent)
    preempted = jl.wait_reason("backfill-1", "Preempted", timeout=60)
    assert preempted["phase"] == "QUEUED"
    assert "Kueue preempted the run" in preempted["message"]
    done = jl.wait_done("backfill-1", timeout=120)
    assert (done["phase"], done["reason"]) == ("COMPLETE", "Completed"), done
    assert done["kueue"]["evictions"] >= 1
    assert done["attempts"] == 2  # the preempted pod and the one that completed
    job = wait_for(
        "the Job Complete",
        lambda: (
            (j := jl.batch.read_namespaced_job("backfill-1", jl.namespace)).status.succeeded and j
        ),
    )
    assert job.metadata.uid == first_job.metadata.uid  # one Job, admitted twice
    assert job.spec.backoff_limit == 0  # the preempted pod used up no retry


def test_a_run_stopped_while_kueue_holds_it_ends_at_once(
    cluster: Cluster, jl: Jobline, queue: str
) -> None:
    # Three CPUs never fit a quota of two: Kueue holds it for good.
    too_big = [{**ONE_CPU[0], "resources": {"requests": {"cpu": "3"}}}]
    jl.pipeline("big", containers=too_big, kueue={"localQueue": queue})
    jl.start("big-1", "big")
    jl.wait_reason("big-1", "WaitingForAdmission", timeout=60)
    wait_for("its Workload", lambda: workloads(cluster, jl.namespace))
    started = time.monotonic()
    jl.patch("big-1", {"stopped": True})
    stopped = jl.wait_done("big-1", timeout=30)
    assert (stopped["phase"], stopped["reason"]) == ("STOPPED", "Stopped")
    assert time.monotonic() - started < 10
    jl.delete("big-1")
    wait_for("no Workload left", lambda: not workloads(cluster, jl.namespace), timeout=60)


def test_a_missing_local_queue_is_inadmissible(cluster: Cluster, jl: Jobline, kueue: None) -> None:
    jl.pipeline("lost", containers=ONE_CPU, kueue={"localQueue": "nowhere"})
    jl.start("lost-1", "lost")
    held = jl.wait_reason("lost-1", "Inadmissible", timeout=60)
    assert held["phase"] == "QUEUED"
    assert "nowhere" in held["message"]
    stalled = {c["type"]: c["status"] for c in held["conditions"]}["Stalled"]
    assert stalled == "True"


def test_jobs_kueue_manages_without_a_queue_name(cluster: Cluster, jl: Jobline, queue: str) -> None:
    kueue_sh("up", "--manage-jobs-without-queue-name")
    try:
        jl.pipeline(
            "plain",
            {"sim.jobline.dev/duration": "1s"},
            pendingDeadlineSeconds=3,
            concurrencyPolicy="Allow",  # plain-1, held by Kueue, would hold the one slot
        )
        jl.start("plain-1", "plain")
        # No LocalQueue: Kueue holds the Job, and says it cannot admit it.
        waiting = wait_for(
            "Kueue to hold plain-1",
            lambda: (s := jl.status("plain-1")).get("reason") in HELD and s,
            timeout=60,
        )
        assert waiting["phase"] == "QUEUED"
        time.sleep(6)  # past pendingDeadlineSeconds: Kueue's wait is not counted
        still = jl.status("plain-1")
        assert still["phase"] == "QUEUED" and still["reason"] in HELD, still
        assert "Kueue" in still["message"]
        # A LocalQueue named `default` takes the namespace's Jobs without a queue name.
        kueue_object(
            cluster,
            "localqueues",
            {
                "kind": "LocalQueue",
                "metadata": {"name": "default"},
                "spec": {"clusterQueue": f"cq-{jl.namespace}"},
            },
            jl.namespace,
        )
        jl.start("plain-2", "plain")
        done = jl.wait_done("plain-2", timeout=90)
        assert (done["phase"], done["reason"]) == ("COMPLETE", "Completed"), done
    finally:
        kueue_sh("up")


def test_the_kueue_example(cluster: Cluster, jl: Jobline, kueue: None) -> None:
    folder = REPO / "examples" / "kueue"
    for doc in yaml.safe_load_all((folder / "cluster-queue.yaml").read_text()):
        namespaced = "namespace" in doc["metadata"]
        doc["metadata"].pop("namespace", None)
        plural = (
            doc["kind"].lower() + "es" if doc["kind"].endswith("s") else doc["kind"].lower() + "s"
        )
        kueue_object(cluster, plural, doc, jl.namespace if namespaced else "")
    [pipeline] = yaml.safe_load_all((folder / "pipeline.yaml").read_text())
    pipeline["metadata"]["namespace"] = jl.namespace
    jl.custom.create_namespaced_custom_object(
        "jobline.dev", "v1alpha1", jl.namespace, "pipelines", pipeline
    )
    try:
        jl.start("warehouse-load-1", "warehouse-load")
        done = jl.wait_done("warehouse-load-1", timeout=90)
        assert (done["phase"], done["reason"]) == ("COMPLETE", "Completed"), done
        assert done["kueue"]["clusterQueue"] == "analytics"
        job = jl.batch.read_namespaced_job("warehouse-load-1", jl.namespace)
        assert job.metadata.labels["kueue.x-k8s.io/priority-class"] == "daily"
    finally:
        delete_cluster_queue(cluster, "analytics")
        delete_cluster_queue(cluster, "default-flavor")
