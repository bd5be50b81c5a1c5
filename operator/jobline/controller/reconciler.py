"""Level-triggered reconciliation of PipelineJobs.

Every change (a PipelineJob or Pipeline from kopf, a Job or pod from the
label-selected informers, a timer) queues the run's key; `reconcile` then reads
what is (caches of all four kinds), decides with the pure functions of
jobline.core, acts (create or delete the Job), and writes the status once, only
when it changed. Each step is idempotent, so a restart at any instant resumes
correctly: the Job's name is deterministic and adoption checks its owner UID.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from jobline.controller import metrics
from jobline.controller.informers import Informer
from jobline.controller.kube import Kube
from jobline.controller.workqueue import WorkQueue
from jobline.core.jobs import build_job, job_name, short_name
from jobline.core.logtail import make_tail
from jobline.core.pipelines import admit, holds_slot, waiting
from jobline.core.status import (
    ENDED_BY_OPERATOR,
    Outcome,
    compute_status,
    finish,
    job_finished,
    parse_time,
    started,
)
from jobline.core.variables import InvalidVariables, resolve_variables
from jobline.models import (
    ANNOTATION_SCHEDULED_TIME,
    API_GROUP,
    API_VERSION,
    LABEL_PIPELINE,
    Phase,
    Pipeline,
    PipelineJob,
    PipelineJobStatus,
    Trigger,
    TriggerType,
    to_json,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)

LOG_REFRESH_SECONDS = 5.0
RETRY_SECONDS = 5.0
EVENT_BY_PHASE = {
    Phase.QUEUED: ("Normal", "Queued"),
    Phase.RUNNING: ("Normal", "Started"),
    Phase.COMPLETE: ("Normal", "Completed"),
    Phase.ERROR: ("Warning", "Failed"),
    Phase.STOPPED: ("Normal", "Stopped"),
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def key_of(obj: Obj) -> Key:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        jobs: Informer,
        pods: Informer,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.jobs = jobs
        self.pods = pods
        self.clock = clock
        self.queue: WorkQueue[Key] = WorkQueue()
        self._lock = threading.Lock()  # guards the dicts below
        self.runs: dict[Key, Obj] = {}
        self.pipelines: dict[Key, Obj] = {}
        self._admission: dict[Key, threading.Lock] = {}
        self._last_log_fetch: dict[Key, float] = {}
        self._final_log_pod: dict[Key, str] = {}  # the pod whose last log was captured
        self._key_by_uid: dict[str, Key] = {}
        self._first_seen: dict[str, float] = {}  # run UID -> when first seen without a Job
        # Told when a Pipeline's runs change, so that its status follows them.
        self.pipeline_changed: Callable[[Key], None] = lambda key: None
        self._pod_deleted: set[Key] = set()

    # --- events in ------------------------------------------------------

    def on_run(self, event: str | None, body: Obj) -> None:
        key = key_of(body)
        with self._lock:
            if event == "DELETED":
                self.runs.pop(key, None)
                self._key_by_uid.pop(body["metadata"]["uid"], None)
                self._last_log_fetch.pop(key, None)
                self._final_log_pod.pop(key, None)
                self._pod_deleted.discard(key)
                self._first_seen.pop(body["metadata"]["uid"], None)
            else:
                self.runs[key] = body
                self._key_by_uid[body["metadata"]["uid"]] = key
                if not (body.get("status") or {}).get("jobName"):
                    self._first_seen.setdefault(body["metadata"]["uid"], time.monotonic())
        pipeline = body["spec"]["pipelineRef"]["name"]
        if event == "DELETED" or not (body.get("status") or {}).get("phase"):
            # A slot was freed, or a newcomer may change everyone's queue position.
            self.queue_waiting(key[0], pipeline)
        self.queue.add(key)
        self.pipeline_changed((key[0], pipeline))

    def on_pipeline(self, event: str | None, body: Obj) -> None:
        key = key_of(body)
        with self._lock:
            if event == "DELETED":
                self.pipelines.pop(key, None)
            else:
                self.pipelines[key] = body
        for run_key in self.runs_of(*key):
            self.queue.add(run_key)

    def on_job(self, event: str, job: Obj) -> None:
        run_key = self._run_of_job(job)
        if run_key:
            self.queue.add(run_key)
        if event == "DELETED" or job_finished(job):
            pipeline = job["metadata"].get("labels", {}).get(LABEL_PIPELINE)
            if pipeline:
                for key in self.runs_of(job["metadata"]["namespace"], None, label=pipeline):
                    self.queue.add(key)

    def on_pod(self, event: str, pod: Obj) -> None:
        meta = pod["metadata"]
        job = self.jobs.get(meta["namespace"], meta.get("labels", {}).get("job-name", ""))
        run_key = self._run_of_job(job) if job else None
        if run_key is None:
            return
        if event == "DELETED" and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            with self._lock:
                run = self.runs.get(run_key)
                if run and not run["spec"].get("stopped"):
                    self._pod_deleted.add(run_key)
        self.queue.add(run_key)

    def _run_of_job(self, job: Obj) -> Key | None:
        with self._lock:
            return self._key_by_uid.get(controller_uid(job) or "")

    def runs_of(self, namespace: str, pipeline: str | None, label: str | None = None) -> list[Key]:
        """Runs of a Pipeline, by its name or by its (possibly shortened) label value."""
        with self._lock:
            return [
                key
                for key, run in self.runs.items()
                if key[0] == namespace
                and (
                    run["spec"]["pipelineRef"]["name"] == pipeline
                    or short_name(run["spec"]["pipelineRef"]["name"]) == label
                )
            ]

    def queue_waiting(self, namespace: str, pipeline: str) -> None:
        for key in self.runs_of(namespace, pipeline):
            self.queue.add(key)

    # --- reconciling ----------------------------------------------------

    def start(self, workers: int = 4) -> None:
        self.queue.run_workers(
            workers, self.reconcile, failure_logger("PipelineJob"), RETRY_SECONDS
        )

    def reconcile(self, key: Key) -> None:
        # Decisions need the whole picture of Jobs and pods: wait for the first lists.
        if not (self.jobs.synced.wait(60) and self.pods.synced.wait(60)):
            self.queue.add_after(key, RETRY_SECONDS)
            return
        self._reconcile(key)

    def _reconcile(self, key: Key) -> None:
        with self._lock:
            raw = self.runs.get(key)
        if raw is None:
            return
        run = PipelineJob.model_validate(raw)
        namespace, name = key
        job = self.jobs.get(namespace, job_name(name))
        if job is not None and controller_uid(job) != run.metadata.uid:
            if not (run.status.phase and run.status.phase.terminal):
                self._finish(
                    raw,
                    run,
                    Outcome(
                        Phase.ERROR,
                        "JobRejected",
                        f"a Job named {job_name(name)} already exists and belongs to something "
                        "else; delete or rename it, then start a new run",
                    ),
                )
            return
        if run.status.phase and run.status.phase.terminal:
            # The operator can end a run before its Job ends (a pending deadline, a stop):
            # finish the Job too, also when a restart came between the two steps.
            if job is not None and run.status.reason in ENDED_BY_OPERATOR:
                self._delete_job(job)
            return
        if job is None:
            self._without_job(raw, run)
        else:
            self._with_job(raw, run, job)

    def _without_job(self, raw: Obj, run: PipelineJob) -> None:
        if run.spec.stopped:
            message = "stopped before it started" if not run.status.job_name else "stopped"
            self._finish(raw, run, Outcome(Phase.STOPPED, "Stopped", f"the run was {message}"))
            return
        if run.status.job_name:  # the Job existed and was deleted by someone else
            self._finish(
                raw,
                run,
                Outcome(
                    Phase.ERROR,
                    "Failed",
                    f"the run's Job {run.status.job_name} was deleted by someone else",
                ),
            )
            return
        namespace, name = key_of(raw)
        ref = run.spec.pipeline_ref.name
        with self._lock:
            pipeline_raw = self.pipelines.get((namespace, ref))
        if pipeline_raw is None:
            self._write_queued(
                raw,
                run,
                "PipelineNotFound",
                f"Pipeline {ref} does not exist in namespace {namespace}; "
                "the run starts when it is created",
            )
            return
        pipeline = Pipeline.model_validate(pipeline_raw)
        raw = self._ensure_owned_by_pipeline(raw, pipeline_raw)
        try:
            variables = resolve_variables(pipeline.spec.variables, run.spec.variables)
        except InvalidVariables as e:
            self._finish(raw, run, Outcome(Phase.ERROR, "InvalidVariables", str(e)))
            return

        with self._admission_lock(namespace, ref):
            active, queued = self.slots(namespace, ref)
            spec = pipeline.spec
            admission = admit(
                raw, spec.concurrency_policy, spec.max_concurrent_runs, active, queued
            )
            if admission.forbidden:
                message = (
                    f"{len(active)} run(s) of {ref} already hold its {spec.max_concurrent_runs} "
                    "slot(s) and its concurrencyPolicy is Forbid"
                )
                self._finish(raw, run, Outcome(Phase.STOPPED, "Forbidden", message))
                self.kube.post_event(
                    pipeline_raw, "Normal", "RunSkipped", f"{name}: {message}", self.clock()
                )
                return
            if not admission.start:
                self._write_queued(
                    raw,
                    run,
                    "WaitingForRun",
                    f"waiting for a free slot: {spec.max_concurrent_runs} run(s) of "
                    f"{ref} may run at once",
                    admission.queue_position,
                )
                return
            for victim in admission.replace:
                self._replace(victim, name)
            run.status.trigger = trigger_of(raw)
            body = build_job(pipeline, run, variables)
            try:
                created = self.kube.create_job(body)
            except ApiException as e:
                if e.status == 409:  # created before a restart: adopt it if it is ours
                    existing = self.kube.read_job(namespace, body["metadata"]["name"])
                    if existing is not None:
                        self.jobs.put(existing)
                    self.queue.add(key_of(raw))
                    return
                if e.status in (400, 403, 422):
                    self._finish(raw, run, Outcome(Phase.ERROR, "JobRejected", _api_message(e)))
                    return
                raise
            self.jobs.put(created)
        seen = self._first_seen.pop(run.metadata.uid or "", None)
        if seen is not None:
            metrics.JOB_CREATION_LATENCY.observe(time.monotonic() - seen)
        log.info("created Job %s", created["metadata"]["name"], extra=object_ref(raw))
        status = run.status.model_copy(deep=True)
        status.job_name = created["metadata"]["name"]
        status.variables = variables
        status.queue_position = None
        outcome = Outcome(Phase.QUEUED, "Queued", "the Job is created; waiting for its pod")
        self._write(raw, finish(status, outcome, raw["metadata"].get("generation"), self.clock()))

    def _with_job(self, raw: Obj, run: PipelineJob, job: Obj) -> None:
        namespace, name = key_of(raw)
        with self._lock:
            pipeline_raw = self.pipelines.get((namespace, run.spec.pipeline_ref.name))
        pipeline = Pipeline.model_validate(pipeline_raw) if pipeline_raw else None
        pods = [
            p
            for p in self.pods.items()
            if p["metadata"]["namespace"] == namespace
            and p["metadata"].get("labels", {}).get("job-name") == job["metadata"]["name"]
        ]
        now = self.clock()
        pending_deadline = pipeline.spec.pending_deadline_seconds if pipeline else 600
        tail_lines = pipeline.spec.logs.tail_lines if pipeline else 100
        stopping = run.spec.stopped and not job_finished(job)
        logs = self._maybe_fetch_log((namespace, name), pods, tail_lines, force=stopping, now=now)
        with self._lock:
            pod_deleted = (namespace, name) in self._pod_deleted
        status = compute_status(
            run,
            job,
            pods,
            now,
            pending_deadline,
            logs,
            raw["metadata"].get("generation"),
            pod_deleted,
        )
        ended_by_operator = bool(status.phase and status.phase.terminal) and (
            status.reason in ENDED_BY_OPERATOR
        )
        if stopping or (ended_by_operator and not job_finished(job)):
            self._delete_job(job)
        self._write(raw, status)
        if status.phase == Phase.RUNNING:
            self.queue.add_after((namespace, name), LOG_REFRESH_SECONDS)
        elif status.phase == Phase.QUEUED and pods:
            created = pods[-1]["metadata"]["creationTimestamp"]
            waited = (now - dt.datetime.fromisoformat(created.replace("Z", "+00:00"))).seconds
            self.queue.add_after((namespace, name), max(1, pending_deadline - waited + 1))

    def _maybe_fetch_log(
        self,
        key: Key,
        pods: list[Obj],
        tail_lines: int,
        force: bool,
        now: dt.datetime,
    ) -> Any:
        """The log tail of the latest started pod, fetched at a bounded rate while it runs
        and once more when it has ended; None when nothing new was fetched."""
        pods = sorted(
            (p for p in pods if started(p)), key=lambda p: p["metadata"]["creationTimestamp"]
        )
        if not pods:
            return None
        pod = pods[-1]
        uid = pod["metadata"]["uid"]
        ended = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
        with self._lock:
            if self._final_log_pod.get(key) == uid:
                return None
            last = self._last_log_fetch.get(key, 0.0)
            due = force or ended or time.monotonic() - last >= LOG_REFRESH_SECONDS
            if not due:
                return None
            self._last_log_fetch[key] = time.monotonic()
        container = pod["spec"]["containers"][0]["name"]
        raw = self.kube.read_log(pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        if raw is None:
            return None
        if ended or force:
            with self._lock:
                self._final_log_pod[key] = uid
        return make_tail(raw, tail_lines, now)

    # --- admission ------------------------------------------------------

    def _admission_lock(self, namespace: str, pipeline: str) -> threading.Lock:
        with self._lock:
            return self._admission.setdefault((namespace, pipeline), threading.Lock())

    def slots(self, namespace: str, pipeline: str) -> tuple[list[Obj], list[Obj]]:
        """The runs of a Pipeline holding a slot, and those waiting for one.

        A Job whose run is not (yet) known holds a slot too: after a restart,
        kopf may deliver the runs after the Job informer has listed their Jobs.
        """
        label = short_name(pipeline)
        with self._lock:
            runs = [r for r in self.runs.values() if r["metadata"]["namespace"] == namespace]
            by_uid = {r["metadata"]["uid"]: r for r in runs}
        jobs = [
            j
            for j in self.jobs.items()
            if j["metadata"]["namespace"] == namespace
            and j["metadata"].get("labels", {}).get(LABEL_PIPELINE) == label
        ]
        with_job = {controller_uid(j) for j in jobs}
        active = [
            by_uid.get(controller_uid(j) or "") or _placeholder(j)
            for j in jobs
            if not job_finished(j)
        ]
        active = [r for r in active if holds_slot(r, True)]
        mine = [r for r in runs if r["spec"]["pipelineRef"]["name"] == pipeline]
        queued = [r for r in mine if waiting(r, r["metadata"]["uid"] in with_job)]
        return active, queued

    def _replace(self, victim: Obj, by: str) -> None:
        """Ends an active run to make room for `by` (concurrencyPolicy Replace)."""
        if not victim["spec"]:  # a Job whose run is not known yet: end the Job alone
            self._delete_job(self.jobs.get(*key_of(victim)) or victim)
            return
        run = PipelineJob.model_validate(victim)
        self._finish(
            victim,
            run,
            Outcome(Phase.STOPPED, "Replaced", f"replaced by the newer run {by}"),
        )
        job = self.jobs.get(key_of(victim)[0], job_name(run.metadata.name))
        if job is not None:
            self._delete_job(job)

    # --- writing --------------------------------------------------------

    def _ensure_owned_by_pipeline(self, raw: Obj, pipeline: Obj) -> Obj:
        """Gives the run an ownerReference to its Pipeline, so deleting it deletes its runs."""
        owners = raw["metadata"].get("ownerReferences") or []
        uid = pipeline["metadata"]["uid"]
        if any(o.get("uid") == uid for o in owners):
            return raw
        ref = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Pipeline",
            "name": pipeline["metadata"]["name"],
            "uid": uid,
        }
        updated = self.kube.add_run_owner(*key_of(raw), [*owners, ref])
        self._store(updated)
        return updated

    def _write_queued(
        self, raw: Obj, run: PipelineJob, reason: str, message: str, position: int | None = None
    ) -> None:
        status = run.status.model_copy(deep=True)
        status.queue_position = position
        status.trigger = status.trigger or trigger_of(raw)
        outcome = Outcome(Phase.QUEUED, reason, message)
        self._write(raw, finish(status, outcome, raw["metadata"].get("generation"), self.clock()))

    def _finish(self, raw: Obj, run: PipelineJob, outcome: Outcome) -> None:
        status = run.status.model_copy(deep=True)
        status.trigger = status.trigger or trigger_of(raw)
        self._write(raw, finish(status, outcome, raw["metadata"].get("generation"), self.clock()))

    def _write(self, raw: Obj, status: PipelineJobStatus) -> None:
        """Patches the status once, and only when it changed; posts an Event on a new phase."""
        new = to_json(status)
        old = raw.get("status") or {}
        if _comparable(new) == _comparable(old):
            return
        updated = self.kube.patch_run_status(*key_of(raw), new)
        self._store(updated)
        if status.phase and old.get("phase") != status.phase.value:
            log.info(
                "%s -> %s (%s): %s",
                old.get("phase") or "new",
                status.phase.value,
                status.reason,
                status.message,
                extra=object_ref(raw),
            )
            if status.phase.terminal:
                namespace = raw["metadata"]["namespace"]
                metrics.RUNS_FINISHED.labels(namespace, status.phase.value).inc()
                if status.duration_seconds is not None:
                    metrics.RUN_DURATION.labels(namespace).observe(status.duration_seconds)
            event_type, reason = EVENT_BY_PHASE.get(status.phase, ("Normal", status.reason or ""))
            if reason:
                self.kube.post_event(
                    updated, event_type, reason, status.message or "", self.clock()
                )
            if status.phase.terminal:
                self.queue_waiting(raw["metadata"]["namespace"], raw["spec"]["pipelineRef"]["name"])

    def _store(self, updated: Obj) -> None:
        key = key_of(updated)
        with self._lock:
            current = self.runs.get(key)
            newer = current is None or int(updated["metadata"]["resourceVersion"]) >= int(
                current["metadata"]["resourceVersion"]
            )
            if key in self.runs and newer:
                self.runs[key] = updated

    def _delete_job(self, job: Obj) -> None:
        if not job["metadata"].get("deletionTimestamp"):
            log.info("deleting Job %s", job["metadata"]["name"], extra=object_ref(job))
            self.kube.delete_job(*key_of(job))


def failure_logger(kind: str) -> Callable[[Key, Exception], None]:
    """Logs a failed reconciliation of an object of `kind`; the work queue retries it."""

    def log_failure(key: Key, error: Exception) -> None:
        ref = {"k8s_ref": {"kind": kind, "namespace": key[0], "name": key[1]}}
        log.error("reconciling failed: %s; retrying", error, exc_info=error, extra=ref)

    return log_failure


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


def trigger_of(run: Obj) -> Trigger:
    """Schedule when the run was created by a schedule (it carries the time), else Manual."""
    scheduled = run["metadata"].get("annotations", {}).get(ANNOTATION_SCHEDULED_TIME)
    if scheduled:
        return Trigger(type=TriggerType.SCHEDULE, scheduled_time=parse_time(scheduled))
    return Trigger()


def _placeholder(job: Obj) -> Obj:
    """Stands for the unknown run of a Job: it holds a slot until its run is known."""
    return {
        "metadata": {**job["metadata"], "uid": controller_uid(job)},
        "spec": {},
        "status": {"phase": Phase.RUNNING.value},
    }


def _comparable(status: Obj) -> Obj:
    """The status without empty fields and the log tail's own timestamp."""
    cleaned = json.loads(json.dumps(status))
    logs = cleaned.get("logs")
    if isinstance(logs, dict):
        logs.pop("updateTime", None)
    return drop_empty(cleaned)  # type: ignore[no-any-return]


def drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def _api_message(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "")["message"]
    except (ValueError, TypeError, KeyError):
        message = str(error.reason)
    return f"the apiserver rejected the Job: {message}"
