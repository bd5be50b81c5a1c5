"""Pipelines and PipelineJobs as the Jobs API shows them: the hosted ELT platforms' job
resource in the Kubernetes API's style (camelCase), with HAL `_links`. Pure functions."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobline.core.run_status import trigger_of
from jobline.models import Phase, Trigger, to_json

Obj = dict[str, Any]
PREFIX = "/api/v1"


def href(*parts: str) -> dict[str, str]:
    return {"href": "/".join((PREFIX, *parts))}


def job(run: Obj) -> Obj:
    metadata, spec = run["metadata"], run.get("spec") or {}
    status = run.get("status") or {}
    namespace, name = metadata["namespace"], metadata["name"]
    pipeline = (spec.get("pipelineRef") or {}).get("name")
    # Before the operator records it, the trigger is what it will record.
    trigger = (
        Trigger.model_validate(status["trigger"])
        if status.get("trigger")
        else trigger_of(metadata.get("annotations"))
    )
    self_path = ("namespaces", namespace, "jobs", name)
    return {
        "id": metadata.get("uid"),
        "name": name,
        "namespace": namespace,
        "pipeline": pipeline,
        # A run the operator has not seen yet waits like any queued run.
        "status": status.get("phase") or Phase.QUEUED.value,
        "reason": status.get("reason"),
        "message": status.get("message"),
        "exitCode": status.get("exitCode"),
        "failure": status.get("failure"),
        "created": metadata.get("creationTimestamp"),
        "startTime": status.get("startTime"),
        "endTime": status.get("endTime"),
        "durationSeconds": status.get("durationSeconds"),
        "attempts": status.get("attempts", 0),
        "variables": status.get("variables") or spec.get("variables") or {},
        "outputs": status.get("outputs") or [],
        "creator": to_json(trigger, exclude_none=True),
        "priority": spec.get("priority", 0),
        "queuePosition": status.get("queuePosition"),
        "stopRequested": bool(spec.get("stopped")),
        "podName": status.get("podName"),
        "logLines": (status.get("logs") or {}).get("totalLines", 0),
        "logContainer": (status.get("logs") or {}).get("container"),
        "_links": {
            "self": href(*self_path),
            "logs": href(*self_path, "logs"),
            "pipeline": href("namespaces", namespace, "pipelines", pipeline or ""),
            "stopped": href(*self_path, "stopped"),
        },
    }


def pipeline(found: Obj) -> Obj:
    metadata, spec = found["metadata"], found.get("spec") or {}
    status = found.get("status") or {}
    namespace, name = metadata["namespace"], metadata["name"]
    ready: Obj = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return {
        "id": metadata.get("uid"),
        "name": name,
        "namespace": namespace,
        "description": spec.get("description"),
        "created": metadata.get("creationTimestamp"),
        "schedule": spec.get("schedule"),
        "timeZone": spec.get("timeZone", "UTC"),
        "suspend": bool(spec.get("suspend")),
        "concurrencyPolicy": spec.get("concurrencyPolicy", "Queue"),
        "maxConcurrentRuns": spec.get("maxConcurrentRuns", 1),
        "variables": spec.get("variables") or [],
        "ready": ready.get("status"),
        "readyMessage": ready.get("message"),
        "activeRuns": status.get("activeRuns") or [],
        "queuedRuns": status.get("queuedRuns", 0),
        "lastRun": status.get("lastRun"),
        "lastScheduleTime": status.get("lastScheduleTime"),
        "nextScheduleTime": status.get("nextScheduleTime"),
        "lastSuccessfulTime": status.get("lastSuccessfulTime"),
        "_links": {
            "self": href("namespaces", namespace, "pipelines", name),
            "jobs": href("namespaces", namespace, "pipelines", name, "jobs"),
        },
    }


def newest_first(run: Obj) -> tuple[str, str]:
    return run["metadata"]["creationTimestamp"], run["metadata"]["name"]


def continue_token(run: Obj) -> str:
    """Where the next page starts: after this run, in newest-first order."""
    created, name = newest_first(run)
    raw = json.dumps([created, name]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def after_token(token: str) -> tuple[str, str]:
    """The (creationTimestamp, name) a continue token points after; ValueError if invalid."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, name = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as e:
        raise ValueError("the continue token is not one this server gave") from e
    if not isinstance(created, str) or not isinstance(name, str):
        raise ValueError("the continue token is not one this server gave")
    return created, name


