"""Pipelines with their status summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from jobline.server import resources
from jobline.server.parameters import Caller, Name
from jobline.server.problems import ERRORS

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["pipelines"], responses=ERRORS)


@router.get("/pipelines", response_model=resources.PipelineList)
def list_pipelines(caller: Caller) -> dict[str, Any]:
    """Pipelines of the namespace with their status summary, by name."""
    found = sorted(caller.pipelines(), key=lambda p: str(p["metadata"]["name"]))
    return {"items": [resources.pipeline(p) for p in found]}


@router.get("/pipelines/{name}", response_model=resources.Pipeline)
def get_pipeline(name: Name, caller: Caller) -> dict[str, Any]:
    """One Pipeline with its status summary."""
    return resources.pipeline(caller.pipeline(name))
