"""The chart installed with the image built here: the operator runs as a pod, with the
in-cluster configuration and the ServiceAccount token the kubelet mounts."""

from __future__ import annotations

from kubernetes import client

from tests.conftest import Cluster, wait_for
from tests.e2e.conftest import ARBITRARY_UID, NAMESPACE, RELEASE, Placement, Release


def test_operator_pod_is_ready_and_leads_with_its_service_account(
    cluster: Cluster, release: Release, placement: Placement
) -> None:
    [pod] = release.wait_ready()
    assert pod.spec.node_name == placement.node
    assert pod.spec.service_account_name == RELEASE
    container = next(c for c in pod.spec.containers if c.name == "operator")
    assert "KUBECONFIG" not in {e.name for e in container.env or []}
    # The kubelet mounted the ServiceAccount's token; nothing else gives it credentials.
    assert any(
        m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"
        for m in container.volume_mounts
    )
    # It acts: it took the Lease, which only its ServiceAccount may write.
    assert wait_for("the operator to hold its Lease", lambda: release.leader() == pod.metadata.name)
    status = next(s for s in pod.status.container_statuses if s.name == "operator")
    assert status.ready and status.restart_count == 0
    # It runs as the chart says: a UID with no passwd entry, read-only root filesystem.
    assert pod.spec.security_context.run_as_user == ARBITRARY_UID
    assert container.security_context.read_only_root_filesystem is True


def test_the_server_pod_is_ready_behind_its_service(cluster: Cluster, release: Release) -> None:
    del release
    apps = client.AppsV1Api(cluster.api)
    deployment = apps.read_namespaced_deployment(f"{RELEASE}-server", NAMESPACE)
    assert deployment.status.ready_replicas == 1
    endpoints = client.CoreV1Api(cluster.api).read_namespaced_endpoints(
        f"{RELEASE}-server", NAMESPACE
    )
    assert [a.ip for s in endpoints.subsets or [] for a in s.addresses or []]
