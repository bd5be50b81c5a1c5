"""Small factories for models and API objects used by the unit tests."""

from __future__ import annotations

from typing import Any

from jobline.controller.cache import strip_job, strip_pod
from jobline.models import Pipeline, PipelineJob


def pipeline(name: str = "sales", **spec: Any) -> Pipeline:
    return Pipeline.model_validate(
        {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": name, "namespace": "data", "uid": "pl-uid"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"team": "data"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "image": "meltano:3",
                                "env": [{"name": "START_DATE", "value": "template"}],
                            },
                            {"name": "side", "image": "proxy:1"},
                        ]
                    },
                },
                **spec,
            },
        }
    )


def run(name: str = "sales-1", pipeline_name: str = "sales", **spec: Any) -> PipelineJob:
    return PipelineJob.model_validate(
        {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "PipelineJob",
            "metadata": {"name": name, "namespace": "data", "uid": "run-uid"},
            "spec": {"pipelineRef": {"name": pipeline_name}, **spec},
        }
    )


def job(conditions: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    """A Job as the operator's cache keeps it (strip_job: the decisions see no more)."""
    return strip_job(
        {
            "metadata": {"name": "sales-1", "namespace": "data"},
            "spec": spec,
            "status": {"conditions": conditions or []},
        }
    )


def pod(
    name: str,
    phase: str,
    created: str = "2026-01-01T00:00:00Z",
    state: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    statuses = [{"name": "main", "state": state}] if state else []
    return strip_pod(
        {
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "main", "image": "meltano:3"}]},
            "status": {
                "phase": phase,
                "containerStatuses": statuses,
                "conditions": conditions or [],
            },
        }
    )
