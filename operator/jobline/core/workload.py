"""What a Job and its pods show, read from the API's JSON (camelCase dicts): the facts
that a run's outcome and its Pipeline's admission both read."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def job_condition(job: Obj, kind: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def job_finished(job: Obj) -> bool:
    return bool(job_condition(job, "Complete") or job_condition(job, "Failed"))


def pod_phase(pod: Obj) -> str | None:
    phase: str | None = (pod.get("status") or {}).get("phase")
    return phase


def main_container(pod: Obj) -> Obj:
    """The status of the pod's first (main) container; empty before it has one."""
    name = pod["spec"]["containers"][0]["name"]
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return {}


def job_main_container(job: Obj) -> str | None:
    """The name of the first (main) container of the Job's pod template."""
    containers = job["spec"].get("template", {}).get("spec", {}).get("containers") or []
    return str(containers[0]["name"]) if containers else None


def started(pod: Obj) -> bool:
    state = main_container(pod).get("state", {})
    return bool(state.get("running") or state.get("terminated"))


def ended(pod: Obj) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def newest(pods: list[Obj]) -> Obj | None:
    """The newest pod (the Job's current attempt)."""
    return max(pods, key=lambda p: p["metadata"]["creationTimestamp"]) if pods else None


def latest_event(events: list[Obj]) -> Obj | None:
    """The Event seen last (an Event's count grows on one object: its time moves)."""
    if not events:
        return None
    return max(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference marked as the object's controller, if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def controller_uid(obj: Obj) -> str | None:
    ref = controller_ref(obj)
    return str(ref["uid"]) if ref else None
