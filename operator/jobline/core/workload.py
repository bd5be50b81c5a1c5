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


# An owner as its children's controller references name it: (namespace, API group, kind,
# name, UID). The namespace is the child's own: a namespaced object's owner lives in its
# namespace, whatever else a reference claims.
OwnerKey = tuple[str, str, str, str, str]
GroupKind = tuple[str, str]
RUN_KIND: GroupKind = ("jobline.dev", "PipelineJob")
JOB_KIND: GroupKind = ("batch", "Job")
POD_KIND: GroupKind = ("", "Pod")


def api_group(api_version: str) -> str:
    """The group of an apiVersion ("batch/v1" -> "batch", the core "v1" -> "")."""
    return api_version.rpartition("/")[0]


def owner_key(obj: Obj, kind: GroupKind) -> OwnerKey:
    """The key under which `obj`, of this group and kind, is its children's controller."""
    meta = obj["metadata"]
    return (meta.get("namespace", ""), *kind, meta.get("name", ""), meta.get("uid", ""))


def controller_key(obj: Obj) -> OwnerKey | None:
    """The controller that `obj`'s controller reference names, in `obj`'s own namespace:
    resolved only by an owner whose namespace, group, kind, name and UID all match (a
    UID alone can be copied into a reference by anyone who can read it)."""
    ref = controller_ref(obj)
    if ref is None:
        return None
    return (
        obj["metadata"].get("namespace", ""),
        api_group(str(ref.get("apiVersion") or "")),
        str(ref.get("kind") or ""),
        str(ref.get("name") or ""),
        str(ref.get("uid") or ""),
    )


def involved_key(event: Obj) -> OwnerKey | None:
    """The object an Event is about, as an owner key; None when the Event claims an object
    of another namespace than its own (Events live in their object's namespace)."""
    involved = event.get("involvedObject") or {}
    namespace = event["metadata"].get("namespace", "")
    if involved.get("namespace", namespace) != namespace:
        return None
    return (
        namespace,
        api_group(str(involved.get("apiVersion") or "")),
        str(involved.get("kind") or ""),
        str(involved.get("name") or ""),
        str(involved.get("uid") or ""),
    )
