"""Does the operator hear of a run deleted while its watches were down? Our informers
and kopf's watches (JOBLINE_WATCHER=kopf), one after the other.

    .venv/bin/python benchmarks/deleted_while_down.py                      # a 10 s freeze
    .venv/bin/python benchmarks/deleted_while_down.py --freeze-seconds 340 --churn 5000
    .venv/bin/python benchmarks/deleted_while_down.py --restart-apiserver     # a 410 re-list

For each watcher: an operator of its own, watching only a namespace of its own; a
Pipeline whose pods run long, and a run of it, RUNNING; then the operator is frozen
(SIGSTOP), the run deleted, and, with --churn N, N other runs created and deleted in a
second namespace the operator does not watch (the apiserver's watch cache of runs is one
for all namespaces: they push the operator's last resourceVersion out of it). After
--freeze-seconds the operator is woken (SIGCONT) and given --wait-seconds to report the
deletion.

What it shows, per watcher: whether the run's DELETED reached the controllers' handler
(jobline_watch_events_total{kind="PipelineJob",event="DELETED"}); whether the run is
still in the operator's cache afterwards (jobline_runs_active of the namespace, counted
from the cache: a run that is gone but still counted holds its Pipeline's slot); and
whether the operator listed runs again after the freeze (`list pipelinejobs` requests in
the local plane's audit log), that is, whether its watch resumed or started over.

A short freeze leaves the watch connection open, or lets it resume from its last
resourceVersion: both watchers see the DELETED that the apiserver kept. To force a
re-list, the watch must end and its version must be gone from the apiserver's watch cache
when it resumes: freeze longer than the informers' watch timeout (300 s; kopf's own
stream gives up after 70 s of silence, settings.watching.inactivity_timeout) with enough
churn. Then our informers compare the new list with their store and report what
vanished as DELETED; kopf lists again and reports only what it lists (see
kopf/_cogs/clients/watching.py, continuous_watch).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import local
from burst import GROUP, VERSION, Bench, sum_by

sys.path.insert(0, str(local.REPO))
from tests.faults import plane


def run_body(name: str, pipeline: str) -> dict[str, object]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineJob",
        "metadata": {"name": name},
        "spec": {"pipelineRef": {"name": pipeline}},
    }


def gauge(bench: Bench, name: str, namespace: str) -> float:
    """A gauge of the operator's /metrics for one namespace (0 when absent)."""
    text = bench._metrics() or ""
    return sum_by(text, name, "namespace").get(namespace, 0.0)


def deletions(bench: Bench) -> float:
    text = bench._metrics() or ""
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("jobline_watch_events_total{")
        and 'kind="PipelineJob"' in line
        and 'event="DELETED"' in line
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def churn(bench: Bench, namespace: str, count: int, threads: int) -> None:
    """`count` runs created and deleted in `namespace` (of a Pipeline that does not exist:
    no operator watches there)."""

    def one(i: int) -> None:
        name = f"churn-{i}"
        bench.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "pipelinejobs", run_body(name, "none")
        )
        bench.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "pipelinejobs", name
        )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))


def release_pods(bench: Bench, timeout: float = 30) -> None:
    """Waits for the run's pods to go; any the operator did not release (its finalizer,
    jobline.dev/record-outcome) are released here, so that the namespace can go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not bench.core.list_namespaced_pod(bench.ns).items:
            return
        time.sleep(1)
    for pod in bench.core.list_namespaced_pod(bench.ns).items:
        print(f"    releasing pod {pod.metadata.name} (still held)", file=sys.stderr)
        bench.core.patch_namespaced_pod(
            pod.metadata.name, bench.ns, {"metadata": {"finalizers": None}}
        )


def measure(args: argparse.Namespace, watcher: str) -> list[str]:
    bench = Bench(watcher=watcher, namespaced=True)
    churn_ns = f"{bench.ns}-churn"
    frozen = False
    try:
        if args.churn:
            bench.core.create_namespace({"metadata": {"name": churn_ns}})
        bench.pipeline("down", bench.template(args.pod_seconds), concurrencyPolicy="Allow")
        bench.wait_ready()
        bench.create_run("down-1", "down")
        bench.seen.wait("run", "down-1", "RUNNING", timeout=120)
        deadline = time.monotonic() + 30
        while gauge(bench, "jobline_runs_active", bench.ns) < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("the operator's cache never showed the run RUNNING")
            time.sleep(0.2)
        deleted0 = deletions(bench)

        os.kill(bench.operator.pid, signal.SIGSTOP)
        frozen = True
        started = time.monotonic()
        if args.restart_apiserver:
            # Every watch connection is cut before the deletion (nothing of it can wait in
            # a socket's buffer), and after it the versions the watches would resume from
            # are compacted away: they come back to 410 Gone and must list again.
            print(f"    {watcher}: apiserver restarted", file=sys.stderr)
            plane.start("kube-apiserver", plane.kill("kube-apiserver"))
            bench.wait_serving()
        bench.custom.delete_namespaced_custom_object(
            GROUP, VERSION, bench.ns, "pipelinejobs", "down-1"
        )
        if args.churn:
            print(f"    {watcher}: churning {args.churn} runs while frozen", file=sys.stderr)
            churn(bench, churn_ns, args.churn, args.threads)
        if args.restart_apiserver:
            plane.compact_etcd()
        time.sleep(max(0.0, args.freeze_seconds - (time.monotonic() - started)))
        froze = time.monotonic() - started
        bench.audit.mark()
        os.kill(bench.operator.pid, signal.SIGCONT)
        frozen = False

        deadline = time.monotonic() + args.wait_seconds
        while time.monotonic() < deadline and deletions(bench) <= deleted0:
            time.sleep(0.5)
        time.sleep(3)  # the audit log's last lines land
        saw_deleted = deletions(bench) > deleted0
        still_cached = gauge(bench, "jobline_runs_active", bench.ns) >= 1
        relists = bench.audit.counts().get("list pipelinejobs", 0) if bench.audit.path else None
        relisted = "?" if relists is None else ("yes" if relists else "no")
        return [
            watcher,
            f"{froze:.0f}",
            str(args.churn),
            relisted,
            "yes" if saw_deleted else "NO",
            "YES (a ghost)" if still_cached else "no",
        ]
    finally:
        if frozen:
            os.kill(bench.operator.pid, signal.SIGCONT)
        release_pods(bench)
        if args.churn:
            bench.core.delete_namespace(churn_ns)
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--watcher", choices=["informers", "kopf", "both"], default="both")
    parser.add_argument("--freeze-seconds", type=float, default=10, help="how long it is frozen")
    parser.add_argument(
        "--churn", type=int, default=0, help="runs created and deleted elsewhere meanwhile"
    )
    parser.add_argument("--threads", type=int, default=8, help="client threads of the churn")
    parser.add_argument(
        "--restart-apiserver",
        action="store_true",
        help="local plane: restart the apiserver and compact etcd while frozen (a 410 re-list)",
    )
    parser.add_argument(
        "--wait-seconds", type=float, default=60, help="how long the woken operator is given"
    )
    parser.add_argument("--pod-seconds", type=float, default=3600, help="the run's pod's time")
    args = parser.parse_args()
    print(f"operator code: {local.operator_code()}; machine: {local.machine()}")
    watchers = ["informers", "kopf"] if args.watcher == "both" else [args.watcher]
    rows = [measure(args, watcher) for watcher in watchers]
    print("\n### A run deleted while the operator was frozen\n")
    print(
        "| watcher | frozen (s) | runs churned | listed runs again | DELETED handled "
        "| run still cached |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
