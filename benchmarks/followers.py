"""What clients following logs (`follow=true`) do to everyone else: how long `GET .../jobs`
and `/healthz` take while N readers follow a running run's log.

    .venv/bin/python benchmarks/followers.py [--followers 0 20 60 99] [--samples 10]

Starts its own operator and `jobline server --credentials kubeconfig` on the local plane
(or KUBECONFIG), in a namespace of its own. PYTHONPATH=<another checkout>/operator measures
that checkout's server (one without --max-followers: pass --no-max-followers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

import requests
from kubernetes import client, config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import local

PIPELINE = {
    "apiVersion": "jobline.dev/v1alpha1",
    "kind": "Pipeline",
    "metadata": {"name": "long"},
    "spec": {
        "template": {
            "metadata": {
                "annotations": {  # a line every 6 s for 30 minutes
                    "sim.jobline.dev/duration": "1800s",
                    "sim.jobline.dev/log-lines": "300",
                    "sim.jobline.dev/log-over": "1800s",
                }
            },
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}]},
        }
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, nargs="+", default=[0, 20, 60, 99])
    parser.add_argument("--samples", type=int, default=10, help="Requests timed per figure.")
    parser.add_argument(
        "--no-max-followers", action="store_true", help="For a server without the option."
    )
    args = parser.parse_args()
    kubeconfig = local.kubeconfig()
    local.install_crds(kubeconfig)
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"follow-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    operator = local.start_operator(kubeconfig, f"--namespace={ns}")
    port = local.free_port()
    limit = [] if args.no_max_followers else ["--max-followers", str(max(args.followers) + 1)]
    server = local.start_server(kubeconfig, port, "--credentials", "kubeconfig", *limit)
    base = f"http://127.0.0.1:{port}"
    jobs = f"{base}/api/v1/namespaces/{ns}/jobs"
    readers: list[Reader] = []
    try:
        custom.create_namespaced_custom_object("jobline.dev", "v1alpha1", ns, "pipelines", PIPELINE)
        custom.create_namespaced_custom_object(
            "jobline.dev", "v1alpha1", ns, "pipelinejobs",
            {"apiVersion": "jobline.dev/v1alpha1", "kind": "PipelineJob",
             "metadata": {"name": "long-1"}, "spec": {"pipelineRef": {"name": "long"}}},
        )  # fmt: skip
        wait_running(jobs)
        rows = []
        for wanted in sorted(args.followers):
            print(f"==> {wanted} followers", file=sys.stderr)
            while len(readers) < wanted:
                readers.append(Reader(f"{jobs}/long-1/logs"))
            time.sleep(5)  # every reader is waiting on the apiserver
            listing, health = timed(jobs, args.samples), timed(f"{base}/healthz", args.samples)
            rows.append((wanted, sum(r.streaming() for r in readers), listing, health))
        print(f"\nWhile N readers follow a run's log ({local.machine()}), {args.samples} "
              "requests each, seconds:\n")  # fmt: skip
        print("| followers | streaming | GET jobs median | GET jobs max | /healthz median "
              "| /healthz max |\n|---|---|---|---|---|---|")  # fmt: skip
        for n, streaming, listing, health in rows:
            print(f"| {n} | {streaming} | {statistics.median(listing):.2f} | {max(listing):.2f} "
                  f"| {statistics.median(health):.2f} | {max(health):.2f} |")  # fmt: skip
    finally:
        print("==> cleaning up", file=sys.stderr)
        # The readers are left to this process' exit: closing a response that another
        # thread is reading blocks until the server ends it.
        server.terminate()
        operator.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a server that waits for its followers to end
            server.kill()
            server.wait()
        operator.wait()
        core.delete_namespace(ns)


def wait_running(jobs: str) -> None:
    for _ in range(120):
        try:
            if requests.get(f"{jobs}/long-1", timeout=10).json().get("status") == "RUNNING":
                return
        except requests.RequestException:
            pass  # the server is starting
        time.sleep(1)
    sys.exit("the run did not start within 2 minutes")


class Reader:
    """A client following the log, reading it in a thread of its own."""

    def __init__(self, url: str) -> None:
        self.response = requests.get(
            url, params={"follow": "true"}, stream=True, timeout=(10, None)
        )
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            for _ in self.response.iter_lines():
                pass
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed at the end

    def streaming(self) -> bool:
        return self.response.status_code == 200 and self.thread.is_alive()


def timed(url: str, samples: int) -> list[float]:
    took = []
    for _ in range(samples):
        began = time.monotonic()
        requests.get(url, timeout=120).raise_for_status()
        took.append(time.monotonic() - began)
    return took


if __name__ == "__main__":
    main()
