"""Runs (jobs): listed a page at a time, started, read, stopped and deleted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from jobline.client.runs import UserError
from jobline.core.clock import parse_time
from jobline.models import MAX_VARIABLES, VALUE_MAX, Phase
from jobline.server import resources
from jobline.server.parameters import Authorization, Caller, Name
from jobline.server.problems import ERRORS, Problem
from jobline.server.run_index import RunIndex

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["jobs"], responses=ERRORS)


class StartRequest(BaseModel, extra="forbid"):
    variables: dict[str, Annotated[str, Field(max_length=VALUE_MAX)]] = Field(
        default_factory=dict,
        max_length=MAX_VARIABLES,
        description="Values for the Pipeline's declared variables.",
    )
    priority: int = Field(0, description="Higher runs first when queued.")


@dataclass
class RunFilters:
    """Which runs a list shows, and which page of them."""

    status: str | None
    created_after: dt.datetime | None
    limit: int
    continue_: str | None


def run_filters(
    status: Annotated[
        str | None,
        Query(description="Only runs in these statuses (comma-separated: RUNNING,QUEUED)."),
    ] = None,
    created_after: Annotated[
        dt.datetime | None,
        Query(alias="createdAfter", description="Only runs created after this time (RFC 3339)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page.")] = 100,
    continue_: Annotated[
        str | None, Query(alias="continue", description="The `continue` of the previous page.")
    ] = None,
) -> RunFilters:
    return RunFilters(status, created_after, limit, continue_)


Filters = Annotated[RunFilters, Depends(run_filters)]


def run_index(request: Request) -> RunIndex:
    found: RunIndex = request.app.state.run_index
    return found


Index = Annotated[RunIndex, Depends(run_index)]


@router.get("/jobs", response_model=resources.JobList)
def list_jobs(
    caller: Caller,
    index: Index,
    filters: Filters,
    pipeline: str | None = Query(None, description="Only the runs of this Pipeline."),
    authorization: Authorization = None,
) -> dict[str, Any]:
    """Runs of the namespace, newest first, a page at a time."""
    return _page(index.runs(caller, authorization, pipeline), filters)


@router.get("/pipelines/{name}/jobs", response_model=resources.JobList)
def list_pipeline_jobs(
    name: Name, caller: Caller, index: Index, filters: Filters, authorization: Authorization = None
) -> dict[str, Any]:
    """Runs of one Pipeline, newest first (404 for an unknown Pipeline)."""
    caller.pipeline(name)  # 404 for an unknown Pipeline
    return _page(index.runs(caller, authorization, name), filters)


@router.post(
    "/pipelines/{name}/jobs",
    status_code=201,
    response_model=resources.Job,
    responses={
        409: {"model": Problem, "description": "Forbid, and no slot is free"},
        422: {"model": Problem, "description": "Variables the Pipeline does not accept"},
    },
)
def start(
    name: Name,
    caller: Caller,
    index: Index,
    response: Response,
    request: Annotated[StartRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Starts a run of the Pipeline. Its variables are checked first: nothing is
    created for variables the Pipeline does not declare, misses or rejects."""
    body = request or StartRequest()
    created = caller.start(name, body.variables, body.priority)
    index.remember(created)
    shown = resources.job(created)
    response.headers["Location"] = shown["_links"]["self"]["href"]
    return shown


@router.get("/jobs/{name}", response_model=resources.Job)
def get_job(name: Name, caller: Caller) -> dict[str, Any]:
    """One run."""
    return resources.job(caller.get(name))


@router.put(
    "/jobs/{name}/stopped",
    status_code=202,
    response_model=resources.Job,
    responses={409: {"model": Problem, "description": "The run has ended"}},
)
def stop(name: Name, caller: Caller, index: Index) -> Any:
    """Asks the operator to stop the run (it goes STOPPING, then STOPPED)."""
    stopped = caller.stop(name)
    index.remember(stopped)
    return resources.job(stopped)


@router.delete("/jobs/{name}", status_code=204)
def delete(name: Name, caller: Caller) -> Response:
    """Deletes the run; its Job and pod go with it (which stops it)."""
    caller.delete(name)
    return Response(status_code=204)


def _page(found: list[dict[str, Any]], filters: RunFilters) -> dict[str, Any]:
    wanted = _phases(filters.status)
    try:
        after = resources.after_token(filters.continue_) if filters.continue_ else None
    except ValueError as e:
        raise UserError(f"continue: {e}") from None
    if wanted:
        found = [r for r in found if resources.job(r)["status"] in wanted]
    if filters.created_after:
        created_after = filters.created_after
        if created_after.tzinfo is None:
            created_after = created_after.replace(tzinfo=dt.UTC)
        found = [r for r in found if _created(r) > created_after]
    chosen, next_token = resources.page(found, filters.limit, after)
    return {"items": [resources.job(r) for r in chosen], "continue": next_token}


def _created(run: dict[str, Any]) -> dt.datetime:
    created = parse_time(run["metadata"]["creationTimestamp"])
    assert created is not None  # the apiserver sets it on every object
    return created


def _phases(given: str | None) -> set[str]:
    wanted = {p.strip().upper() for p in (given or "").split(",") if p.strip()}
    unknown = wanted - {p.value for p in Phase}
    if unknown:
        allowed = ", ".join(p.value for p in Phase)
        raise UserError(f"status: {', '.join(sorted(unknown))} is not one of {allowed}")
    return wanted
