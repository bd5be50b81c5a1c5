"""What Jobline creates, as pure functions: the batch/v1 Job of a run (of the Pipeline and
the PipelineJob), and a PipelineJob of a Pipeline (for a schedule, `jobline start` and
the Jobs API alike)."""

from __future__ import annotations

import hashlib
from typing import Any

from jobline.core.clock import format_time
from jobline.models import (
    API_GROUP,
    API_VERSION,
    LABEL_KUEUE_PRIORITY,
    LABEL_KUEUE_QUEUE,
    LABEL_PIPELINE,
    LABEL_PIPELINEJOB,
    POD_FINALIZER,
    SCHEDULING_GATE,
    Pipeline,
    PipelineJob,
    Trigger,
    TriggerType,
    to_json,
)

NAME_MAX = 63  # a Job's name becomes a label value on its pods: at most 63 characters
HASH_LEN = 10


def short_name(name: str) -> str:
    """`name` when it fits in 63 characters, else a prefix and a hash of the whole.

    Deterministic, so the same run always maps to the same Job (never two).
    """
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LEN]
    prefix = name[: NAME_MAX - HASH_LEN - 1].rstrip("-.")
    return f"{prefix}-{digest}"


def job_name(run_name: str) -> str:
    return short_name(run_name)


def pipeline_owner(name: str, uid: str) -> dict[str, Any]:
    """The ownerReference of a run to its Pipeline: deleting the Pipeline deletes it."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Pipeline",
        "name": name,
        "uid": uid,
    }


def run_metadata(pipeline_name: str, pipeline_uid: str) -> dict[str, Any]:
    """The label and owner every run of the Pipeline carries: the label that listing a
    Pipeline's runs selects on, and the owner that deletes runs with it."""
    return {
        "labels": {LABEL_PIPELINE: short_name(pipeline_name)},
        "ownerReferences": [pipeline_owner(pipeline_name, pipeline_uid)],
    }


def build_run(
    pipeline_name: str,
    pipeline_uid: str,
    metadata: dict[str, Any],
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A PipelineJob of the Pipeline, with its label and owner; `metadata` gives its name
    (or generateName) and annotations."""
    meta = {**metadata, **run_metadata(pipeline_name, pipeline_uid)}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "PipelineJob",
        "metadata": meta,
        "spec": {"pipelineRef": {"name": pipeline_name}, **(spec or {})},
    }


def run_labels(pipeline_name: str, run_name: str) -> dict[str, str]:
    return {LABEL_PIPELINE: short_name(pipeline_name), LABEL_PIPELINEJOB: short_name(run_name)}


def build_job(
    pipeline: Pipeline,
    run: PipelineJob,
    variables: dict[str, str],
    trigger: Trigger | None = None,
) -> dict[str, Any]:
    """The Job to create for `run`, with `variables` already resolved and validated."""
    spec = pipeline.spec
    meta = run.metadata
    labels = run_labels(pipeline.metadata.name, meta.name)
    template = to_json(spec.template, exclude_none=True)
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**template_meta.get("labels", {}), **labels}
    template_meta["finalizers"] = [*template_meta.get("finalizers", []), POD_FINALIZER]
    pod_spec = template["spec"]
    pod_spec["restartPolicy"] = "Never"
    if not pod_spec.get("nodeName"):  # a pod placed by hand skips the scheduler and its gates
        gates = pod_spec.get("schedulingGates", [])
        pod_spec["schedulingGates"] = [*gates, {"name": SCHEDULING_GATE}]

    env = {
        **variables,
        "JOBLINE_PIPELINE": pipeline.metadata.name,
        "JOBLINE_PIPELINEJOB": meta.name,
    }
    if trigger and trigger.type == TriggerType.SCHEDULE and trigger.scheduled_time:
        env["JOBLINE_SCHEDULED_TIME"] = format_time(trigger.scheduled_time)
    for container in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        container["env"] = _with_env(container.get("env", []), env)

    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "template": template,
        # A pod is replaced once it has failed, not as soon as it is terminating: two pods
        # of one run never overlap (nor a drained pod's last lines go unread), and a Job
        # controller that has not yet seen its Job's deletion makes no new pod for the
        # pod that the deletion is stopping (the fault suite saw one run beside the next
        # run of a Replace Pipeline).
        "podReplacementPolicy": "Failed",
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.pod_failure_policy is not None:
        job_spec["podFailurePolicy"] = to_json(spec.pod_failure_policy, exclude_none=True)
    job_labels = dict(labels)
    if spec.kueue is not None:
        # Kueue reads its labels on the Job only. Created suspended, so admission never
        # depends on Kueue's webhook being up in time; Kueue unsuspends it once admitted.
        job_labels[LABEL_KUEUE_QUEUE] = spec.kueue.local_queue
        priority = run.spec.kueue.priority_class if run.spec.kueue else spec.kueue.priority_class
        if priority:
            job_labels[LABEL_KUEUE_PRIORITY] = priority
        job_spec["suspend"] = True
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(meta.name),
            "namespace": meta.namespace,
            "labels": job_labels,
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": "PipelineJob",
                    "name": meta.name,
                    "uid": meta.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }


def _with_env(existing: list[dict[str, Any]], values: dict[str, str]) -> list[dict[str, Any]]:
    """The container's env with `values` set, replacing same-named entries."""
    kept = [e for e in existing if e.get("name") not in values]
    return kept + [{"name": k, "value": v} for k, v in values.items()]
