"""Every example in examples/ applies and does what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cluster.jobline_fixtures import Jobline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.usefixtures("sim")


def apply(jl: Jobline, folder: Path) -> None:
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            plural = doc["kind"].lower() + "s"
            jl.custom.create_namespaced_custom_object(
                "jobline.dev", "v1alpha1", jl.namespace, plural, doc
            )


def test_hello(jl: Jobline) -> None:
    apply(jl, EXAMPLES / "hello")
    status = jl.wait_done("hello-1")
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    assert status["variables"] == {"WHO": "data team"}
    assert status["logs"]["lines"] == ["hello from Jobline", "loading 3 tables", "done"]
