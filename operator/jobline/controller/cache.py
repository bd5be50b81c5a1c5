"""What the operator watches, in indexed stores (jobline/kube/store.py).

Every lookup the reconcilers make is a dict access: pods by the Job that controls
them, Jobs by the run that controls them, runs by their Pipeline, Events by their
Job. An owner is found by its whole key (namespace, group, kind, name, then UID),
never by a UID alone: another namespace's tenant can copy a run's UID into a
reference of its own Job, but not the run's namespace. Objects are stored stripped
to the fields the operator reads (no managedFields, no pod template, no log tail),
as client-go's transforms and Tekton's cached pods are.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from pydantic import ValidationError

from jobline.core.containers import POD_EVENT_REASONS
from jobline.core.jobs import job_name, short_name
from jobline.core.workload import (
    JOB_KIND,
    POD_KIND,
    RUN_KIND,
    GroupKind,
    OwnerKey,
    controller_key,
    involved_key,
    latest_event,
    owner_key,
)
from jobline.kube.fields import Fields
from jobline.kube.store import (
    IndexFn,
    Key,
    Obj,
    Store,
    by_pipeline_ref,
    key_of,
    same_version,
    strip_metadata,
)
from jobline.models import LABEL_PIPELINE, LABEL_PIPELINEJOB, Pipeline, PipelineJob

__all__ = ["Cache", "Key", "Obj", "Store", "key_of", "object_ref", "same_version"]


def object_ref(obj: Obj) -> dict[str, Any]:
    """Logging `extra` naming the object: kopf's formatters print it as [namespace/name]
    in text and as an "object" field in JSON."""
    meta = obj["metadata"]
    return {
        "k8s_ref": {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        }
    }


def validation_message(error: ValidationError) -> str:
    """The model's objections, naming each field by its path (at most five)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in error.errors()[:5]
    )


def by_controller(obj: Obj) -> list[Hashable]:
    key = controller_key(obj)
    return [key] if key else []


def by_uid(obj: Obj) -> list[Hashable]:
    return [obj["metadata"]["uid"]]


def by_involved(event: Obj) -> list[Hashable]:
    key = involved_key(event)
    return [key] if key else []


def resolve(store: Store, key: OwnerKey | None, kind: GroupKind) -> Obj | None:
    """The cached object of `kind` that `key` names: same namespace, group, kind and
    name, then the same UID (a namesake made since is not it)."""
    if key is None or key[1:3] != kind:
        return None
    found = store.get(key[0], key[3])
    return found if found is not None and found["metadata"].get("uid") == key[4] else None


def by_label(label: str) -> IndexFn:
    def index(obj: Obj) -> list[Hashable]:
        value = (obj["metadata"].get("labels") or {}).get(label)
        return [(obj["metadata"]["namespace"], value)] if value else []

    return index


def strip_run(run: Obj) -> Obj:
    """A run without its log tail: the operator never reads it back."""
    stripped = strip_metadata(run)
    status = stripped.get("status")
    if isinstance(status, dict) and "logs" in status:
        stripped["status"] = {k: v for k, v in status.items() if k != "logs"}
    return stripped


# What the operator reads of a Job: the cache keeps these fields, and a change of those
# that can change a run's decision wakes the run (RunController.on_job).
JOB_FIELDS = Fields(
    kept=(
        "metadata",
        "spec.backoffLimit",
        "spec.activeDeadlineSeconds",
        "spec.suspend",  # Kueue admits or preempts it
        # With a podFailurePolicy, only the Job controller knows which pods count.
        "spec.podFailurePolicy",
        # Of the pod template, only which containers it has (the first is the run's).
        "spec.template.spec.containers[].name",
        "status",
    ),
    wakes=(
        "metadata.deletionTimestamp",
        "spec.suspend",
        "status.conditions",
        "status.startTime",  # activeDeadlineSeconds counts from it
    ),
    dropped=("metadata.managedFields",),
)

# What the operator reads of a pod: each container's name and image, which init
# containers are sidecars, where it runs, its scheduling gates, and its status.
POD_FIELDS = Fields(
    kept=(
        "metadata",
        "spec.initContainers[].name",
        "spec.initContainers[].image",
        "spec.initContainers[].restartPolicy",
        "spec.containers[].name",
        "spec.containers[].image",
        "spec.nodeName",
        "spec.schedulingGates",
        "status",
    ),
    wakes=(
        "metadata.deletionTimestamp",
        "spec.schedulingGates",
        "status.phase",
        "status.conditions",
        "status.initContainerStatuses[].name",
        "status.initContainerStatuses[].state",
        "status.containerStatuses[].name",
        "status.containerStatuses[].state",
    ),
    dropped=("metadata.managedFields", "metadata.annotations", "metadata.generateName"),
)


