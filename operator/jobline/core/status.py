"""A run's status as a pure function of what was observed: its Job and the Job's pods.

Job and pods are the API's JSON (camelCase dicts). The reconciler writes the
result only when it differs from the current status.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from jobline.models import Condition, LogTail, Output, Phase, PipelineJob, PipelineJobStatus

IMAGE_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
# Reasons for which the operator ends a run whose Job has not ended by itself:
# the operator deletes that Job, and the run's slot is free at once.
ENDED_BY_OPERATOR = {
    "PendingDeadlineExceeded",
    "ImagePullFailed",
    "Unschedulable",
    "Stopped",
    "Replaced",
}
CONDITION_BY_PHASE = {
    Phase.RUNNING: "Running",
    Phase.STOPPING: "Running",
    Phase.COMPLETE: "Complete",
    Phase.ERROR: "Failed",
    Phase.STOPPED: "Stopped",
}


@dataclass(frozen=True)
class Outcome:
    phase: Phase
    reason: str
    message: str


def parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def job_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def job_finished(job: dict[str, Any]) -> bool:
    return bool(job_condition(job, "Complete") or job_condition(job, "Failed"))


def main_container(pod: dict[str, Any]) -> dict[str, Any]:
    """The status of the pod's first (main) container; empty before it has one."""
    name = pod["spec"]["containers"][0]["name"]
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return {}


def started(pod: dict[str, Any]) -> bool:
    state = main_container(pod).get("state", {})
    return bool(state.get("running") or state.get("terminated"))


def pending_problem(pod: dict[str, Any]) -> tuple[str, str] | None:
    """Why a pod has not started (reason, message), when it is stuck rather than just new."""
    waiting = main_container(pod).get("state", {}).get("waiting") or {}
    if waiting.get("reason") in IMAGE_PULL_REASONS:
        image = pod["spec"]["containers"][0].get("image")
        detail = waiting.get("message") or waiting["reason"]
        return "ImagePullFailed", f"cannot pull image {image!r}: {detail}"
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return "Unschedulable", f"no node can run the pod: {cond.get('message', '')}"
    return None


def outputs_of(terminated: dict[str, Any]) -> list[Output]:
    """Outputs from a JSON termination message like {"outputs": [{"name": ..., "records": N}]}."""
    try:
        data = json.loads(terminated.get("message") or "")
        return [Output.model_validate(o) for o in data["outputs"]]
    except (ValueError, TypeError, KeyError):
        return []  # a plain-text termination message is not an error


def observe(
    run: PipelineJob,
    job: dict[str, Any],
    pods: list[dict[str, Any]],
    now: dt.datetime,
    pending_deadline_seconds: int,
    pod_deleted: bool = False,
) -> Outcome:
    """The phase, reason and message that the Job and its pods show."""
    pods = sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])
    latest = pods[-1] if pods else None
    terminated = main_container(latest).get("state", {}).get("terminated") if latest else None
    exit_note = f" with exit code {terminated['exitCode']}" if terminated else ""

    if job_condition(job, "Complete") or (latest and latest["status"].get("phase") == "Succeeded"):
        return Outcome(Phase.COMPLETE, "Completed", "the run completed successfully")
    failed = job_condition(job, "Failed")
    if failed:
        if failed.get("reason") == "DeadlineExceeded":
            return Outcome(
                Phase.STOPPED,
                "DeadlineExceeded",
                "the run was stopped after activeDeadlineSeconds "
                f"({job['spec'].get('activeDeadlineSeconds')} s); raise it or speed the run up",
            )
        if terminated and terminated.get("reason") == "OOMKilled":
            return Outcome(
                Phase.ERROR,
                "OOMKilled",
                "the main container ran out of memory (OOMKilled, exit code 137); "
                "raise its memory limit",
            )
        if pod_deleted:
            return Outcome(
                Phase.ERROR,
                "PodDeleted",
                "the run's pod was deleted by someone else while it ran; start a new run",
            )
        attempts = sum(1 for p in pods if started(p))
        if attempts > 1:
            return Outcome(
                Phase.ERROR,
                "BackoffLimitExceeded",
                f"all {attempts} attempts failed; the last one{exit_note}",
            )
        return Outcome(Phase.ERROR, "Failed", f"the main container failed{exit_note}")

    if run.spec.stopped:
        return Outcome(Phase.STOPPING, "Stopped", "stopping: the Job is being deleted")
    if latest is None:
        return Outcome(Phase.QUEUED, "Queued", "the Job is starting its pod")
    phase = latest["status"].get("phase")
    if phase == "Pending":
        problem = pending_problem(latest)
        created = parse_time(latest["metadata"]["creationTimestamp"]) or now
        waited = (now - created).total_seconds()
        if waited >= pending_deadline_seconds:
            reason, message = problem or (
                "PendingDeadlineExceeded",
                "the pod did not start",
            )
            return Outcome(
                Phase.ERROR,
                reason,
                f"{message} (waited pendingDeadlineSeconds, {pending_deadline_seconds} s)",
            )
        if problem:
            return Outcome(Phase.QUEUED, problem[0], problem[1])
        return Outcome(Phase.QUEUED, "Queued", "waiting for the pod to start")
    if phase == "Failed":  # the Job controller will start another pod
        return Outcome(Phase.RUNNING, "Running", f"attempt {len(pods)} failed{exit_note}; retrying")
    return Outcome(Phase.RUNNING, "Running", "the run is running")


