"""Jobline beside bare Kubernetes Jobs: latency, operator cost and API requests.

    .venv/bin/python benchmarks/burst.py --runs 1000                 # a burst
    .venv/bin/python benchmarks/burst.py --mode sequential --runs 20  # one run at a time
    .venv/bin/python benchmarks/burst.py --mode queue --runs 120 --max-concurrent 3
    .venv/bin/python benchmarks/burst.py --mode log --log-mib 200     # one run, a large log
    .venv/bin/python benchmarks/burst.py --runs 1000 --archive both  # archive off, then on

Runs on the local control plane (or KUBECONFIG) with an operator process of its
own, in a namespace of its own, and prints markdown tables. Times are seen by
watches of this process; API requests are the operator's, counted from the
local plane's audit log. `PYTHONPATH=<tree>/operator` measures another tree's
operator (the "before" figures).

Modes:
  burst       N bare batch/v1 Jobs and N PipelineJobs of an Allow Pipeline with the
              same pod template, created together by a few client threads; --order
              says how the two halves are interleaved (both: two bursts, each half
              first once).
  sequential  N runs one after another: the operator's own latency and requests per run.
  queue       N runs of a Queue Pipeline with maxConcurrentRuns M: end-to-end time
              against the pods' own time, the hand-off gap, the most Jobs running at once,
              and status writes per run.
  log         one run whose log is L MiB, written over --log-seconds as a program
              would: bytes the operator read, its memory and CPU, and whether the kept
              tail is exactly the log's last lines; with the archive, the bytes written
              to the store and the time from the pod's end to the archive complete.

--archive off|on|both: the operator without the log archive, with it (the local
plane's store, or the JOBLINE_ARCHIVE_* of the environment), or both, one after the
other in one invocation (burst and log modes), with a table of the two side by side.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import local
from kubernetes import client, config

GROUP, VERSION = "jobline.dev", "v1alpha1"
IMAGE = "busybox:1.36"


class Bench:
    """A namespace with watches on Jobs, pods and runs, and an operator to measure."""

    def __init__(
        self, create_with: str = "kubectl", metrics_port: int | None = None, archive: bool = False
    ) -> None:
        self.create_with = create_with
        self.pipeline_uids: dict[str, str] = {}
        self.kubeconfig = local.kubeconfig()
        self.api = config.new_client_from_config(config_file=self.kubeconfig)
        self.api.configuration.connection_pool_maxsize = 16
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        local.install_crds(self.kubeconfig)
        self.audit = local.Audit(local.audit_log())
        self.ns = f"bench-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace({"metadata": {"name": self.ns}})
        self.seen = local.Seen()
        self.created: dict[tuple[str, str], float] = {}
        self.max_running = 0
        self._running: set[str] = set()
        self._lock = threading.Lock()
        local.start_watch(self.batch.list_namespaced_job, self._on_job, namespace=self.ns)
        local.start_watch(self.core.list_namespaced_pod, self._on_pod, namespace=self.ns)
        local.start_watch(
            self.custom.list_namespaced_custom_object,
            self._on_run,
            group=GROUP,
            version=VERSION,
            namespace=self.ns,
            plural="pipelinejobs",
        )
        self.metrics_port = metrics_port
        extra = (f"--metrics-address=127.0.0.1:{metrics_port}",) if metrics_port else ()
        store = local.log_store_env() if archive else {"JOBLINE_ARCHIVE_BUCKET": ""}
        if archive and not store:
            raise SystemExit("--archive: no log store (the local plane's, or JOBLINE_ARCHIVE_*)")
        self.operator = local.start_operator(self.kubeconfig, *extra, env=store)

    def metric(self, name: str) -> float | None:
        """A counter of the operator's /metrics; None when it has none (older code)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
                text = r.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    # --- what the watches see ---------------------------------------------

    def _on_job(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        self.seen.mark("job", name, "exists")
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond.get("status") == "True" and cond["type"] in ("Complete", "Failed"):
                self.seen.mark("job", name, cond["type"])

    def _on_pod(self, pod: dict[str, Any]) -> None:
        job = pod["metadata"].get("labels", {}).get("job-name", "")
        phase = (pod.get("status") or {}).get("phase", "")
        self.seen.mark("pod", job, "exists")
        self.seen.mark("pod", job, phase)
        with self._lock:
            if phase == "Running":
                self._running.add(job)
            else:
                self._running.discard(job)
            self.max_running = max(self.max_running, len(self._running))

    def _on_run(self, run: dict[str, Any]) -> None:
        phase = (run.get("status") or {}).get("phase") or "none"
        self.seen.mark("run", run["metadata"]["name"], phase)

    # --- objects ------------------------------------------------------------

    def template(self, pod_seconds: float, annotations: dict[str, str] | None = None) -> Any:
        return {
            "metadata": {
                "annotations": {
                    "sim.jobline.dev/duration": f"{pod_seconds:g}s",
                    **(annotations or {}),
                }
            },
            "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["true"]}]},
        }

    def pipeline(self, name: str, template: Any, **spec: Any) -> None:
        created = self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.ns,
            "pipelines",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Pipeline",
                "metadata": {"name": name},
                "spec": {"template": template, **spec},
            },
        )
        self.pipeline_uids[name] = created["metadata"]["uid"]

    def create_run(self, name: str, pipeline: str, priority: int = 0) -> None:
        """A run as `kubectl apply` creates one (name and spec only), or, with
        --create-with jobline, as `jobline start` does (with the Pipeline's label and an
        ownerReference to it, which the operator adds otherwise)."""
        metadata: dict[str, Any] = {"name": name}
        if self.create_with == "jobline":
            uid = self.pipeline_uids[pipeline]
            metadata["labels"] = {"jobline.dev/pipeline": pipeline}
            metadata["ownerReferences"] = [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Pipeline",
                    "name": pipeline,
                    "uid": uid,
                }
            ]
        self.created[("run", name)] = time.monotonic()
        self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.ns,
            "pipelinejobs",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "PipelineJob",
                "metadata": metadata,
                "spec": {"pipelineRef": {"name": pipeline}, "priority": priority},
            },
        )

    def create_bare(self, name: str, template: Any) -> None:
        """The Job a user would create instead: the same pod template, restartPolicy Never."""
        spec = {**template["spec"], "restartPolicy": "Never"}
        self.created[("bare", name)] = time.monotonic()
        self.batch.create_namespaced_job(
            self.ns,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {"backoffLimit": 0, "template": {**template, "spec": spec}},
            },
        )

    def wait_all(self, checks: list[tuple[str, str, str]], timeout: float, what: str) -> None:
        """Waits until every (kind, name, state) was seen, reporting progress on stderr."""
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while True:
            missing = [c for c in checks if self.seen.get(*c) is None]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(missing)} of {len(checks)} {what} never ended: {missing[:3]}"
                )
            if time.monotonic() - last_report > 10:
                print(
                    f"    {len(checks) - len(missing)}/{len(checks)} {what} done", file=sys.stderr
                )
                last_report = time.monotonic()
            time.sleep(0.1)

    def close(self) -> None:
        self.operator.terminate()
        try:
            self.operator.wait(timeout=20)
        except Exception:
            self.operator.kill()
        self.core.delete_namespace(self.ns)