def page(
    runs: list[Obj], limit: int, after: tuple[str, str] | None
) -> tuple[list[Obj], str | None]:
    """One page of runs, newest first, and the token of the next page (None on the last).
    The token is a position, not a snapshot: runs created meanwhile appear on the first page."""
    ordered = sorted(runs, key=newest_first, reverse=True)
    if after is not None:
        ordered = [r for r in ordered if newest_first(r) < after]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, continue_token(chosen[-1]) if more and chosen else None


# --- The same shapes as models, for the OpenAPI document and its clients --------------


class Link(BaseModel):
    href: str


class JobLinks(BaseModel):
    self: Link
    logs: Link
    pipeline: Link
    stopped: Link


class ManualCreator(BaseModel):
    type: Literal["Manual"]


class ScheduleCreator(BaseModel):
    type: Literal["Schedule"]
    scheduledTime: str | None = Field(description="The cron time the run was created for.")


class JobOutput(BaseModel, extra="allow"):
    name: str
    records: int | None = None


class JobFailure(BaseModel):
    container: str
    kind: str = Field(description="init, sidecar, main or other.")
    exitCode: int | None
    reason: str | None = Field(description="The kubelet's: Error, OOMKilled, StartError, ...")


class Job(BaseModel):
    """One run of a Pipeline (a PipelineJob)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str | None = Field(description="The PipelineJob's UID.")
    name: str
    namespace: str
    pipeline: str | None
    status: Phase = Field(description="The run's phase.")
    reason: str | None
    message: str | None
    exitCode: int | None = Field(description="The main container's; null when it never ran.")
    failure: JobFailure | None = Field(
        None, description="The container whose end failed the run, when one did."
    )
    created: str | None
    startTime: str | None
    endTime: str | None
    durationSeconds: float | None
    attempts: int
    variables: dict[str, str] = Field(description="The values in effect.")
    outputs: list[JobOutput]
    creator: ManualCreator | ScheduleCreator
    priority: int
    queuePosition: int | None
    stopRequested: bool
    podName: str | None
    logLines: int = Field(description="Lines of the latest pod the operator has read.")
    logContainer: str | None = Field(
        None,
        description="The container whose log the run shows, when not the main one: the "
        "one that failed before the main container ran.",
    )
    links: JobLinks = Field(alias="_links")


class JobList(BaseModel):
    items: list[Job]
    continue_: str | None = Field(
        alias="continue", description="Pass back as `continue` for the next page; null: last."
    )


class PipelineLinks(BaseModel):
    self: Link
    jobs: Link


class Pipeline(BaseModel):
    """A Pipeline with its status summary."""

    id: str | None
    name: str
    namespace: str
    description: str | None
    created: str | None
    schedule: str | None
    timeZone: str
    suspend: bool
    concurrencyPolicy: str
    maxConcurrentRuns: int
    variables: list[dict[str, Any]] = Field(description="Declared variables.")
    ready: str | None = Field(description="The Ready condition: True, False or null.")
    readyMessage: str | None
    activeRuns: list[str]
    queuedRuns: int
    lastRun: dict[str, Any] | None
    lastScheduleTime: str | None
    nextScheduleTime: str | None
    lastSuccessfulTime: str | None
    links: PipelineLinks = Field(alias="_links")


class PipelineList(BaseModel):
    items: list[Pipeline]
