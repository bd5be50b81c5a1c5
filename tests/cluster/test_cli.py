"""The jobline command against a real cluster, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.jobline_fixtures import Jobline

pytestmark = pytest.mark.usefixtures("sim")
BIN = Path(sys.executable).parent


def jobline(jl: Jobline, *args: str, program: str = "jobline") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), "--kubeconfig", jl.cluster.kubeconfig, "-n", jl.namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_wait_exits_with_the_runs_exit_code(jl: Jobline) -> None:
    jl.pipeline("cli-fail", {"sim.jobline.dev/exit-code": "3"})
    result = jobline(jl, "start", "cli-fail", "--wait")
    assert result.returncode == 3, result.stderr
    name = result.stdout.strip()
    assert name.startswith("cli-fail-")
    assert jl.status(name)["phase"] == "ERROR"


def test_start_with_vars_list_get_and_logs(jl: Jobline) -> None:
    jl.pipeline(
        "cli-ok",
        {"sim.jobline.dev/log-lines": "30"},
        variables=[{"name": "DAY", "default": "monday"}],
        logs={"tailLines": 10, "archive": False},  # test_log_archive.py reads the archive
    )
    result = jobline(jl, "start", "cli-ok", "--var", "DAY=friday", "--priority", "3", "--wait")
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip()
    assert jl.status(name)["variables"] == {"DAY": "friday"}
    assert jl.run(name)["spec"]["priority"] == 3

    # A run of another Pipeline, created without the label (as kubectl does): the operator
    # labels it, and the server-side selection of each Pipeline's runs tells them apart.
    jl.pipeline("cli-other")
    jl.start("other-1", "cli-other")
    jl.wait_done("other-1")
    other = jobline(jl, "list", "--pipeline", "cli-other")
    assert [line.split()[:3] for line in other.stdout.splitlines()[1:]] == [
        ["other-1", "cli-other", "COMPLETE"]
    ]
    listed = jobline(jl, "list", "--pipeline", "cli-ok", program="kubectl-jobline")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "NAME", "PIPELINE", "STATUS", "REASON", "EXIT", "STARTED", "DURATION", "AGE"
    ]  # fmt: skip
    assert row.split()[:5] == [name, "cli-ok", "COMPLETE", "Completed", "0"]

    got = jobline(jl, "get", name, "-o", "json")
    assert json.loads(got.stdout)["status"]["phase"] == "COMPLETE"

    # From the pod while it exists: every line, numbered from 0.
    logs = jobline(jl, "logs", name, "--sequence", "25", "-o", "ndjson")
    assert [json.loads(line) for line in logs.stdout.splitlines()] == [
        {"sequence": i, "line": f"line {i}"} for i in range(25, 30)
    ]
    # From the status tail once the pod is gone, saying what was lost.
    for pod in jl.pods(name):
        jl.core.delete_namespaced_pod(pod.metadata.name, jl.namespace)
    jl.batch.delete_namespaced_job(name, jl.namespace, propagation_policy="Foreground")
    from tests.cluster.jobline_fixtures import eventually_gone

    eventually_gone("the pods", lambda: jl.pods(name))
    tail = jobline(jl, "logs", name, "--sequence", "5")
    assert tail.stdout.splitlines() == [f"line {i}" for i in range(20, 30)]
    assert "gone with the pod" in tail.stderr


def test_follow_streams_until_the_run_ends(jl: Jobline) -> None:
    jl.pipeline("cli-follow", {"sim.jobline.dev/log": "a\nb\nc", "sim.jobline.dev/duration": "3s"})
    result = jobline(jl, "start", "cli-follow", "--follow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["a", "b", "c"]


def test_stop_and_delete(jl: Jobline) -> None:
    jl.pipeline("cli-long", {"sim.jobline.dev/duration": "300s"})
    name = jobline(jl, "start", "cli-long").stdout.strip()
    jl.wait_phase(name, "RUNNING")
    assert jobline(jl, "stop", name).returncode == 0
    assert jl.wait_done(name)["phase"] == "STOPPED"
    assert jobline(jl, "delete", name).returncode == 0
    missing = jobline(jl, "get", name)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: run {name!r} in namespace {jl.namespace!r} not found"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "no-such-pipeline"], "Pipeline 'no-such-pipeline' in namespace"),
        (["logs", "no-such-run"], "run 'no-such-run'"),
        (["stop", "no-such-run"], "not found"),
    ],
)
def test_user_mistakes_are_one_line(jl: Jobline, args: list[str], message: str) -> None:
    result = jobline(jl, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_unreachable_cluster_and_no_permission(jl: Jobline, tmp_path: Path) -> None:
    config = Path(jl.cluster.kubeconfig).read_text()
    host = jl.cluster.api.configuration.host
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(config.replace(host, "https://127.0.0.1:1"))
    result = subprocess.run(
        [str(BIN / "jobline"), "--kubeconfig", str(unreachable), "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "cannot reach the cluster at https://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr

    # A ServiceAccount with no role: the apiserver answers 403.
    jl.core.create_namespaced_service_account(jl.namespace, {"metadata": {"name": "nobody"}})
    token = jl.core.create_namespaced_service_account_token(
        "nobody", jl.namespace, {"spec": {"audiences": [], "expirationSeconds": 600}}
    ).status.token
    doc = yaml.safe_load(config)
    doc["users"] = [{"name": "nobody", "user": {"token": token}}]
    for context in doc["contexts"]:
        context["context"]["user"] = "nobody"
    forbidden = tmp_path / "forbidden"
    forbidden.write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [str(BIN / "jobline"), "--kubeconfig", str(forbidden), "-n", jl.namespace, "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "permission denied" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_start_checks_variables_before_creating_anything(jl: Jobline) -> None:
    jl.pipeline("cli-vars", variables=[{"name": "DAY", "enum": ["mon", "fri"]}])
    result = jobline(jl, "start", "cli-vars", "--var", "DAYY=fri")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: invalid variables for Pipeline 'cli-vars': DAYY is not declared by the "
        "Pipeline (declared: DAY)"
    ]
    assert "DAY='sun' is not one of" in jobline(jl, "start", "cli-vars", "--var", "DAY=sun").stderr
    runs = jl.custom.list_namespaced_custom_object(
        "jobline.dev", "v1alpha1", jl.namespace, "pipelinejobs"
    )["items"]
    assert runs == []


def test_get_hides_managed_fields_as_kubectl_does(jl: Jobline) -> None:
    jl.pipeline("cli-mf")
    jl.start("mf-1", "cli-mf")
    jl.wait_done("mf-1")
    shown = yaml.safe_load(jobline(jl, "get", "mf-1", "-o", "yaml").stdout)
    assert "managedFields" not in shown["metadata"]
    assert shown["status"]["duration"].endswith("s")
    full = json.loads(jobline(jl, "get", "mf-1", "-o", "json", "--show-managed-fields").stdout)
    assert full["metadata"]["managedFields"]
    # kubectl's printer columns: a duration with its unit, and how many runs are active.
    runs = jl.cluster.kubectl("get", "pj", "-n", jl.namespace).stdout.splitlines()
    assert runs[0].split()[-2:] == ["DURATION", "AGE"]
    assert runs[1].split()[-2] == shown["status"]["duration"]
    pipelines = jl.cluster.kubectl("get", "pl", "-n", jl.namespace).stdout.splitlines()
    assert pipelines[0].split()[:4] == ["NAME", "SCHEDULE", "SUSPEND", "ACTIVE"]
    at = pipelines[0].index("ACTIVE")  # columns by position: an empty SCHEDULE is blank
    assert pipelines[1][at:].split()[0] == "0"
