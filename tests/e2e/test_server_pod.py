"""The chart's server (server.enabled): the Jobs API and the dashboard answer through
their Service, reached as a person reaches it with `kubectl port-forward`."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.cluster.server_fixtures import RUN_PIPELINES, caller_token
from tests.conftest import Cluster, kubectl_binary, wait_for
from tests.e2e.conftest import NAMESPACE, RELEASE, RealJobline, Release


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server_url(cluster: Cluster, release: Release) -> Iterator[str]:
    del release
    port = _free_port()
    forward = subprocess.Popen(
        [kubectl_binary(), "--kubeconfig", cluster.kubeconfig, "--namespace", NAMESPACE,
         "port-forward", f"service/{RELEASE}-server", f"{port}:80", "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for("kubectl port-forward to the server's Service", answers, timeout=60)
        yield url
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_jobs_api_and_dashboard_through_the_service(
    cluster: Cluster, jl: RealJobline, server_url: str
) -> None:
    token = caller_token(cluster, jl.namespace, "runner", RUN_PIPELINES)
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{server_url}/api/v1/namespaces/{jl.namespace}"
    jl.real_pipeline("api", "for i in 1 2 3 4; do echo step $i; sleep 1; done")
    started = requests.post(f"{api}/pipelines/api/jobs", headers=headers, timeout=30)
    assert started.status_code == 201, started.text
    name = started.json()["name"]
    # Followed from the first line, the stream ends by itself when the container ends.
    followed = requests.get(
        f"{api}/jobs/{name}/logs",
        headers={**headers, "Accept": "application/x-ndjson"},
        params={"follow": "true"},
        timeout=120,
    )
    assert followed.status_code == 200, followed.text
    assert [json.loads(x)["line"] for x in followed.text.splitlines()] == [
        f"step {i}" for i in range(1, 5)
    ]
    job = wait_for(
        "the job to be COMPLETE",
        lambda: (j := requests.get(f"{api}/jobs/{name}", headers=headers, timeout=30).json())
        .get("status") == "COMPLETE" and j,
    )  # fmt: skip
    assert job["exitCode"] == 0
    # Lists come from the server's index of runs, watched with its own ServiceAccount:
    # the chart lets it, and its watch was never refused.
    listed = requests.get(f"{api}/jobs", headers=headers, timeout=30).json()["items"]
    assert name in [j["name"] for j in listed]
    kubectl = [kubectl_binary(), "--kubeconfig", cluster.kubeconfig, "--namespace", NAMESPACE]
    account = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-server"
    for verb in ("list", "watch"):
        may = subprocess.run([*kubectl, "auth", "can-i", verb, "pipelinejobs.jobline.dev",
                              "--all-namespaces", "--as", account],
                             capture_output=True, text=True)  # fmt: skip
        assert may.stdout.strip() == "yes", may.stdout + may.stderr
    server_log = subprocess.run(
        [*kubectl, "logs", f"deployment/{RELEASE}-server"], capture_output=True, text=True
    )
    assert server_log.returncode == 0, server_log.stderr
    # Refused, never: a 429 while the apiserver's watch cache of a just-installed CRD
    # initializes is retried in 0.5 s, and is no refusal.
    assert "watching PipelineJobs failed (answered 403" not in server_log.stdout + server_log.stderr
    # Without a token the API refuses; the dashboard's page loads and offers sign-in.
    assert requests.get(f"{api}/jobs", timeout=30).status_code == 401
    page = requests.get(f"{server_url}/", timeout=30)
    assert page.status_code == 200
    assert "<title>" in page.text and "Jobline" in page.text
    assert requests.get(f"{server_url}/static/app.js", timeout=30).status_code == 200