def compute_status(
    run: PipelineJob,
    job: dict[str, Any],
    pods: list[dict[str, Any]],
    now: dt.datetime,
    pending_deadline_seconds: int,
    logs: LogTail | None,
    generation: int | None,
    pod_deleted: bool = False,
) -> PipelineJobStatus:
    """The run's status while it has a Job, from the Job, its pods and the log tail."""
    outcome = observe(run, job, pods, now, pending_deadline_seconds, pod_deleted)
    pods = sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])
    latest = pods[-1] if pods else None
    status = run.status.model_copy(deep=True)
    status.job_name = job["metadata"]["name"]
    status.pod_name = latest["metadata"]["name"] if latest else status.pod_name
    status.attempts = max(status.attempts, sum(1 for p in pods if started(p)))
    status.queue_position = None

    first_start = next(
        (main_container(p).get("state", {}) for p in pods if started(p)),
        None,
    )
    if first_start and status.start_time is None:
        state = first_start.get("running") or first_start.get("terminated") or {}
        status.start_time = parse_time(state.get("startedAt"))
    terminated = main_container(latest).get("state", {}).get("terminated") if latest else None
    if terminated:
        status.exit_code = terminated.get("exitCode")
        status.outputs = outputs_of(terminated)
    if logs is not None:
        status.logs = logs
    return finish(status, outcome, generation, now, terminated)


def finish(
    status: PipelineJobStatus,
    outcome: Outcome,
    generation: int | None,
    now: dt.datetime,
    terminated: dict[str, Any] | None = None,
) -> PipelineJobStatus:
    """Sets phase, reason, message, end time and conditions."""
    status.phase, status.reason, status.message = outcome.phase, outcome.reason, outcome.message
    status.observed_generation = generation
    if outcome.phase.terminal:
        status.queue_position = None
        if status.end_time is None:
            finished = parse_time(terminated.get("finishedAt")) if terminated else None
            status.end_time = finished or now
        if status.start_time is not None:
            status.duration_seconds = round(
                max(0.0, (status.end_time - status.start_time).total_seconds()), 3
            )
    status.conditions = conditions_for(status.conditions, outcome, now)
    return status


def conditions_for(current: list[Condition], outcome: Outcome, now: dt.datetime) -> list[Condition]:
    """Running, Complete, Failed and Stopped: True for the phase's own, False for the rest
    (for `kubectl wait --for=condition=Complete`); and kstatus' Reconciling (True until
    the run ends) and Stalled (True when it failed), for Flux and other kstatus readers.

    A condition's lastTransitionTime moves only when its status changes.
    """
    active = CONDITION_BY_PHASE.get(outcome.phase)
    truth = {kind: kind == active for kind in ("Running", "Complete", "Failed", "Stopped")}
    truth["Reconciling"] = not outcome.phase.terminal
    truth["Stalled"] = outcome.phase == Phase.ERROR
    by_type = {c.type: c for c in current}
    result = []
    for kind, true in truth.items():
        value = "True" if true else "False"
        old = by_type.get(kind)
        unchanged = old is not None and old.status == value
        result.append(
            Condition(
                type=kind,
                status=value,
                reason=outcome.reason if true else None,
                message=outcome.message if true else None,
                last_transition_time=old.last_transition_time if old and unchanged else now,
            )
        )
    return result
