"""A scheduled run found under its name (409) is used only if it is what the operator
would have created."""

from typing import Any

import pytest

from jobline.controller.pipeline_controller import is_scheduled_run

STAMP = "2026-03-01T02:00:00Z"
PIPELINE = {"metadata": {"name": "nightly", "uid": "p-uid"}}


def made(**changes: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "metadata": {
            "name": "nightly-29538840",
            "annotations": {"jobline.dev/scheduled-time": STAMP},
            "ownerReferences": [{"kind": "Pipeline", "name": "nightly", "uid": "p-uid"}],
        },
        "spec": {"pipelineRef": {"name": "nightly"}},
    }
    for where, value in changes.items():
        part, field = where.split("__")
        run[part][field] = value
    return run


def test_the_operators_own_run_is_used() -> None:
    assert is_scheduled_run(made(), PIPELINE, STAMP)


@pytest.mark.parametrize(
    "changes",
    [
        {"spec__variables": {"TARGET": "attacker"}},
        {"spec__stopped": True},
        {"spec__priority": 10},
        {"spec__pipelineRef": {"name": "other"}},
        {"metadata__ownerReferences": []},
        {"metadata__annotations": {"jobline.dev/scheduled-time": "2026-03-01T02:01:00Z"}},
        {"metadata__annotations": {}},
    ],
)
def test_anything_a_person_slipped_in_makes_it_someone_elses(changes: dict[str, Any]) -> None:
    assert not is_scheduled_run(made(**changes), PIPELINE, STAMP)
