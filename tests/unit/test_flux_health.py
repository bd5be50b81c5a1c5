"""The Flux healthCheckExprs of integrations/flux/ (and the README), evaluated by cel-go,
the CEL library kustomize-controller uses, on objects in every phase."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobline.models import NEEDS_ATTENTION

REPO = Path(__file__).resolve().parents[2]
FLUX = REPO / "integrations" / "flux"
GO = shutil.which("go")
pytestmark = pytest.mark.skipif(GO is None, reason="needs Go to build cel-go")


CELCHECK = FLUX / "celcheck"
CELCHECK_SOURCES = ("go.mod", "go.sum", "main.go")


def celcheck_binary() -> Path:
    """Where the build of these sources is kept, outside the checkout: a new version of
    them is a new build, and the old one is never run."""
    digest = hashlib.sha256()
    for name in CELCHECK_SOURCES:
        data = (CELCHECK / name).read_bytes()
        digest.update(b"%s %d\n" % (name.encode(), len(data)))
        digest.update(data)
    cache = Path(os.environ.get("JOBLINE_CACHE") or Path.home() / ".cache" / "jobline")
    return cache / f"celcheck-{digest.hexdigest()[:16]}" / "celcheck"


@pytest.fixture(scope="module")
def celcheck() -> str:
    """cel-go's evaluator, built once (about a minute) and reused by later sessions."""
    binary = celcheck_binary()
    if not binary.is_file():
        binary.parent.mkdir(parents=True, exist_ok=True)
        # Built beside it and renamed into place: an interrupted build leaves no binary
        # (only a stray folder), and a build running alongside renames a whole one too.
        building = Path(tempfile.mkdtemp(prefix=".build-", dir=binary.parent))
        try:
            subprocess.run(
                [str(GO), "build", "-o", str(building / "celcheck"), "."],
                cwd=CELCHECK,
                env={**os.environ, "GOTOOLCHAIN": "local"},
                check=True,
            )
            os.replace(building / "celcheck", binary)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return str(binary)


def exprs(kind: str) -> dict[str, str]:
    checks = yaml.safe_load((FLUX / "health-check-exprs.yaml").read_text())["spec"]
    [check] = [c for c in checks["healthCheckExprs"] if c["kind"] == kind]
    return {k: v for k, v in check.items() if k in ("current", "inProgress", "failed")}


def flux_status(celcheck: str, kind: str, obj: dict[str, Any]) -> str:
    """As kustomize-controller decides: inProgress first, then failed, then current; an
    expression that cannot be evaluated counts as not met; none met is InProgress."""
    found = subprocess.run(
        [celcheck],
        input=json.dumps({"exprs": exprs(kind), "object": obj}),
        capture_output=True,
        text=True,
        check=True,
    )
    met = {name for name, value in json.loads(found.stdout).items() if value is True}
    for name, status in (
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ):
        if name in met:
            return status
    return "InProgress"


def run(phase: str | None, reason: str = "") -> dict[str, Any]:
    status = {"phase": phase, "reason": reason} if phase else {}
    return {"metadata": {"name": "r"}, "spec": {}, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (run(None), "InProgress"),
        (run("QUEUED", "WaitingForRun"), "InProgress"),
        (run("QUEUED", "Queued"), "InProgress"),
        (run("QUEUED", "ConfigError"), "Failed"),  # a Secret to create: a person's move
        (run("QUEUED", "ImagePullFailed"), "Failed"),
        (run("RUNNING", "Running"), "InProgress"),
        (run("STOPPING", "Stopped"), "InProgress"),
        (run("COMPLETE", "Completed"), "Current"),
        (run("ERROR", "OOMKilled"), "Failed"),
        (run("STOPPED", "DeadlineExceeded"), "Failed"),
        (run("STOPPED", "Stopped"), "InProgress"),  # stopped on purpose: neither
    ],
)
def test_pipelinejob(celcheck: str, obj: dict[str, Any], expected: str) -> None:
    assert flux_status(celcheck, "PipelineJob", obj) == expected


def pipeline(ready: str | None, observed: int | None = 1, blocked: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": ready}] if ready else []}
    if blocked:
        status["conditions"].append({"type": "ScheduleBlocked", "status": blocked})
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"name": "p", "generation": 1}, "spec": {}, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"name": "p", "generation": 1}, "spec": {}}, "InProgress"),  # just applied
        (pipeline(None, observed=None), "InProgress"),
        (pipeline(None), "InProgress"),
        (pipeline("True"), "Current"),
        (pipeline("False"), "Failed"),
        (pipeline("True", observed=0), "InProgress"),  # an edit the operator has not seen
        (pipeline("False", observed=0), "InProgress"),
        (pipeline("True", blocked="True"), "Failed"),  # its scheduled run is refused
        (pipeline("True", blocked="False"), "Current"),
    ],
)
def test_pipeline(celcheck: str, obj: dict[str, Any], expected: str) -> None:
    assert flux_status(celcheck, "Pipeline", obj) == expected


def test_the_readme_shows_the_same_expressions() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(spec:\n  healthCheckExprs:.*?)```", readme, re.S)
    assert block, "the README's Flux block"
    shown = yaml.safe_load(block.group(1))
    assert shown == yaml.safe_load((FLUX / "health-check-exprs.yaml").read_text())


@pytest.mark.parametrize("reason", sorted(NEEDS_ATTENTION))
def test_every_queued_run_that_needs_a_fix_fails(celcheck: str, reason: str) -> None:
    assert flux_status(celcheck, "PipelineJob", run("QUEUED", reason)) == "Failed"
