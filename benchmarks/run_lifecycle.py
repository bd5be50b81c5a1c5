"""Latency and API cost of one run, measured on a cluster with Jobline running.

    .venv/bin/python benchmarks/run_lifecycle.py [--runs 10]

Starts its own operator (`jobline operator`) against the local control plane
(or KUBECONFIG), runs a 1-second pipeline N times one after another, and
prints medians of:
  - create -> Job:   PipelineJob created until its Job exists (seen by a watch)
  - pod end -> final: pod Succeeded (seen by a watch) until the run is COMPLETE
  - API requests the operator made per run, from the apiserver's audit log
    (the local plane audits every request; by user agent "jobline-operator"
    and "kopf"; long-lived watches are counted apart)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import local
from kubernetes import client, config, watch
from local import CLUSTER_SH, REPO

GROUP, VERSION = "jobline.dev", "v1alpha1"


class Seen:
    """First time each (kind, name, state) was seen by a watch."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str, str], float] = {}
        self.lock = threading.Lock()

    def mark(self, kind: str, name: str, state: str) -> None:
        with self.lock:
            self.at.setdefault((kind, name, state), time.monotonic())

    def wait(self, kind: str, name: str, state: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if (kind, name, state) in self.at:
                    return self.at[(kind, name, state)]
            time.sleep(0.005)
        raise TimeoutError(f"{kind} {name} never reached {state}")


def watch_forever(list_fn: Any, on_event: Any, **kw: Any) -> None:
    while True:
        try:
            for event in watch.Watch().stream(list_fn, timeout_seconds=120, **kw):
                on_event(event["raw_object"])
        except Exception:
            time.sleep(0.1)


def audit_counts(path: Path, since_line: int) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    lines = path.read_text().splitlines()
    for line in lines[since_line:]:
        event = json.loads(line)
        agent = event.get("userAgent", "")
        if not (agent.startswith("jobline-operator") or agent.startswith("kopf")):
            continue
        if event.get("stage") != "ResponseComplete":
            continue
        resource = (event.get("objectRef") or {}).get("resource", "?")
        sub = (event.get("objectRef") or {}).get("subresource")
        counts[f"{event['verb']} {resource}{'/' + sub if sub else ''}"] += 1
    return counts, len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    kubeconfig = local.kubeconfig()
    audit = Path(
        subprocess.run(
            ["bash", str(CLUSTER_SH), "audit-log"], stdout=subprocess.PIPE, text=True, check=True
        ).stdout.strip()
    )
    api = config.new_client_from_config(config_file=kubeconfig)
    core, batch, custom = (
        client.CoreV1Api(api),
        client.BatchV1Api(api),
        client.CustomObjectsApi(api),
    )
    crds = subprocess.run(
        [sys.executable, "-m", "jobline.cli", "crds"], check=True, stdout=subprocess.PIPE
    ).stdout
    subprocess.run(
        [str(REPO / "hack" / "kubectl.sh"), "apply", "--server-side", "-f", "-"],
        input=crds,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )

    ns = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    operator = local.start_operator(kubeconfig)
    seen = Seen()

    def on_job(obj: dict[str, Any]) -> None:
        seen.mark("job", obj["metadata"]["name"], "exists")

    def on_pod(obj: dict[str, Any]) -> None:
        run = obj["metadata"].get("labels", {}).get("jobline.dev/pipelinejob", "")
        seen.mark("pod", run, obj.get("status", {}).get("phase", ""))

    def on_run(obj: dict[str, Any]) -> None:
        seen.mark("run", obj["metadata"]["name"], (obj.get("status") or {}).get("phase", ""))

    for target in (
        (batch.list_namespaced_job, on_job, {"namespace": ns}),
        (core.list_namespaced_pod, on_pod, {"namespace": ns}),
        (
            custom.list_namespaced_custom_object,
            on_run,
            {"group": GROUP, "version": VERSION, "namespace": ns, "plural": "pipelinejobs"},
        ),
    ):
        threading.Thread(
            target=watch_forever, args=target[:2], kwargs=target[2], daemon=True
        ).start()
    try:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "pipelines",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Pipeline",
                "metadata": {"name": "bench"},
                "spec": {
                    # Allow: each run starts at once, so the figures are the operator's own
                    # (Queue would add the wait for the previous run's Job to finish).
                    "concurrencyPolicy": "Allow",
                    "template": {
                        "metadata": {"annotations": {"sim.jobline.dev/log": "one\ntwo\nthree"}},
                        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
                    },
                },
            },
        )
        time.sleep(3)  # the operator's startup lists and watches are not part of a run
        _, start_line = audit_counts(audit, 0)
        to_job, to_final = [], []
        for i in range(args.runs):
            name = f"bench-{i}"
            t0 = time.monotonic()
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                "pipelinejobs",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "PipelineJob",
                    "metadata": {"name": name},
                    "spec": {"pipelineRef": {"name": "bench"}},
                },
            )
            to_job.append(seen.wait("job", name, "exists") - t0)
            pod_done = seen.wait("pod", name, "Succeeded")
            to_final.append(seen.wait("run", name, "COMPLETE") - pod_done)
        time.sleep(2)  # let the last audit events land
        counts, _ = audit_counts(audit, start_line)
    finally:
        operator.terminate()
        operator.wait(timeout=20)
        core.delete_namespace(ns)

    def row(label: str, values: list[float]) -> str:
        ms = sorted(v * 1000 for v in values)
        return (
            f"| {label:<22} | {statistics.median(ms):8.0f} | {ms[int(len(ms) * 0.9) - 1]:8.0f} "
            f"| {ms[0]:8.0f} | {ms[-1]:8.0f} |"
        )

    print(f"\n{args.runs} runs, one after another, on {api.configuration.host}\n")
    print("| latency (ms)           |   median |      p90 |      min |      max |")
    print("|------------------------|----------|----------|----------|----------|")
    print(row("create -> Job", to_job))
    print(row("pod end -> final phase", to_final))
    total = sum(counts.values())
    print(
        f"\nAPI requests by the operator: {total} for {args.runs} runs "
        f"= {total / args.runs:.1f} per run\n"
    )
    print("| request                              | per run |")
    print("|--------------------------------------|---------|")
    for request, count in counts.most_common():
        print(f"| {request:<36} | {count / args.runs:7.1f} |")


if __name__ == "__main__":
    main()