def settle(bench: Bench, seconds: float = 4.0) -> float:
    """Lets the operator finish starting; returns its idle RSS."""
    time.sleep(seconds)
    return local.rss_mib(bench.operator.pid)


def ms_row(label: str, values: list[float]) -> str:
    cells = [local.percentile(values, p) for p in (50, 90, 99)] + [max(values, default=math.nan)]
    return f"| {label} | " + " | ".join(f"{v * 1000:,.0f}" for v in cells) + " |"


def s_row(label: str, values: list[float]) -> str:
    cells = [local.percentile(values, p) for p in (50, 90, 99)] + [max(values, default=math.nan)]
    return f"| {label} | " + " | ".join(f"{v:.2f}" for v in cells) + " |"


def requests_lines(counts: Any, runs: int) -> list[str]:
    reads, writes, watches = local.split_reads_writes(counts)
    lines = [
        f"API requests by the operator per run: {(reads + writes) / runs:.1f} "
        f"({reads / runs:.1f} reads, {writes / runs:.1f} writes; {watches} watch requests in all)",
        "",
        "| request | per run |",
        "|---|---|",
    ]
    lines += [f"| {k} | {n / runs:.2f} |" for k, n in counts.most_common()]
    return lines


# --- burst ---------------------------------------------------------------------


