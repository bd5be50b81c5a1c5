"""Installing the Helm chart, and acting as its ServiceAccount."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.conftest import REPO, Cluster, helm_binary

CHART = REPO / "charts" / "jobline"
RELEASE = "jobline"
NAMESPACE = "jobline-system"


def helm(cluster: Cluster | None, *args: str) -> subprocess.CompletedProcess[str]:
    config = ["--kubeconfig", cluster.kubeconfig] if cluster else []
    return subprocess.run(
        [helm_binary(), *config, *args], capture_output=True, text=True, timeout=300
    )


def install(cluster: Cluster) -> None:
    """Installs (or upgrades) the chart into jobline-system; idempotent."""
    result = helm(
        cluster,
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
    )
    assert result.returncode == 0, result.stderr


def service_account_kubeconfig(cluster: Cluster, path: Path) -> str:
    """A kubeconfig that authenticates as the chart's ServiceAccount, with a token of it."""
    token = (
        client.CoreV1Api(cluster.api)
        .create_namespaced_service_account_token(
            RELEASE,
            NAMESPACE,
            {"spec": {"audiences": [], "expirationSeconds": 7200}},
        )
        .status.token
    )
    admin: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster_entry = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": "jobline-operator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "jobline-operator",
                "context": {"cluster": cluster_entry["name"], "user": "jobline-operator"},
            }
        ],
        "current-context": "jobline-operator",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)
