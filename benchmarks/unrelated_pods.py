"""What a cluster full of pods that are not Jobline's costs the operator.

    .venv/bin/python benchmarks/unrelated_pods.py [--pods 1000]

Starts `jobline operator` on the local control plane (or KUBECONFIG), lets it
settle, then measures its CPU time and memory over the same length of time
twice: once idle, once while N unrelated pods are created, scheduled and run
(by kwok) in another namespace. The operator watches only objects with the
jobline.dev/pipelinejob label, selected by the apiserver, so both columns
should match.
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import local
from kubernetes import client, config


def measure(pid: int, seconds: float, work: object = None) -> tuple[float, float]:
    cpu0 = local.cpu_seconds(pid)
    start = time.monotonic()
    if callable(work):
        work()
    time.sleep(max(0.0, seconds - (time.monotonic() - start)))
    return local.cpu_seconds(pid) - cpu0, local.rss_mib(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    kubeconfig = local.kubeconfig()
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    operator = local.start_operator(kubeconfig)
    ns = f"noise-{uuid.uuid4().hex[:6]}"
    try:
        time.sleep(5)  # startup: imports, lists and watches
        idle_cpu, idle_rss = measure(operator.pid, args.seconds)
        core.create_namespace({"metadata": {"name": ns}})

        def create_pods() -> None:
            def one(i: int) -> None:
                core.create_namespaced_pod(
                    ns,
                    {
                        "metadata": {"name": f"noise-{i}", "labels": {"app": "noise"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                    },
                )

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(one, range(args.pods)))

        busy_cpu, busy_rss = measure(operator.pid, args.seconds, create_pods)
        running = sum(1 for p in core.list_namespaced_pod(ns).items if p.status.phase == "Running")
    finally:
        operator.terminate()
        operator.wait(timeout=20)
        core.delete_namespace(ns)
    print(f"\noperator over {args.seconds:.0f} s; {running}/{args.pods} unrelated pods Running\n")
    print("|                       | idle cluster | + unrelated pods |")
    print("|-----------------------|--------------|------------------|")
    print(f"| operator CPU time (s) | {idle_cpu:12.2f} | {busy_cpu:16.2f} |")
    print(f"| operator RSS (MiB)    | {idle_rss:12.1f} | {busy_rss:16.1f} |")


if __name__ == "__main__":
    main()