def pod_seconds_of(spec: str) -> list[float]:
    """ "3" -> [3]; "1-5" -> [1, 2, 3, 4, 5] (runs take them in turn)."""
    if "-" in spec:
        low, high = (int(x) for x in spec.split("-"))
        return [float(s) for s in range(low, high + 1)]
    return [float(spec)]


def burst(args: argparse.Namespace, order: str, archive: bool) -> dict[str, float]:
    bench = Bench(archive=archive)
    try:
        durations = pod_seconds_of(args.pod_seconds)
        templates = [bench.template(s) for s in durations]
        for i, template in enumerate(templates):
            bench.pipeline(f"burst-{i}", template, concurrencyPolicy="Allow")
        idle_rss = settle(bench)
        sampler = local.Sampler(bench.operator.pid)
        cpu0 = local.cpu_seconds(bench.operator.pid)
        bench.audit.mark()
        n = args.runs
        runs = [("run", f"run-{i}", i) for i in range(n)]
        bares = [("bare", f"bare-{i}", i) for i in range(n)]
        if order == "interleaved":
            tasks = [t for pair in zip(bares, runs, strict=True) for t in pair]
        elif order == "runs-first":
            tasks = runs + bares
        else:
            tasks = bares + runs

        def create(task: tuple[str, str, int]) -> None:
            kind, name, i = task
            if kind == "run":
                bench.create_run(name, f"burst-{i % len(templates)}")
            else:
                bench.create_bare(name, templates[i % len(templates)])

        started = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(create, tasks))
        created_in = time.monotonic() - started
        checks = [("run", f"run-{i}", "COMPLETE") for i in range(n)]
        checks += [("job", f"bare-{i}", "Complete") for i in range(n)]
        bench.wait_all(checks, timeout=120 + n * 1.0, what="runs and Jobs")
        time.sleep(3)  # late status writes and audit events land
        cpu = local.cpu_seconds(bench.operator.pid) - cpu0
        peak = sampler.stop()
        after = local.rss_mib(bench.operator.pid)
        counts = bench.audit.counts()
        s = bench.seen

        def series(kind: str, name_of: str, frm: str, to: tuple[str, str]) -> list[float]:
            out = []
            for i in range(n):
                name = f"{name_of}-{i}"
                start = bench.created[(kind, name)] if frm == "created" else s.get("pod", name, frm)
                end = s.get(to[0], name, to[1])
                if start is not None and end is not None:
                    out.append(max(0.0, end - start))
            return out

        run_to_job = series("run", "run", "created", ("job", "exists"))
        run_to_pod = series("run", "run", "created", ("pod", "exists"))
        bare_to_pod = series("bare", "bare", "created", ("pod", "exists"))
        run_to_final = series("run", "run", "created", ("run", "COMPLETE"))
        bare_to_final = series("bare", "bare", "created", ("job", "Complete"))
        run_pod_to_final = series("run", "run", "Succeeded", ("run", "COMPLETE"))
        bare_pod_to_final = series("bare", "bare", "Succeeded", ("job", "Complete"))
        print(
            f"\n### Burst of {n} runs and {n} bare Jobs ({order}), pods of "
            f"{args.pod_seconds} s, {args.threads} client threads, log archive "
            f"{'on' if archive else 'off'}; all created in {created_in:.1f} s\n"
        )
        print("| seconds | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|")
        print(s_row("run: created → Job exists", run_to_job))
        print(s_row("run: created → pod exists", run_to_pod))
        print(s_row("bare Job: created → pod exists", bare_to_pod))
        print(s_row("run: created → COMPLETE", run_to_final))
        print(s_row("bare Job: created → Complete", bare_to_final))
        print(s_row("run: pod Succeeded → COMPLETE", run_pod_to_final))
        print(s_row("bare Job: pod Succeeded → Complete", bare_pod_to_final))
        print()
        for label, a, b in (
            ("created → pod", run_to_pod, bare_to_pod),
            ("created → final", run_to_final, bare_to_final),
        ):
            p50 = local.percentile(a, 50) / local.percentile(b, 50)
            p99 = local.percentile(a, 99) / local.percentile(b, 99)
            print(f"- run/bare, {label}: p50 {p50:.2f}, p99 {p99:.2f}")
        print(f"- operator CPU: {cpu:.1f} s in all, {cpu / n * 1000:.0f} ms per run")
        print(
            f"- operator RSS: idle {idle_rss:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB"
        )
        print("- " + "\n".join(requests_lines(counts, n)))
        return {
            "operator CPU per run (ms)": cpu / n * 1000,
            "operator RSS peak (MiB)": peak,
            "run: created → COMPLETE, p50 (s)": local.percentile(run_to_final, 50),
            "run: created → COMPLETE, p99 (s)": local.percentile(run_to_final, 99),
            "run: pod Succeeded → COMPLETE, p50 (s)": local.percentile(run_pod_to_final, 50),
            "run: pod Succeeded → COMPLETE, p99 (s)": local.percentile(run_pod_to_final, 99),
        }
    finally:
        bench.close()


