"""What Prometheus and people see of the operator: metrics, health, log lines."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.jobline_fixtures import Jobline, Operator

pytestmark = pytest.mark.usefixtures("sim")


def scrape(operator: Operator) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as resp:
        text = resp.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_during_and_after_a_run(jl: Jobline, operator: Operator) -> None:
    ns = jl.namespace
    jl.pipeline("metered", {"sim.jobline.dev/duration": "4s"})
    jl.start("metered-1", "metered")
    jl.start("metered-2", "metered")
    jl.wait_phase("metered-1", "RUNNING")
    during = scrape(operator)
    assert during[("jobline_runs_active", (("namespace", ns),))] == 1
    assert during[("jobline_runs_queued", (("namespace", ns),))] == 1
    jl.wait_done("metered-1")
    jl.wait_done("metered-2", timeout=60)
    after = scrape(operator)
    assert after[("jobline_runs_finished_total", (("namespace", ns), ("phase", "COMPLETE")))] == 2
    assert after[("jobline_run_duration_seconds_count", (("namespace", ns),))] == 2
    assert after[("jobline_job_creation_latency_seconds_count", ())] >= 2
    # No label carries a run or pipeline name: cardinality stays bounded.
    assert not any("metered" in str(labels) for _, labels in after)


def test_health_endpoints(operator: Operator) -> None:
    for path, field in (("/healthz", "ok"), ("/readyz", "ready")):
        url = f"http://127.0.0.1:{operator.health_port}{path}"
        with urllib.request.urlopen(url) as resp:  # live, and synced
            assert resp.status == 200
            assert json.loads(resp.read())[field] is True


def test_log_lines_name_the_object(jl: Jobline, operator: Operator) -> None:
    jl.pipeline("logged")
    jl.start("logged-1", "logged")
    jl.wait_done("logged-1")
    text = operator.log_path.read_text()
    assert f"[{jl.namespace}/logged-1]" in text
