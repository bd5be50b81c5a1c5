"""Prometheus metrics of the operator. Labels are namespaces and phases only:
never run or pipeline names, so their number stays bounded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter as CounterMetric
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

RUNS_FINISHED = CounterMetric(
    "jobline_runs_finished_total",
    "Runs that reached a final phase.",
    ["namespace", "phase"],
)
RUN_DURATION = Histogram(
    "jobline_run_duration_seconds",
    "From a run's pod start to the run's end.",
    ["namespace"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
JOB_CREATION_LATENCY = Histogram(
    "jobline_job_creation_latency_seconds",
    "From the operator seeing a startable PipelineJob to its Job being created.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

LOG_BYTES_READ = CounterMetric(
    "jobline_log_bytes_read_total",
    "Bytes of pod logs the operator read to keep runs' log tails.",
)
STATUS_WRITES = CounterMetric(
    "jobline_status_writes_total",
    "Status writes of runs and Pipelines, by kind.",
    ["kind"],
)


class RunsByPhase(Collector):
    """Active and queued runs per namespace, counted at scrape time from the cache."""

    def __init__(self, runs: Callable[[], list[dict[str, Any]]]) -> None:
        self.runs = runs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts: Counter[tuple[str, str]] = Counter()
        for run in self.runs():
            phase = (run.get("status") or {}).get("phase") or "QUEUED"
            counts[(run["metadata"]["namespace"], phase)] += 1
        active = GaugeMetricFamily(
            "jobline_runs_active", "Runs RUNNING or STOPPING.", labels=["namespace"]
        )
        queued = GaugeMetricFamily("jobline_runs_queued", "Runs QUEUED.", labels=["namespace"])
        namespaces = {ns for ns, _ in counts}
        for ns in sorted(namespaces):
            active.add_metric([ns], counts[(ns, "RUNNING")] + counts[(ns, "STOPPING")])
            queued.add_metric([ns], counts[(ns, "QUEUED")])
        yield active
        yield queued


def register_run_gauges(runs: Callable[[], list[dict[str, Any]]]) -> None:
    REGISTRY.register(RunsByPhase(runs))


class TrackedRuns(Collector):
    """What the operator keeps in memory per run, by kind, at scrape time: each falls back
    as runs end and go (a leak of per-run state shows here)."""

    def __init__(self, tracked: Callable[[], dict[str, int]]) -> None:
        self.tracked = tracked

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "jobline_tracked_runs", "Per-run state held in memory, by kind.", labels=["kind"]
        )
        for kind, count in sorted(self.tracked().items()):
            gauge.add_metric([kind], count)
        yield gauge


def register_tracked_runs(tracked: Callable[[], dict[str, int]]) -> None:
    REGISTRY.register(TrackedRuns(tracked))