def side_by_side(title: str, off: dict[str, float], on: dict[str, float]) -> None:
    """The same figures with the log archive off and on, and their ratio."""
    print(f"\n### {title}: log archive off and on, one invocation\n")
    print("| figure | archive off | archive on | on / off |")
    print("|---|---|---|---|")
    for key, before in off.items():
        after = on[key]
        ratio = after / before if before else math.nan
        print(f"| {key} | {before:,.2f} | {after:,.2f} | {ratio:.2f} |")


# --- sequential ------------------------------------------------------------------


def sequential(args: argparse.Namespace) -> None:
    bench = Bench(args.create_with)
    try:
        # Allow: each run starts at once, so the figures are the operator's own.
        bench.pipeline(
            "seq",
            bench.template(1, {"sim.jobline.dev/log": "one\ntwo\nthree"}),
            concurrencyPolicy="Allow",
        )
        settle(bench)
        bench.audit.mark()
        to_job, to_final = [], []
        for i in range(args.runs):
            name = f"seq-{i}"
            bench.create_run(name, "seq")
            to_job.append(bench.seen.wait("job", name, "exists") - bench.created[("run", name)])
            pod_done = bench.seen.wait("pod", name, "Succeeded")
            to_final.append(bench.seen.wait("run", name, "COMPLETE") - pod_done)
        time.sleep(3)
        counts = bench.audit.counts()
        print(
            f"\n### {args.runs} runs one after another (Allow, 1 s pods), created as "
            f"{'`jobline start`' if args.create_with == 'jobline' else '`kubectl apply`'} does\n"
        )
        print("| milliseconds | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|")
        print(ms_row("created → Job exists", to_job))
        print(ms_row("pod Succeeded → COMPLETE", to_final))
        print()
        print("\n".join(requests_lines(counts, args.runs)))
    finally:
        bench.close()


# --- queue --------------------------------------------------------------------------


