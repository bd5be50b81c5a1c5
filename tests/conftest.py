"""Test harness: a Kubernetes cluster for the tests marked `cluster`.

With `--kubeconfig` or `KUBECONFIG` set, that cluster is used as it is (kind,
k3d, a real cluster). Otherwise the local control plane (hack/cluster) is
started, or reused when it already runs; one this session started is stopped
when the session ends. Each cluster test gets a namespace of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SH = REPO / "hack" / "cluster" / "cluster.sh"
T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        default=None,
        help="run cluster tests on this cluster instead of the local control plane",
    )
    parser.addoption(
        "--operator-as-chart",
        action="store_true",
        help="install the Helm chart and run the operator with its ServiceAccount's token, "
        "proving the chart's RBAC is enough",
    )


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    api: client.ApiClient
    simulated: bool  # pods follow the sim.jobline.dev annotations (the local plane)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs kubectl against this cluster; the local plane's own build when there is one."""
        return subprocess.run(
            [kubectl_binary(), "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )


def _versions() -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in (REPO / "hack" / "cluster" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def _cache() -> Path:
    return Path(os.environ.get("JOBLINE_CACHE", Path.home() / ".cache" / "jobline"))


def kubectl_binary() -> str:
    v = _versions()
    key = f"k8s-{v['KUBERNETES_VERSION']}-etcd-{v['ETCD_VERSION']}-kwok-{v['KWOK_VERSION']}"
    built = _cache() / key / "bin" / "kubectl"
    return str(built) if built.exists() else shutil.which("kubectl") or "kubectl"


def helm_binary() -> str:
    built = _cache() / f"helm-{_versions()['HELM_VERSION']}" / "bin" / "helm"
    return str(built) if built.exists() else shutil.which("helm") or "helm"


def _run_cluster_sh(*args: str) -> subprocess.CompletedProcess[str]:
    # stderr passes through, so the long first build shows its progress.
    return subprocess.run(["bash", str(CLUSTER_SH), *args], stdout=subprocess.PIPE, text=True)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    given = request.config.getoption("--kubeconfig") or os.environ.get("KUBECONFIG")
    started_here = False
    if given:
        kubeconfig = given
    else:
        already_running = _run_cluster_sh("status").returncode == 0
        up = _run_cluster_sh("up")
        if up.returncode != 0:
            pytest.exit(f"the local control plane did not start: {CLUSTER_SH} up failed", 3)
        kubeconfig = up.stdout.strip().splitlines()[-1]
        started_here = not already_running
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    try:
        yield Cluster(kubeconfig, api, simulated=_is_local_plane(api))
    finally:
        api.close()
        if started_here:
            _run_cluster_sh("down")


@dataclass(frozen=True)
class LogStore:
    """The S3-compatible store that archives run logs, as the operator is told of it."""

    env: dict[str, str]  # JOBLINE_ARCHIVE_* and the keys


def find_log_store(cluster: Cluster) -> LogStore | None:
    """The local plane's store (started with it), or the one JOBLINE_ARCHIVE_BUCKET and
    the AWS_* keys name beside a cluster of one's own; None when there is neither."""
    if os.environ.get("JOBLINE_ARCHIVE_BUCKET"):
        names = ("JOBLINE_ARCHIVE_", "AWS_")
        return LogStore({k: v for k, v in os.environ.items() if k.startswith(names)})
    found = _run_cluster_sh("store-env").stdout.strip()
    if not cluster.simulated or not found or not Path(found).exists():
        return None
    lines = Path(found).read_text().splitlines()
    return LogStore(dict(line.split("=", 1) for line in lines if "=" in line))


@pytest.fixture(scope="session")
def log_store(cluster: Cluster) -> LogStore:
    found = find_log_store(cluster)
    if found is None:
        pytest.skip("no log store: set JOBLINE_ARCHIVE_BUCKET (and keys) for this cluster")
    return found


def _is_local_plane(api: client.ApiClient) -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_config_map("jobline-local-plane", "kube-public")
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


@pytest.fixture
def sim(cluster: Cluster) -> None:
    """Skips a test whose pods must follow the sim.jobline.dev annotations."""
    if not cluster.simulated:
        pytest.skip(
            "needs the local control plane's simulated pods (sim.jobline.dev annotations); "
            "this cluster runs real containers"
        )


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(cluster.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60, interval: float = 0.25
) -> T:
    """Polls probe until it returns something truthy; fails naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last seen: {last!r})")
