"""`jobline server` as a child process, and callers of it: ServiceAccounts with tokens and
only the RBAC rules a test gives them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.cluster.jobline_fixtures import Operator, free_port
from tests.conftest import Cluster, find_log_store, wait_for

READ_RUNS = [
    {"apiGroups": ["jobline.dev"], "resources": ["pipelines", "pipelinejobs"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]  # fmt: skip
RUN_PIPELINES = [
    *READ_RUNS,
    {"apiGroups": ["jobline.dev"], "resources": ["pipelinejobs"],
     "verbs": ["create", "patch", "delete"]},
]  # fmt: skip


class Server:
    """`jobline server` on a free port of 127.0.0.1; `call` sends real HTTP to it."""

    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        credentials: str,
        *options: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobline.cli", "--kubeconfig", kubeconfig, "server",
             "--port", str(self.port), "--credentials", credentials, *options],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for("the server to listen", self._listening, timeout=30)

    def _listening(self) -> bool:
        try:
            requests.get(f"{self.url}/api/v1/openapi.json", timeout=2)
        except requests.ConnectionError:
            return False
        return True

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if method != "GET" and "json" not in kwargs:
            headers.setdefault("Content-Type", "application/json")
        return requests.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kwargs
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _server(cluster: Cluster, _: Operator, folder: Path, credentials: str) -> Iterator[Server]:
    # The operator starts first: it installs the CRDs. The server reads the log archive
    # the operator writes, as the chart configures both.
    store = find_log_store(cluster)
    log_path = folder / f"server-{credentials}.log"
    server = Server(cluster.kubeconfig, log_path, credentials, env=store.env if store else None)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server(
    cluster: Cluster, operator: Operator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server as in a cluster: every request must bring the caller's token."""
    yield from _server(cluster, operator, tmp_path_factory.mktemp("server"), "token")


@pytest.fixture(scope="session")
def local_server(
    cluster: Cluster, operator: Operator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server as on a laptop: requests without a token act as the kubeconfig's user."""
    yield from _server(cluster, operator, tmp_path_factory.mktemp("server"), "kubeconfig")


def caller_token(cluster: Cluster, namespace: str, name: str, rules: list[dict[str, Any]]) -> str:
    """A token of a new ServiceAccount `name` in `namespace` that may do only `rules` there
    (no rules: nothing at all)."""
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    if rules:
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    token: str = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    return token