def queue(args: argparse.Namespace) -> None:
    bench = Bench()
    try:
        seconds = pod_seconds_of(args.pod_seconds)[0]
        bench.pipeline(
            "queue",
            bench.template(seconds),
            concurrencyPolicy="Queue",
            maxConcurrentRuns=args.max_concurrent,
            history={"successfulRuns": args.runs, "failedRuns": args.runs},
        )
        settle(bench)
        bench.audit.mark()
        cpu0 = local.cpu_seconds(bench.operator.pid)
        names = [f"q-{i}" for i in range(args.runs)]
        started = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(lambda name: bench.create_run(name, "queue"), names))
        bench.wait_all(
            [("run", n, "COMPLETE") for n in names],
            timeout=120 + args.runs * seconds * 2,
            what="runs",
        )
        elapsed = time.monotonic() - started
        time.sleep(3)
        cpu = local.cpu_seconds(bench.operator.pid) - cpu0
        counts = bench.audit.counts()
        s = bench.seen
        # The hand-off: a pod ends; how long until the next Job is created?
        ends = sorted(t for n in names if (t := s.get("pod", n, "Succeeded")) is not None)
        creations = sorted(t for n in names if (t := s.get("job", n, "exists")) is not None)
        gaps = []
        for end in ends:
            later = [c for c in creations if c >= end]
            if later:
                gaps.append(later[0] - end)
        gaps = gaps[: len(ends) - args.max_concurrent]  # the last pods free a slot nobody takes
        pod_time = args.runs * seconds / args.max_concurrent
        status_writes = counts.get("patch pipelinejobs/status", 0)
        print(
            f"\n### Queue of {args.runs} runs, maxConcurrentRuns {args.max_concurrent}, "
            f"{seconds:g} s pods\n"
        )
        print(
            f"- end to end: {elapsed:.1f} s for {pod_time:.1f} s of pod time "
            f"({elapsed / pod_time:.2f}x)"
        )
        print(f"- most pods Running at once: {bench.max_running} (limit {args.max_concurrent})")
        print(f"- run status writes: {status_writes / args.runs:.2f} per run")
        print(f"- operator CPU: {cpu / args.runs * 1000:.0f} ms per run")
        print()
        print("| seconds | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|")
        print(s_row("pod Succeeded → next Job created", gaps))
        print()
        print("\n".join(requests_lines(counts, args.runs)))
    finally:
        bench.close()


# --- log ------------------------------------------------------------------------------


def expected_line(number: int, width: int) -> str:
    """Line `number` of the simulated log (hack/cluster/sim_logs.py, generated_line)."""
    text = f"line {number}"
    return text + " " + "x" * (width - len(text) - 1) if width > len(text) + 1 else text


