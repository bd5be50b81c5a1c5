"""The Argo CD health checks, run by a real Lua interpreter on objects in every phase."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobline.models import NEEDS_ATTENTION

ARGOCD = Path(__file__).resolve().parents[2] / "integrations" / "argocd"
LUA = shutil.which("lua5.4") or shutil.which("lua")
pytestmark = pytest.mark.skipif(LUA is None, reason="needs lua5.4 (apt-get install lua5.4)")


def lua_value(value: Any) -> str:
    """A Python value as a Lua literal (JSON objects become tables)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for these texts
    if isinstance(value, list):
        return "{" + ", ".join(lua_value(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_value(v)}" for k, v in value.items()) + "}"


def health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    program = (
        f"obj = {lua_value(obj)}\n"
        f"local hs = (function()\n{(ARGOCD / script).read_text()}\nend)()\n"
        'io.write(hs.status, "\\t", hs.message or "")\n'
    )
    out = subprocess.run([LUA, "-"], input=program, capture_output=True, text=True, check=True)
    status, _, message = out.stdout.partition("\t")
    return status, message


def run(phase: str | None, reason: str = "", message: str = "") -> dict[str, Any]:
    status = {"phase": phase, "reason": reason, "message": message} if phase else None
    return {"metadata": {"name": "r", "generation": 1}, "spec": {}, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (run(None), "Progressing"),
        (run("QUEUED", "WaitingForRun", "waiting"), "Progressing"),
        (run("QUEUED", "MountFailed", 'configmap "tap" not found'), "Degraded"),
        (run("QUEUED", "Unschedulable", "no node"), "Degraded"),
        (run("RUNNING", "Running"), "Progressing"),
        (run("STOPPING", "Stopped"), "Progressing"),
        (run("COMPLETE", "Completed", "done"), "Healthy"),
        (run("ERROR", "OOMKilled", "out of memory"), "Degraded"),
        (run("STOPPED", "DeadlineExceeded"), "Degraded"),
        (run("STOPPED", "Stopped"), "Suspended"),
        (run("STOPPED", "Replaced"), "Suspended"),
    ],
)
def test_pipelinejob_health(obj: dict[str, Any], expected: str) -> None:
    status, message = health("pipelinejob-health.lua", obj)
    assert status == expected
    if obj["status"]:
        assert obj["status"]["phase"] in message


def pipeline(
    ready: str | None, generation: int = 1, observed: int = 1, blocked: str = "", **spec: Any
) -> Any:
    conditions = (
        [{"type": "Ready", "status": ready, "reason": "InvalidSchedule", "message": "bad cron"}]
        if ready
        else None
    )
    if conditions and blocked:
        conditions.append({"type": "ScheduleBlocked", "status": blocked, "reason": "RunRefused"})
    status = {"observedGeneration": observed, "conditions": conditions} if ready else None
    return {"metadata": {"generation": generation}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pipeline(None), "Progressing"),
        (pipeline("True"), "Healthy"),
        (pipeline("True", generation=2, observed=1), "Progressing"),
        (pipeline("False"), "Degraded"),
        (pipeline("True", schedule="0 2 * * *", suspend=True), "Suspended"),
        (pipeline("True", blocked="True"), "Degraded"),  # its scheduled run is refused
        (pipeline("True", blocked="False"), "Healthy"),
    ],
)
def test_pipeline_health(obj: dict[str, Any], expected: str) -> None:
    assert health("pipeline-health.lua", obj)[0] == expected


def test_argocd_cm_carries_the_same_scripts() -> None:
    data = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"]
    for kind, script in (
        ("PipelineJob", "pipelinejob-health.lua"),
        ("Pipeline", "pipeline-health.lua"),
    ):
        key = f"resource.customizations.health.jobline.dev_{kind}"
        assert data[key] == (ARGOCD / script).read_text()


@pytest.mark.parametrize("reason", sorted(NEEDS_ATTENTION))
def test_every_queued_run_that_needs_a_fix_is_degraded(reason: str) -> None:
    assert health("pipelinejob-health.lua", run("QUEUED", reason, "m"))[0] == "Degraded"