def strip_job(job: Obj) -> Obj:
    stripped = JOB_FIELDS.pick(job)
    spec = stripped.setdefault("spec", {})
    spec.setdefault("template", {"spec": {"containers": []}})
    stripped.setdefault("status", {})
    return {"apiVersion": job.get("apiVersion", "batch/v1"), "kind": job.get("kind", "Job"),
            **stripped}  # fmt: skip


def strip_workload(workload: Obj) -> Obj:
    """Of Kueue's Workload: who owns it, where it is queued, its conditions, its admission's
    ClusterQueue and its eviction counts."""
    status = workload.get("status") or {}
    admission = status.get("admission") or {}
    return {
        "metadata": strip_metadata(workload)["metadata"],
        "spec": {"queueName": (workload.get("spec") or {}).get("queueName")},
        "status": {
            "conditions": status.get("conditions") or [],
            "admission": {"clusterQueue": admission.get("clusterQueue")} if admission else None,
            "schedulingStats": status.get("schedulingStats") or {},
        },
    }


def strip_event(event: Obj) -> Obj:
    keep = ("involvedObject", "reason", "message", "lastTimestamp", "eventTime")
    return {"metadata": strip_metadata(event)["metadata"], **{k: event.get(k) for k in keep}}


def strip_pod(pod: Obj) -> Obj:
    stripped = POD_FIELDS.pick(pod)
    spec = stripped.setdefault("spec", {})
    spec.setdefault("initContainers", [])
    spec.setdefault("containers", [])
    spec.setdefault("nodeName", None)
    spec.setdefault("schedulingGates", [])
    stripped.setdefault("status", {})
    return stripped