def large_log(args: argparse.Namespace, archive: bool) -> dict[str, float]:
    bench = Bench(metrics_port=local.free_port(), archive=archive)
    try:
        width = args.line_bytes
        lines = int(args.log_mib * 1024 * 1024 / (width + 1))
        tail = 100
        annotations = {
            "sim.jobline.dev/log-lines": str(lines),
            "sim.jobline.dev/log-line-bytes": str(width),
            "sim.jobline.dev/log-over": f"{args.log_seconds:g}s",
        }
        bench.pipeline(
            "biglog",
            bench.template(args.log_seconds + 3, annotations),
            logs={"tailLines": tail},
        )
        idle = settle(bench)
        sampler = local.Sampler(bench.operator.pid, every=0.05)
        read0 = local.bytes_read(bench.operator.pid)
        cpu0 = local.cpu_seconds(bench.operator.pid)
        log0 = bench.metric("jobline_log_bytes_read_total")
        bench.create_run("biglog-1", "biglog")
        complete = bench.seen.wait("run", "biglog-1", "COMPLETE", timeout=args.log_seconds + 600)
        pod_end = bench.seen.get("pod", "biglog-1", "Succeeded")
        time.sleep(2)
        cpu = local.cpu_seconds(bench.operator.pid) - cpu0
        read = local.bytes_read(bench.operator.pid) - read0
        log1 = bench.metric("jobline_log_bytes_read_total")
        log_read = None if log0 is None or log1 is None else log1 - log0
        peak = sampler.stop()
        status = bench.custom.get_namespaced_custom_object(
            GROUP, VERSION, bench.ns, "pipelinejobs", "biglog-1"
        )["status"]
        logs = status.get("logs") or {}
        # At most tailLines lines are kept, and at most 32 KiB: the tail is exact when its
        # lines are the log's last ones and the count is the log's.
        kept = logs.get("lines") or []
        want = [expected_line(i, width) for i in range(lines - len(kept), lines)]
        size = lines * (width + 1)
        exact = bool(kept) and kept == want and logs.get("totalLines") == lines
        archived = logs.get("archive") or {}
        mib = size / 2**20
        print(
            f"\n### One run with a {mib:.0f} MiB log "
            f"({lines:,} lines of {width + 1} bytes, "
            f"written over {args.log_seconds:g} s), tailLines {tail}, log archive "
            f"{'on' if archive else 'off'}\n"
        )
        print("| figure | value |")
        print("|---|---|")
        if log_read is not None:
            print(
                f"| bytes read from the log API (with each line's 31-byte timestamp) | "
                f"{log_read / 2**20:.1f} MiB ({log_read / size:.3f}x the log) |"
            )
        print(
            f"| bytes the operator process read in all (watches, TLS, HTTP framing) | "
            f"{read / 2**20:.1f} MiB ({read / size:.2f}x the log) |"
        )
        print(f"| operator RSS idle → peak | {idle:.0f} → {peak:.0f} MiB (+{peak - idle:.1f}) |")
        print(f"| operator CPU | {cpu:.1f} s ({cpu / mib * 1000:.0f} ms per MiB of log) |")
        ended = complete - pod_end if pod_end is not None else math.nan
        print(f"| pod Succeeded → run COMPLETE (last lines read, and archived) | {ended:.1f} s |")
        if archive:
            whole = archived.get("lines") == lines and not archived.get("error")
            print(
                f"| bytes written to the store | {archived.get('bytes', 0) / 2**20:.1f} MiB "
                f"({archived.get('lines', 0):,} lines: {'the whole log' if whole else 'NOT all'}) |"
            )
        print(
            f"| the kept {len(kept)} lines are the log's last ones | {'yes' if exact else 'NO'} |"
        )
        print(
            f"| status logs: sequence / totalLines / truncated | {logs.get('sequence')} / "
            f"{logs.get('totalLines')} / {logs.get('truncated')} (log has {lines}) |"
        )
        if not exact and kept:
            print(f"\nfirst kept line: {kept[0][:40]!r}, expected {want[0][:40]!r}")
        return {
            "log API read / log size": (log_read or math.nan) / size,
            "operator RSS peak - idle (MiB)": peak - idle,
            "operator CPU per MiB of log (ms)": cpu / mib * 1000,
            "pod Succeeded → run COMPLETE (s)": ended,
        }
    finally:
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--mode", choices=["burst", "sequential", "queue", "log"], default="burst")
    parser.add_argument("--runs", type=int, default=100, help="runs (and bare Jobs) to create")
    parser.add_argument("--pod-seconds", default="1-5", help="each pod's run time: S or LOW-HIGH")
    parser.add_argument(
        "--order",
        choices=["interleaved", "runs-first", "bare-first", "both"],
        default="interleaved",
        help="burst: how runs and bare Jobs are interleaved when created",
    )
    parser.add_argument("--threads", type=int, default=4, help="client threads creating objects")
    parser.add_argument(
        "--create-with",
        choices=["kubectl", "jobline"],
        default="kubectl",
        help="sequential: create runs as kubectl apply does, or as jobline start does",
    )
    parser.add_argument("--max-concurrent", type=int, default=3, help="queue: maxConcurrentRuns")
    parser.add_argument("--log-mib", type=float, default=200, help="log: the log's size")
    parser.add_argument("--line-bytes", type=int, default=1023, help="log: bytes per line")
    parser.add_argument("--log-seconds", type=float, default=30, help="log: how long it grows")
    parser.add_argument(
        "--archive",
        choices=["off", "on", "both"],
        default="off",
        help="burst and log: the operator without the log archive, with it, or both",
    )
    args = parser.parse_args()
    print(f"operator code: {local.operator_code()}; machine: {local.machine()}")
    archives = {"off": [False], "on": [True], "both": [False, True]}[args.archive]
    if args.mode == "burst":
        for order in ("runs-first", "bare-first") if args.order == "both" else (args.order,):
            figures = [burst(args, order, archive) for archive in archives]
            if len(figures) == 2:
                side_by_side(f"Burst of {args.runs} runs ({order})", *figures)
    elif args.mode == "sequential":
        sequential(args)
    elif args.mode == "queue":
        queue(args)
    else:
        figures = [large_log(args, archive) for archive in archives]
        if len(figures) == 2:
            side_by_side(f"One run with a {args.log_mib:g} MiB log", *figures)


if __name__ == "__main__":
    main()
