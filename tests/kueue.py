"""Kueue for the cluster and end-to-end suites: started on the local plane by
hack/cluster/kueue.sh (Kueue v0.17 built from its Go module), and its objects."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import REPO, Cluster

KUEUE_SH = REPO / "hack" / "cluster" / "kueue.sh"
GROUP, VERSION = "kueue.x-k8s.io", "v1beta2"


def kueue_served(cluster: Cluster) -> bool:
    """Whether the apiserver serves Kueue's Workloads (its CRDs are installed)."""
    try:
        client.CustomObjectsApi(cluster.api).list_cluster_custom_object(
            GROUP, VERSION, "workloads", limit=1
        )
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def kueue_sh(*args: str) -> None:
    subprocess.run(["bash", str(KUEUE_SH), *args], check=True)


@pytest.fixture(scope="module")
def kueue(cluster: Cluster) -> Iterator[None]:
    """Kueue running beside the local plane for the module's tests."""
    if not cluster.simulated:
        if not kueue_served(cluster):
            pytest.skip("Kueue is not installed on this cluster (kueue.sh runs on the local plane)")
        yield  # a cluster of one's own, with its own Kueue
        return
    kueue_sh("up")
    try:
        yield
    finally:
        kueue_sh("down")


def kueue_object(cluster: Cluster, plural: str, body: dict[str, Any], namespace: str = "") -> None:
    """Creates a Kueue object (cluster-scoped unless `namespace`); one that exists is kept."""
    api = client.CustomObjectsApi(cluster.api)
    body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
    try:
        if namespace:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        else:
            api.create_cluster_custom_object(GROUP, VERSION, plural, body)
    except ApiException as e:
        if e.status != 409:
            raise


def cluster_queue(
    cluster: Cluster,
    name: str,
    namespace: str,
    cpu: str = "2",
    flavor: dict[str, Any] | None = None,
) -> None:
    """A ResourceFlavor and a ClusterQueue `name` with a quota of `cpu` CPUs (preempting
    lower priorities within itself), the LocalQueue `team` of `namespace` in it, and the
    WorkloadPriorityClasses `low` (10) and `high` (1000)."""
    kueue_object(
        cluster,
        "resourceflavors",
        {"kind": "ResourceFlavor", "metadata": {"name": name}, "spec": flavor or {}},
    )
    resources = [{"name": "cpu", "nominalQuota": cpu}, {"name": "memory", "nominalQuota": "1Gi"}]
    kueue_object(
        cluster,
        "clusterqueues",
        {
            "kind": "ClusterQueue",
            "metadata": {"name": name},
            "spec": {
                "namespaceSelector": {},  # left out, it would admit no namespace
                "preemption": {"withinClusterQueue": "LowerPriority"},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory"],
                        "flavors": [{"name": name, "resources": resources}],
                    }
                ],
            },
        },
    )
    kueue_object(
        cluster,
        "localqueues",
        {"kind": "LocalQueue", "metadata": {"name": "team"}, "spec": {"clusterQueue": name}},
        namespace,
    )
    for priority, value in (("low", 10), ("high", 1000)):
        kueue_object(
            cluster,
            "workloadpriorityclasses",
            {"kind": "WorkloadPriorityClass", "metadata": {"name": priority}, "value": value},
        )


def delete_cluster_queue(cluster: Cluster, name: str) -> None:
    api = client.CustomObjectsApi(cluster.api)
    for plural in ("clusterqueues", "resourceflavors"):
        try:
            api.delete_cluster_custom_object(GROUP, VERSION, plural, name)
        except ApiException as e:
            if e.status != 404:
                raise


def workloads(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    found = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "workloads"
    )
    return list(found["items"])