class Cache:
    """What the operator reads, indexed for its lookups: Pipelines, runs, their Jobs and
    pods, and the FailedCreate Events of Jobs."""

    def __init__(self) -> None:
        self.runs = Store({"uid": by_uid, "pipeline": by_pipeline_ref}, strip=strip_run)
        # Pipelines and Jobs may be read or created by the operator itself: their deletions
        # are remembered, so that an answer that comes after one never brings them back.
        self.pipelines = Store({"label": _pipeline_label}, remember_deletions=True)
        self.jobs = Store(
            {"owner": by_controller, "pipeline": by_label(LABEL_PIPELINE)},
            strip=strip_job,
            remember_deletions=True,
        )
        # Pods by their Job, and by their run's label: a pod whose Job is gone still
        # runs until it stops (the Job controller can make one as its Job is deleted).
        self.pods = Store(
            {"owner": by_controller, "run": by_label(LABEL_PIPELINEJOB)}, strip=strip_pod
        )
        # The Job controller's FailedCreate Events, by their Job.
        self.job_events = Store({"job": by_involved}, strip=strip_event)
        # The kubelet's Events of pods that cannot start (a volume), by their pod:
        # one store per reason, as each is its own watch (a field selector has no "in").
        self.pod_events = {
            reason: Store({"pod": by_involved}, strip=strip_event) for reason in POD_EVENT_REASONS
        }
        # Kueue's Workloads, by the Job they stand for (their controller).
        self.workloads = Store({"owner": by_controller}, strip=strip_workload)
        self._models: dict[Key, tuple[str, Pipeline | None, str | None]] = {}
        self._run_models: dict[Key, tuple[str, PipelineJob]] = {}
        self._lock = threading.Lock()

    def pipeline(self, namespace: str, name: str) -> Pipeline | None:
        """The Pipeline as a model, parsed once per version; None when it is not cached, or
        when the model rejects it (`pipeline_error` says why)."""
        return self._parsed(namespace, name)[0]

    def pipeline_error(self, namespace: str, name: str) -> str | None:
        """Why the cached Pipeline cannot be read as a model (fields the CRD's schema let
        through), naming the fields; None when it can, or is not cached."""
        return self._parsed(namespace, name)[1]

    def _parsed(self, namespace: str, name: str) -> tuple[Pipeline | None, str | None]:
        raw = self.pipelines.get(namespace, name)
        if raw is None:
            return None, None
        version = raw["metadata"].get("resourceVersion", "")
        with self._lock:
            cached = self._models.get((namespace, name))
        if cached and cached[0] == version:
            return cached[1], cached[2]
        model, error = None, None
        try:
            model = Pipeline.model_validate(raw)
        except ValidationError as e:  # parsed once per version: costs nothing after
            error = validation_message(e)
        with self._lock:
            self._models[(namespace, name)] = (version, model, error)
        return model, error

    def run_model(self, raw: Obj) -> PipelineJob:
        """The run as a model, parsed once per version (events of its Job and pods sync it
        again and again while its own object does not change). Callers copy before change."""
        key, version = key_of(raw), raw["metadata"].get("resourceVersion", "")
        with self._lock:
            cached = self._run_models.get(key)
        if cached and cached[0] == version:
            return cached[1]
        model = PipelineJob.model_validate(raw)
        with self._lock:
            self._run_models[key] = (version, model)
        return model

    def run_models_kept(self) -> int:
        with self._lock:
            return len(self._run_models)

    def forget_run_model(self, key: Key, uid: str) -> None:
        """Forgets the parsed run of that UID (not a newer run of the same name)."""
        with self._lock:
            cached = self._run_models.get(key)
            if cached is not None and cached[1].metadata.uid == uid:
                del self._run_models[key]

    def forget_pipeline(self, namespace: str, name: str) -> None:
        self.pipelines.delete((namespace, name))
        with self._lock:
            self._models.pop((namespace, name), None)

    # --- owners and children, resolved strictly -------------------------------------

    def job_of_run(self, run: Obj) -> Obj | None:
        """The Job the run controls."""
        return self.jobs.one("owner", owner_key(run, RUN_KIND))

    def pods_of_job(self, job: Obj | None) -> list[Obj]:
        return self.pods.by("owner", owner_key(job, JOB_KIND)) if job else []

    def workload_of_job(self, job: Obj | None) -> Obj | None:
        """Kueue's Workload for the Job."""
        return self.workloads.one("owner", owner_key(job, JOB_KIND)) if job else None

    def run_of(self, job: Obj | None) -> Obj | None:
        """The cached run that controls the Job, if the Job's reference names it exactly."""
        return resolve(self.runs, controller_key(job), RUN_KIND) if job else None

    def predecessor_of(self, run: Obj, job: Obj) -> bool:
        """Whether `job`, holding the run's Job name, is a predecessor's: controlled by a
        run of the same name and namespace with another UID (deleted, its Job not yet
        collected), not by something else."""
        key = controller_key(job)
        meta = run["metadata"]
        return (
            key is not None
            and key[:4] == (meta["namespace"], *RUN_KIND, meta["name"])
            and key[4] != meta["uid"]
        )

    def successor_of(self, job: Obj) -> Obj | None:
        """The cached run whose Job name a predecessor's Job holds (see predecessor_of)."""
        key = controller_key(job)
        if key is None or key[1:3] != RUN_KIND:
            return None
        run = self.runs.get(key[0], key[3])
        return run if run is not None and self.predecessor_of(run, job) else None

    def job_of(self, child: Obj | None) -> Obj | None:
        """The cached Job that controls a pod or a Workload, named exactly."""
        return resolve(self.jobs, controller_key(child), JOB_KIND) if child else None

    def job_of_event(self, event: Obj) -> Obj | None:
        return resolve(self.jobs, involved_key(event), JOB_KIND)

    def pod_of_event(self, event: Obj) -> Obj | None:
        return resolve(self.pods, involved_key(event), POD_KIND)

    def failed_create_message(self, job: Obj) -> str | None:
        """Why the Job controller cannot create the Job's pod: its latest FailedCreate."""
        latest = latest_event(self.job_events.by("job", owner_key(job, JOB_KIND)))
        return None if latest is None else str(latest.get("message") or "")

    def pod_events_of(self, pod: Obj | None) -> list[Obj]:
        """The Events that say why `pod` cannot start (FailedMount, FailedAttachVolume)."""
        if pod is None:
            return []
        key = owner_key(pod, POD_KIND)
        return [e for store in self.pod_events.values() for e in store.by("pod", key)]

    def pods_of_run(self, run: Obj, job: Obj | None) -> list[Obj]:
        """The pods that count for a run: its Job's, and those labelled as the run's whose
        Job, named as the run's Job is, is gone (orphans still stopping: they hold the
        run's slot until they have)."""
        meta = run["metadata"]
        own_job = job_name(meta["name"])
        orphans = [
            p
            for p in self.pods.by("run", (meta["namespace"], short_name(meta["name"])))
            if (key := controller_key(p)) is not None
            and key[1:4] == (*JOB_KIND, own_job)
            and self.job_of(p) is None
        ]
        return self.pods_of_job(job) + orphans

    def pipeline_of_label(self, namespace: str, label: str) -> str | None:
        found = self.pipelines.one("label", (namespace, label))
        return found["metadata"]["name"] if found else None


def _pipeline_label(pipeline: Obj) -> list[Any]:
    meta = pipeline["metadata"]
    return [(meta["namespace"], short_name(meta["name"]))]
