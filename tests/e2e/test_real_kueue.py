"""A run admitted by Kueue onto the real node: the chart's operator, Kueue beside the plane,
and a ResourceFlavor whose node labels and tolerations are the real node's, so the pod
gets there only by what Kueue adds to the Job when it admits it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster, wait_for
from tests.e2e.conftest import RealJobline
from tests.kueue import cluster_queue, delete_cluster_queue, kueue

__all__ = ["kueue"]  # the fixture


@pytest.fixture
def real_flavor_queue(cluster: Cluster, kueue: None, jl: RealJobline) -> Iterator[str]:
    name = f"real-{jl.namespace}"
    flavor = {
        "nodeLabels": jl.placement.node_selector,
        "tolerations": jl.placement.tolerations,
    }
    cluster_queue(cluster, name, jl.namespace, cpu="200m", flavor=flavor)
    yield "team"
    delete_cluster_queue(cluster, name)


def container(jl: RealJobline, script: str, cpu: str) -> dict[str, Any]:
    return {
        "name": "main",
        "image": jl.images.busybox,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}},
    }


def queued_pipeline(jl: RealJobline, name: str, kueue: dict[str, str], pod: dict[str, Any]) -> None:
    """A Pipeline with no node selector or toleration of its own: Kueue's flavor adds them."""
    jl.custom.create_namespaced_custom_object(
        "jobline.dev",
        "v1alpha1",
        jl.namespace,
        "pipelines",
        {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": {"kueue": kueue, "template": {"spec": {"containers": [pod]}}},
        },
    )


def test_a_run_admitted_by_kueue_runs_on_the_flavors_node(
    jl: RealJobline, real_flavor_queue: str
) -> None:
    script = "echo admitted; echo by kueue"
    queued_pipeline(jl, "admitted", {"localQueue": real_flavor_queue}, container(jl, script, "50m"))
    jl.start("admitted-1", "admitted")
    # The chart's operator asks every 10 s whether Kueue is served, once it was not.
    status = jl.wait_done("admitted-1", timeout=180)
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0), status
    assert status["logs"]["lines"] == ["admitted", "by kueue"]
    assert status["kueue"]["clusterQueue"] == f"real-{jl.namespace}"
    assert jl.pod_of("admitted-1").spec.node_name == jl.placement.node


def test_a_preemption_on_a_real_kubelet_uses_up_no_retry(
    jl: RealJobline, real_flavor_queue: str
) -> None:
    low = {"localQueue": real_flavor_queue, "priorityClass": "low"}
    # Stops on SIGTERM, as a program should (sh as PID 1 would ignore it, and a short
    # sleep could finish within the preempted pod's grace period).
    script = "echo start; trap 'exit 143' TERM; sleep 8 & wait"
    queued_pipeline(jl, "backfill", low, container(jl, script, "100m"))
    jl.start("backfill-1", "backfill")
    jl.wait_phase("backfill-1", "RUNNING", timeout=180)
    # A higher-priority Job that needs the whole quota: Kueue preempts the run.
    urgent = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "urgent",
            "labels": {
                "kueue.x-k8s.io/queue-name": real_flavor_queue,
                "kueue.x-k8s.io/priority-class": "high",
            },
        },
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container(jl, "echo urgent", "200m")],
                }
            },
        },
    }
    jl.batch.create_namespaced_job(jl.namespace, urgent)
    preempted = jl.wait_reason("backfill-1", "Preempted", timeout=120)
    assert preempted["phase"] == "QUEUED"
    done = jl.wait_done("backfill-1", timeout=180)
    assert (done["phase"], done["exitCode"]) == ("COMPLETE", 0), done
    assert done["attempts"] == 2 and done["kueue"]["evictions"] >= 1
    job = wait_for(
        "the Job Complete",
        lambda: (
            (j := jl.batch.read_namespaced_job("backfill-1", jl.namespace)).status.succeeded and j
        ),
    )
    # The Job controller does not count the pod it deleted for the suspension (it drops
    # its tracking finalizer first), and neither does Jobline, though that pod ended
    # Failed: with a backoffLimit of 0, counting it would have failed the run.
    assert job.spec.backoff_limit == 0
    assert not job.status.failed
