"""A soak of run churn: runs created and deleted again and again, many deleted while the
operator is still acting on them (a Job being created, a pod being let go, a status being
written). Afterwards the operator must keep nothing of them: its per-run state
(`jobline_tracked_runs`: cached runs, parsed models, what it did, log follows, verdicts)
falls back to zero, and its memory stays flat between the checkpoints.

    .venv/bin/python benchmarks/soak.py [--cycles 5000] [--checkpoints 500 5000]

Prints, at each checkpoint (once every run deleted so far is gone from the apiserver
and the operator has settled), the tracked counts and the operator's RSS, then the
RSS change from the first checkpoint to the last.
"""

from __future__ import annotations

import argparse
import random
import re
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from local import free_port, install_crds, kubeconfig, rss_mib, start_operator

from jobline.kube import config as kube_config

GROUP, VERSION = "jobline.dev", "v1alpha1"
TRACKED = re.compile(r'^jobline_tracked_runs\{kind="(\w+)"\} (\S+)$', re.M)


def tracked(port: int) -> dict[str, int]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {kind: int(float(value)) for kind, value in TRACKED.findall(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5000, help="runs created and deleted")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--threads", type=int, default=8, help="cycles at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    config = kubeconfig()
    install_crds(config)
    api = kube_config.api_client(kube_config.load(config)[0], "jobline-soak", args.threads + 4)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"soak-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    port = free_port()
    operator = start_operator(config, f"--metrics-address=127.0.0.1:{port}", "--namespace", ns)
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "pipelines", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Pipeline", "metadata": {"name": "churn"},
            "spec": {"concurrencyPolicy": "Allow", "template": {
                "metadata": {"annotations": {"sim.jobline.dev/duration": "20s"}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}},
        })  # fmt: skip
        done = 0
        lock = threading.Lock()

        def cycle(i: int) -> None:
            nonlocal done
            name = f"churn-{i}"
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, "pipelinejobs", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "PipelineJob",
                "metadata": {"name": name}, "spec": {"pipelineRef": {"name": "churn"}},
            })  # fmt: skip
            time.sleep(random.uniform(0, 0.6))  # before, during or after the operator acts
            try:
                custom.delete_namespaced_custom_object(
                    GROUP, VERSION, ns, "pipelinejobs", name, propagation_policy="Background"
                )
            except ApiException as e:
                if e.status != 404:
                    raise
            with lock:
                done += 1

        rows = []
        started = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            for end in args.checkpoints:
                list(pool.map(cycle, range(done, min(end, args.cycles))))
                rows.append((done, *settle(custom, core, ns, port, operator.pid)))
        print(f"| cycles | settled after (s) | {' | '.join(rows[0][2])} | operator RSS (MiB) |")
        print("|---|---|" + "---|" * len(rows[0][2]) + "---|")
        for cycles, waited, counts, rss in rows:
            figures = " | ".join(str(v) for v in counts.values())
            print(f"| {cycles} | {waited:.0f} | {figures} | {rss:.1f} |")
        first, last = rows[0][3], rows[-1][3]
        print(f"\nRSS {first:.1f} MiB after {rows[0][0]} cycles, {last:.1f} MiB after "
              f"{rows[-1][0]}: {100 * (last - first) / first:+.1f}%; "
              f"{time.monotonic() - started:.0f} s in all")  # fmt: skip
    finally:
        # The namespace goes while the operator still runs: its pods carry the operator's
        # finalizer, which only a running operator lets go.
        core.delete_namespace(ns)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                core.read_namespace(ns)
            except ApiException as e:
                if e.status == 404:
                    break
            time.sleep(2)
        operator.terminate()
        operator.wait(30)


def settle(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, ns: str, port: int, pid: int
) -> tuple[float, dict[str, int], float]:
    """Waits for the runs to be gone from the apiserver, their Jobs and pods too (the
    garbage collector takes minutes after a burst of deletions: the operator caches them
    as long as they exist), and the operator's per-run state to fall to zero (or 900 s);
    returns how long that took, the counts and the RSS."""
    start = time.monotonic()
    while time.monotonic() - start < 900:
        left = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "pipelinejobs")["items"]
        counts = tracked(port)
        if not left and not any(counts.values()):
            break
        time.sleep(2)
    time.sleep(2)  # the garbage collector's Jobs and pods, and the operator's last events
    return time.monotonic() - start, tracked(port), rss_mib(pid)


if __name__ == "__main__":
    main()
