"""Fixtures and helpers for tests of the operator: CRDs installed, the operator
running as its own process (`jobline operator`), Pipelines and runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.crds import definitions
from jobline.models import API_GROUP, API_VERSION, TERMINAL_PHASES
from tests.conftest import Cluster, find_log_store, wait_for


class Operator:
    """`jobline operator` as a child process that a test may kill and start again."""

    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        namespaces: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.namespaces = namespaces
        self.extra_args = extra_args
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()
        self.health_port = free_port()

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1", **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobline.cli",
                "operator",
                "--metrics-address",
                f"127.0.0.1:{self.metrics_port}",
                "--health-address",
                f"127.0.0.1:{self.health_port}",
                *(f"--namespace={ns}" for ns in self.namespaces),
                *self.extra_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when a node dies."""
        if self.process:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def install_crds(cluster: Cluster) -> None:
    ext = client.ApiextensionsV1Api(cluster.api)
    for manifest in definitions().values():
        name = manifest["metadata"]["name"]
        try:
            current = ext.read_custom_resource_definition(name)
            manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, manifest)
        except ApiException as e:
            if e.status != 404:
                raise
            ext.create_custom_resource_definition(manifest)

        def established(name: str = name) -> bool:
            crd = ext.read_custom_resource_definition(name)
            return any(
                c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
            )

        wait_for(f"CRD {name}", established)


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Operator]:
    folder = tmp_path_factory.mktemp("operator")
    kubeconfig = cluster.kubeconfig
    if request.config.getoption("--operator-as-chart"):
        from tests.cluster.chart import install, service_account_kubeconfig

        install(cluster)  # the chart's CRDs, ServiceAccount and RBAC
        kubeconfig = service_account_kubeconfig(cluster, folder / "operator.kubeconfig")
    else:
        install_crds(cluster)
    log_path = folder / "operator.log"
    store = find_log_store(cluster)  # the operator of `make run` archives logs there too
    op = Operator(kubeconfig, log_path, env=store.env if store else None)
    op.start()
    try:
        yield op
    finally:
        op.stop()
        if os.environ.get("JOBLINE_TEST_SHOW_OPERATOR_LOG"):
            sys.stderr.write(log_path.read_text())


class Jobline:
    """Pipelines and runs in one test namespace."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(cluster.api)
        self.batch = client.BatchV1Api(cluster.api)
        self.core = client.CoreV1Api(cluster.api)

    def pipeline(
        self,
        name: str,
        annotations: dict[str, str] | None = None,
        containers: list[dict[str, Any]] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": {
                "template": {
                    "metadata": {"annotations": annotations or {}},
                    "spec": {
                        "containers": containers
                        or [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]
                    },
                },
                **spec,
            },
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, "pipelines", body
        )
        return created

    def start(self, name: str, pipeline: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "PipelineJob",
            "metadata": {"name": name},
            "spec": {"pipelineRef": {"name": pipeline}, **spec},
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, "pipelinejobs", body
        )
        return created

    def run(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, "pipelinejobs", name
        )
        return got

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.run(name).get("status") or {})

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, "pipelinejobs", name, {"spec": spec}
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, "pipelinejobs", name
        )

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            f"{name} to reach {' or '.join(phases)}",
            lambda: (s := self.status(name)).get("phase") in phases and s,
            timeout,
        )

    def wait_reason(
        self, name: str, reason: str, timeout: float = 60, interval: float = 0.25
    ) -> dict[str, Any]:
        return wait_for(
            f"{name} to say {reason}",
            lambda: (s := self.status(name)).get("reason") == reason and s,
            timeout,
            interval,
        )

    def wait_done(self, name: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_phase(name, *TERMINAL_PHASES, timeout=timeout)

    def jobs(self) -> list[Any]:
        return list(self.batch.list_namespaced_job(self.namespace).items)

    def pods(self, run: str) -> list[Any]:
        return list(
            self.core.list_namespaced_pod(
                self.namespace, label_selector=f"jobline.dev/pipelinejob={run}"
            ).items
        )

    def main_env(self, run: str) -> dict[str, str]:
        [job] = [j for j in self.jobs() if j.metadata.name == run]
        container = job.spec.template.spec.containers[0]
        return {e.name: e.value for e in container.env or []}


@pytest.fixture
def jl(cluster: Cluster, namespace: str, operator: Operator) -> Jobline:
    return Jobline(cluster, namespace)


def eventually_gone(what: str, probe: Any, timeout: float = 60) -> None:
    """Waits until probe() is empty or raises 404."""

    def gone() -> bool:
        try:
            return not probe()
        except ApiException as e:
            return e.status == 404

    wait_for(what, gone, timeout)


def pipeline_status(jl: Jobline, name: str) -> dict[str, Any]:
    got = jl.custom.get_namespaced_custom_object(
        API_GROUP, API_VERSION, jl.namespace, "pipelines", name
    )
    return dict(got.get("status") or {})


def runs_of(jl: Jobline, pipeline: str) -> list[dict[str, Any]]:
    items = jl.custom.list_namespaced_custom_object(
        API_GROUP, API_VERSION, jl.namespace, "pipelinejobs"
    )["items"]
    return [r for r in items if r["spec"]["pipelineRef"]["name"] == pipeline]


def events_of(jl: Jobline, kind: str, name: str) -> list[Any]:
    return list(
        jl.core.list_namespaced_event(
            jl.namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
        ).items
    )
