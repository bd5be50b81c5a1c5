"""End-to-end tests: the operator's image installed by its Helm chart, running real
containers on a real node, as a cluster admin and a data engineer would meet them.

Everything is found through the API and the environment, never through the local
plane's files, so the suite runs as it is on kind or any cluster (KUBECONFIG):

- the real nodes are the Ready nodes that kwok does not simulate; pods are placed on
  them with a node selector and tolerations of their taints, only where simulated
  nodes exist beside them;
- the images: JOBLINE_E2E_IMAGE (default: the chart's appVersion of
  ghcr.io/jobline-dev/jobline, which `make image` builds and loads) and
  JOBLINE_E2E_BUSYBOX (default busybox:1.35) for the runs' containers.

With JOBLINE_REQUIRE_REAL_NODE=1 (CI) a cluster without a real node fails the suite
instead of skipping it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.jobline_fixtures import Jobline
from tests.conftest import REPO, Cluster, LogStore, find_log_store, helm_binary, wait_for

HERE = Path(__file__).parent
CHART = REPO / "charts" / "jobline"
RELEASE = "jobline-e2e"
ARBITRARY_UID = 1000770000
NAMESPACE = "jobline-e2e"
ARCHIVE_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Placement:
    """Where real containers run: the node selector and tolerations that choose a real node."""

    node: str
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)

    def pod_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        placed = dict(spec)
        if self.node_selector:
            placed["nodeSelector"] = {**spec.get("nodeSelector", {}), **self.node_selector}
        if self.tolerations:
            placed["tolerations"] = [*spec.get("tolerations", []), *self.tolerations]
        return placed


def _ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


@pytest.fixture(scope="session")
def placement(cluster: Cluster) -> Placement:
    nodes = client.CoreV1Api(cluster.api).list_node().items
    simulated = [n for n in nodes if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node")]
    real = [n for n in nodes if n not in simulated and _ready(n)]
    if not real:
        message = "no Ready node that runs containers (only kwok's simulated nodes)"
        if os.environ.get("JOBLINE_REQUIRE_REAL_NODE") == "1":
            pytest.fail(message + "; JOBLINE_REQUIRE_REAL_NODE=1")
        pytest.skip(message)
    # On kind, the control plane's node is tainted when workers exist: prefer a worker.
    untainted = [n for n in real if not n.spec.taints]
    node = (untainted or real)[0]
    if not simulated and not node.spec.taints:
        return Placement(node.metadata.name)
    return Placement(
        node.metadata.name,
        node_selector={"kubernetes.io/hostname": node.metadata.labels["kubernetes.io/hostname"]},
        tolerations=[
            {"key": t.key, "operator": "Exists", "effect": t.effect}
            for t in node.spec.taints or []
            if t.effect in ("NoSchedule", "NoExecute")
        ],
    )


@dataclass(frozen=True)
class Images:
    operator: str
    busybox: str


def _chart_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def _normalized(name: str) -> str:
    """busybox:1.35 -> docker.io/library/busybox:1.35, as the kubelet reports images."""
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


@pytest.fixture(scope="session")
def images(cluster: Cluster, placement: Placement) -> Images:
    found = Images(
        operator=os.environ.get("JOBLINE_E2E_IMAGE")
        or f"ghcr.io/jobline-dev/jobline:{_chart_app_version()}",
        busybox=os.environ.get("JOBLINE_E2E_BUSYBOX", "busybox:1.35"),
    )

    def on_node() -> bool:
        node = client.CoreV1Api(cluster.api).read_node(placement.node)
        names = {name for image in node.status.images or [] for name in image.names or []}
        return _normalized(found.operator) in names

    # An image imported into a node already running shows in its status at the kubelet's
    # next report (`make run`, then `make e2e-test`): a minute at most.
    deadline = time.monotonic() + 90
    while not on_node() and time.monotonic() < deadline:
        time.sleep(2)
    if not on_node():
        pytest.fail(
            f"the image {found.operator} is not on node {placement.node}: build and load it "
            "with `make image` (or `kind load docker-image` on kind), or name another one "
            "in JOBLINE_E2E_IMAGE"
        )
    return found


def helm(cluster: Cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), "--kubeconfig", cluster.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


ARCHIVE_SECRET = "jobline-e2e-archive-keys"


class Release:
    """The chart, installed as a cluster admin installs it; with the log archive where
    there is a store (`archive`), reached in the cluster at JOBLINE_E2E_ARCHIVE_ENDPOINT
    (default: the address the tests use)."""

    def __init__(
        self, cluster: Cluster, placement: Placement, images: Images, archive: LogStore | None
    ) -> None:
        self.cluster = cluster
        self.placement = placement
        self.images = images
        self.archive = archive
        self.core = client.CoreV1Api(cluster.api)
        self.apps = client.AppsV1Api(cluster.api)
        if archive is not None:
            self._archive_keys(archive)

    def _archive_keys(self, archive: LogStore) -> None:
        """The store's keys in a Secret of the release's namespace, as an admin puts them."""
        for create, body in (
            (self.core.create_namespace, {"metadata": {"name": NAMESPACE}}),
            (
                lambda b: self.core.create_namespaced_secret(NAMESPACE, b),
                {
                    "metadata": {"name": ARCHIVE_SECRET},
                    "stringData": {k: archive.env[k] for k in ARCHIVE_KEYS},
                },
            ),
        ):
            try:
                create(body)
            except client.exceptions.ApiException as e:
                if e.status != 409:
                    raise

    def archive_values(self) -> list[str]:
        if self.archive is None:
            return []
        env = self.archive.env
        endpoint = os.environ.get("JOBLINE_E2E_ARCHIVE_ENDPOINT") or env["JOBLINE_ARCHIVE_ENDPOINT"]
        return [
            "--set", f"logArchive.bucket={env['JOBLINE_ARCHIVE_BUCKET']}",
            "--set", f"logArchive.endpoint={endpoint}",
            "--set", f"logArchive.region={env.get('JOBLINE_ARCHIVE_REGION', '')}",
            "--set", f"logArchive.existingSecret={ARCHIVE_SECRET}",
        ]  # fmt: skip

    def values(self) -> list[str]:
        repository, tag = self.images.operator.rsplit(":", 1)
        return [
            "--set", f"image.repository={repository}",
            "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=IfNotPresent",
            "--set", "server.enabled=true",
            # A UID that the image's /etc/passwd does not name, as OpenShift assigns them.
            "--set", f"podSecurityContext.runAsUser={ARBITRARY_UID}",
            "--set-json", f"nodeSelector={json.dumps(self.placement.node_selector)}",
            "--set-json", f"tolerations={json.dumps(self.placement.tolerations)}",
            *self.archive_values(),
        ]  # fmt: skip

    def upgrade(self, *extra: str) -> None:
        result = helm(
            self.cluster,
            "upgrade", "--install", RELEASE, str(CHART),
            "--namespace", NAMESPACE, "--create-namespace",
            "--wait", "--timeout", "240s",
            *self.values(), *extra,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def operator_pods(self) -> list[Any]:
        pods = self.core.list_namespaced_pod(NAMESPACE).items
        return [
            p
            for p in pods
            if p.metadata.deletion_timestamp is None
            and any(c.name == "operator" for c in p.spec.containers)
        ]

    def ready_operator_pods(self) -> list[Any]:
        return [
            p
            for p in self.operator_pods()
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]

    def leader(self) -> str | None:
        lease = client.CoordinationV1Api(self.cluster.api).read_namespaced_lease(
            "jobline-operator", NAMESPACE
        )
        holder: str | None = lease.spec.holder_identity
        return holder

    def wait_ready(self, replicas: int = 1, timeout: float = 180) -> list[Any]:
        return wait_for(
            f"{replicas} Ready operator pod(s)",
            lambda: (p := self.ready_operator_pods()) and len(p) >= replicas and p,
            timeout,
        )


@pytest.fixture(scope="session")
def release(cluster: Cluster, placement: Placement, images: Images) -> Iterator[Release]:
    installed = Release(cluster, placement, images, find_log_store(cluster))
    installed.upgrade()
    installed.wait_ready()
    yield installed
    helm(cluster, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")


class RealJobline(Jobline):
    """Pipelines whose pods run real containers on the real node."""

    def __init__(self, cluster: Cluster, namespace: str, placement: Placement, images: Images):
        super().__init__(cluster, namespace)
        self.placement = placement
        self.images = images

    def real_pipeline(
        self, name: str, script: str, pod: dict[str, Any] | None = None, **spec: Any
    ) -> dict[str, Any]:
        """A Pipeline whose container runs `script` with busybox's sh."""
        container = {
            "name": "main",
            "image": self.images.busybox,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script],
        }
        return self.placed_pipeline(name, {"containers": [container], **(pod or {})}, **spec)

    def placed_pipeline(self, name: str, pod_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": {"template": {"spec": self.placement.pod_spec(pod_spec)}, **spec},
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            "jobline.dev", "v1alpha1", self.namespace, "pipelines", body
        )
        return created

    def pod_of(self, run: str) -> Any:
        return wait_for(f"the pod of {run}", lambda: (p := self.pods(run)) and p[0])


@pytest.fixture
def jl(
    cluster: Cluster, namespace: str, release: Release, placement: Placement, images: Images
) -> RealJobline:
    del release  # the operator that serves the runs
    return RealJobline(cluster, namespace, placement, images)


def seconds_between(start: str, end: str) -> float:
    def parse(s: str) -> dt.datetime:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def wait_gone(what: str, probe: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not probe():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what} to go")
