"""Per-run sync: observe, decide, act, write.

Every change (a PipelineJob or Pipeline from kopf, a Job or pod from the
label-selected informers, a timer) queues the run's key. `sync` reads what is
from the indexed caches, asks `decide_run` what the status should be and what to
do, does it (create or delete the Job, read the log), and writes the status once,
only when it changed, with the resourceVersion it decided from as a
precondition. Each step is idempotent, so a restart at any instant resumes
correctly: the Job's name is deterministic and adoption checks its owner UID.

Only this controller writes a run's status, one worker per run at a time; the
Pipeline controller's admission decisions reach it as in-memory verdicts.
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
from pydantic import ValidationError

from jobline.controller import metrics
from jobline.controller.cache import (
    Key,
    Obj,
    Store,
    by_controller,
    by_label,
    by_pipeline_ref,
    by_uid,
    controller_uid,
    key_of,
    strip_job,
    strip_pod,
    strip_run,
)
from jobline.controller.kube import Kube
from jobline.controller.logs import LogTails
from jobline.controller.workqueue import WorkQueue
from jobline.core.jobs import job_name, short_name
from jobline.core.run_status import (
    Admission,
    Decision,
    Observed,
    Outcome,
    Verdict,
    decide_run,
    ended,
    finish,
    parse_time,
    started,
)
from jobline.models import (
    API_GROUP,
    API_VERSION,
    ENDED_BY_OPERATOR,
    LABEL_PIPELINE,
    POD_FINALIZER,
    Phase,
    Pipeline,
    PipelineJob,
    PipelineJobStatus,
    Reason,
    to_json,
)

log = logging.getLogger(__name__)

# A run whose Job was just created shows QUEUED only if its pod has not started within
# this delay: most pods start sooner, and their run goes straight to RUNNING in one write.
QUEUED_WRITE_DELAY = 1.0
# A run that already shows QUEUED (it waited for a slot) keeps showing it a little longer:
# only its reason would change.
REQUEUED_WRITE_DELAY = 5.0
# A Job with no pod this long after its creation: ask the Job controller's Events why.
NO_POD_GRACE = 2.0
EVENT_BY_PHASE = {
    Phase.RUNNING: ("Normal", "Started"),
    Phase.COMPLETE: ("Normal", "Completed"),
    Phase.ERROR: ("Warning", "Failed"),
    Phase.STOPPED: ("Normal", "Stopped"),
}
# Waiting runs get an Event once, saying why they wait.
EVENT_BY_REASON = {
    Reason.WAITING_FOR_RUN: ("Normal", "Queued"),
    Reason.PIPELINE_NOT_FOUND: ("Warning", "PipelineNotFound"),
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Cache:
    """The four kinds the operator reads, indexed for its lookups."""

    def __init__(self) -> None:
        self.runs = Store({"uid": by_uid, "pipeline": by_pipeline_ref}, strip=strip_run)
        self.pipelines = Store({"label": _pipeline_label})
        self.jobs = Store(
            {"uid": by_uid, "owner": by_controller, "pipeline": by_label(LABEL_PIPELINE)},
            strip=strip_job,
        )
        self.pods = Store({"owner": by_controller}, strip=strip_pod)
        self._models: dict[Key, tuple[str, Pipeline]] = {}
        self._run_models: dict[Key, tuple[str, PipelineJob]] = {}
        self._lock = threading.Lock()

    def pipeline(self, namespace: str, name: str) -> Pipeline | None:
        """The Pipeline as a model, parsed once per version."""
        raw = self.pipelines.get(namespace, name)
        if raw is None:
            return None
        version = raw["metadata"].get("resourceVersion", "")
        with self._lock:
            cached = self._models.get((namespace, name))
        if cached and cached[0] == version:
            return cached[1]
        model = Pipeline.model_validate(raw)
        with self._lock:
            self._models[(namespace, name)] = (version, model)
        return model

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

    def forget_run_model(self, key: Key) -> None:
        with self._lock:
            self._run_models.pop(key, None)

    def forget_pipeline(self, namespace: str, name: str) -> None:
        self.pipelines.delete((namespace, name))
        with self._lock:
            self._models.pop((namespace, name), None)

    def pipeline_of_label(self, namespace: str, label: str) -> str | None:
        found = self.pipelines.one("label", (namespace, label))
        return found["metadata"]["name"] if found else None


def _pipeline_label(pipeline: Obj) -> list[Any]:
    meta = pipeline["metadata"]
    return [(meta["namespace"], short_name(meta["name"]))]


class Admissions:
    """The Pipeline controller's decisions for runs without a Job, by run UID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[str, Verdict] = {}

    def get(self, uid: str) -> Verdict | None:
        with self._lock:
            return self._verdicts.get(uid)

    def set(self, uid: str, verdict: Verdict) -> bool:
        """Records a verdict; False when it was already the run's."""
        with self._lock:
            if self._verdicts.get(uid) == verdict:
                return False
            self._verdicts[uid] = verdict
            return True

    def admitted(self, uid: str) -> bool:
        verdict = self.get(uid)
        return verdict is not None and verdict.admission == Admission.START

    def forget(self, uid: str) -> None:
        with self._lock:
            self._verdicts.pop(uid, None)


class RunController:
    def __init__(
        self,
        kube: Kube,
        cache: Cache,
        admissions: Admissions,
        synced: Callable[[str], bool],
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.cache = cache
        self.admissions = admissions
        self.synced = synced
        self.clock = clock
        self.logs = LogTails(kube)
        self.queue: WorkQueue[Key] = WorkQueue()
        # Told when a run changes: (namespace, pipeline name, whether admission may change).
        self.pipeline_changed: Callable[[str, str, bool], None] = lambda ns, name, urgent: None
        self._lock = threading.Lock()
        self._job_created: dict[str, float] = {}  # run UID -> when this process created its Job
        self._first_seen: dict[str, float] = {}  # run UID -> when first seen, for the metric

    # --- events in ------------------------------------------------------------

    def on_run(self, event: str, run: Obj, old: Obj | None) -> None:
        """A run changed; the run informer has already updated the cache."""
        namespace, name = key_of(run)
        pipeline = run["spec"]["pipelineRef"]["name"]
        uid = run["metadata"]["uid"]
        if event == "DELETED":
            self.cache.forget_run_model((namespace, name))
            self._forget(uid)
            self.pipeline_changed(namespace, pipeline, True)
            return
        if not (run.get("status") or {}).get("phase"):
            self._first_seen.setdefault(uid, time.monotonic())
        self.queue.add((namespace, name))
        phase = (run.get("status") or {}).get("phase")
        old_phase = ((old or {}).get("status") or {}).get("phase")
        urgent = (
            old is None
            or (phase != old_phase and phase in ("COMPLETE", "ERROR", "STOPPED"))
            or run["spec"] != old["spec"]
        )
        self.pipeline_changed(namespace, pipeline, urgent)

    def on_pipeline(self, namespace: str, name: str) -> None:
        for run in self.cache.runs.by("pipeline", (namespace, name)):
            self.queue.add(key_of(run))

    def on_job(self, event: str, job: Obj, old: Obj | None) -> None:
        if event == "MODIFIED" and old is not None and _job_facts(job) == _job_facts(old):
            return  # counters the Job controller keeps; nothing a run's decision reads
        run = self.cache.runs.one("uid", controller_uid(job) or "")
        if run is not None:
            self.queue.add(key_of(run))
        else:  # a Job whose run is not known (yet) holds a slot of its Pipeline
            namespace = job["metadata"]["namespace"]
            label = (job["metadata"].get("labels") or {}).get(LABEL_PIPELINE, "")
            pipeline = self.cache.pipeline_of_label(namespace, label)
            if pipeline:
                self.pipeline_changed(namespace, pipeline, True)

    def on_pod(self, event: str, pod: Obj, old: Obj | None) -> None:
        if event == "MODIFIED" and old is not None and _pod_facts(pod) == _pod_facts(old):
            return
        job = self.cache.jobs.one("uid", controller_uid(pod) or "")
        run = self.cache.runs.one("uid", controller_uid(job) or "") if job else None
        if run is not None:
            self.queue.add(key_of(run))
            status = run.get("status") or {}
            if status.get("reason") in ENDED_BY_OPERATOR and ended(pod):
                # A run the operator ended holds its slot until its pods have stopped.
                namespace = run["metadata"]["namespace"]
                self.pipeline_changed(namespace, run["spec"]["pipelineRef"]["name"], True)
        elif (
            event != "DELETED"
            and pod["metadata"].get("deletionTimestamp")
            and self.synced(pod["metadata"]["namespace"])
        ):
            # Its run (or Job) is gone, and with it the need to record how the pod ended.
            try:
                self._release([pod])
            except (ApiException, OSError) as e:  # its next event tries again
                log.warning("cannot release pod %s: %s", pod["metadata"]["name"], e)

    def _forget(self, uid: str) -> None:
        """What is kept of a run only while it runs: dropped when it ends or is deleted."""
        self.admissions.forget(uid)
        self.logs.forget(uid)
        with self._lock:
            self._job_created.pop(uid, None)
            self._first_seen.pop(uid, None)

    # --- sync -----------------------------------------------------------------

    def start(self, workers: int) -> None:
        self.queue.run_workers(workers, self.sync, failure_logger("PipelineJob"), "run")

    def sync(self, key: Key) -> None:
        # Decisions need the whole picture of Jobs and pods: wait for the first lists.
        if not self.synced(key[0]):
            self.queue.add_after(key, 0.5)
            return
        raw = self.cache.runs.get(*key)
        if raw is None:
            return
        run = self.cache.run_model(raw)
        uid = run.metadata.uid or ""
        namespace, name = key
        try:
            pipeline = self._pipeline(run)
        except ValidationError as e:  # the schema let through what the operator cannot read
            self._end_unreadable(raw, run, e)
            return
        job = self.cache.jobs.one("owner", uid)
        foreign = job is None and self.cache.jobs.get(namespace, job_name(name)) is not None
        pods = self.cache.pods.by("owner", job["metadata"]["uid"]) if job else []
        now = self.clock()
        ended_already = bool(run.status.phase and run.status.phase.terminal)
        seen = Observed(
            run=run,
            pipeline=pipeline,
            job=job,
            pods=pods,
            foreign_job=foreign,
            pod_creation_error=None if ended_already else self._pod_creation_error(job, pods, now),
            verdict=self.admissions.get(uid),
            generation=raw["metadata"].get("generation"),
        )
        decision = decide_run(seen, now)
        if ended_already:
            if decision.delete_job and job is not None:
                self._delete_job(job)
            self._release(pods)  # recorded: the API may let them go
            return
        if pipeline is not None:
            raw = self._ensure_owned_by_pipeline(raw, pipeline)
        if decision.awaiting_admission:
            self.pipeline_changed(namespace, run.spec.pipeline_ref.name, True)
            return
        if decision.job_to_create is not None:
            self._create_job(raw, decision)
            return
        self._read_log(uid, pods, pipeline, decision)
        if decision.delete_job and job is not None:
            self._delete_job(job)
        if self._write_later(uid, raw, decision.status):
            return
        if self._write(raw, decision.status) and decision.status.phase:
            if decision.status.phase.terminal:
                self._release(pods)
            elif pods:  # earlier attempts are counted: only the latest one is still news
                latest = max(pods, key=lambda p: p["metadata"]["creationTimestamp"])
                self._release([p for p in pods if p is not latest and ended(p)])
        self._requeue(key, uid, decision)

    def _pipeline(self, run: PipelineJob) -> Pipeline | None:
        """The run's Pipeline. Pipelines and runs arrive by different watches, so a new run
        can come before its Pipeline: on a miss, the API says whether it exists (once per
        run: a run already waiting for its Pipeline is not asked about again)."""
        namespace, name = run.metadata.namespace or "", run.spec.pipeline_ref.name
        found = self.cache.pipeline(namespace, name)
        if found is not None or run.status.reason == Reason.PIPELINE_NOT_FOUND:
            return found
        raw = self.kube.read_pipeline(namespace, name)
        if raw is None:
            return None
        self.cache.pipelines.put(raw)
        return self.cache.pipeline(namespace, name)

    def _pod_creation_error(self, job: Obj | None, pods: list[Obj], now: dt.datetime) -> str | None:
        """Why the Job has no pod yet, when it has had time to make one: the message of the
        Job controller's latest FailedCreate Event (a quota, Pod Security, a webhook)."""
        if job is None or pods or job["metadata"].get("deletionTimestamp"):
            return None
        created = parse_time(job["metadata"].get("creationTimestamp")) or now
        if (now - created).total_seconds() < NO_POD_GRACE:
            return None
        try:
            return self.kube.failed_create_message(
                job["metadata"]["namespace"], job["metadata"]["uid"]
            )
        except (ApiException, OSError) as e:
            log.warning("cannot read the Events of Job %s: %s", job["metadata"]["name"], e)
            return None

    def _release(self, pods: list[Obj]) -> None:
        """Removes the operator's finalizer from pods whose end is recorded (or no longer
        needed), so that the API can delete them."""
        for pod in pods:
            if POD_FINALIZER in (pod["metadata"].get("finalizers") or []):
                updated = self.kube.remove_pod_finalizer(*key_of(pod), POD_FINALIZER)
                if updated is not None:  # syncs before its watch event must not ask again
                    self.cache.pods.put(updated)

    def _end_unreadable(self, raw: Obj, run: PipelineJob, error: ValidationError) -> None:
        if run.status.phase and run.status.phase.terminal:
            return
        ref = run.spec.pipeline_ref.name
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
        )
        message = f"Pipeline {ref} cannot be read: {problems}; fix the Pipeline"
        outcome = Outcome(Phase.ERROR, Reason.INVALID_TEMPLATE, message)
        generation = raw["metadata"].get("generation")
        self._write(raw, finish(run.status.model_copy(), outcome, generation, self.clock()))

    def _create_job(self, raw: Obj, decision: Decision) -> None:
        body = decision.job_to_create
        assert body is not None
        key, uid = key_of(raw), raw["metadata"]["uid"]
        try:
            created = self.kube.create_job(body)
        except ApiException as e:
            if e.status == 409:  # created before a restart: adopted when its owner is this run
                existing = self.kube.read_job(*key_of(body))
                if existing is not None:
                    self.cache.jobs.put(existing)
                self.queue.add(key)
                return
            if e.status in (400, 403, 413, 422) or _too_large(e):
                outcome = Outcome(Phase.ERROR, Reason.JOB_REJECTED, _api_message(e))
                status = decision.status
                self._write(raw, finish(status, outcome, status.observed_generation, self.clock()))
                return
            raise
        self.cache.jobs.put(created)
        with self._lock:
            self._job_created[uid] = time.monotonic()
            seen = self._first_seen.get(uid)
        if seen is not None:
            metrics.JOB_CREATION_LATENCY.observe(time.monotonic() - seen)
        log.info("created Job %s", created["metadata"]["name"], extra=object_ref(raw))
        self.queue.add_after(key, QUEUED_WRITE_DELAY)

    def _write_later(self, uid: str, raw: Obj, status: PipelineJobStatus) -> bool:
        """Holds back QUEUED/Queued for a run whose Job was just created: if its pod starts
        soon, one write says RUNNING (a waiting run shows WaitingForRun a moment longer)."""
        shown = (raw.get("status") or {}).get("phase")
        if shown not in (None, Phase.QUEUED.value) or status.reason != Reason.QUEUED:
            return False
        with self._lock:
            created = self._job_created.get(uid)
        if created is None:
            return False
        delay = QUEUED_WRITE_DELAY if shown is None else REQUEUED_WRITE_DELAY
        wait = created + delay - time.monotonic()
        if wait > 0:
            self.queue.add_after(key_of(raw), wait)
            return True
        return False

    def _read_log(
        self, uid: str, pods: list[Obj], pipeline: Pipeline | None, decision: Decision
    ) -> None:
        started_pods = [p for p in pods if started(p)]
        if not started_pods:
            return
        pod = max(started_pods, key=lambda p: p["metadata"]["creationTimestamp"])
        # The last read waits for the container's end: a stopped container has its grace
        # period to print its last lines (our finalizer keeps its pod readable till then).
        # A stop also reads at once, so what was printed before it is kept however the
        # container's end goes.
        final = ended(pod) or bool(decision.status.phase and decision.status.phase.terminal)
        tail_lines = pipeline.spec.logs.tail_lines if pipeline else 100
        try:
            self.logs.read(uid, pod, tail_lines, final, now=decision.delete_job)
        except (ApiException, OSError) as e:
            # The run's status must not wait on its log: it says why the log is missing,
            # and a later sync reads again.
            why = _log_error(e)
            log.warning("cannot read the log of pod %s: %s", pod["metadata"]["name"], why)
            self.logs.failed(uid, pod, tail_lines, why, self.clock())

    def _requeue(self, key: Key, uid: str, decision: Decision) -> None:
        if decision.recheck_after is not None:
            self.queue.add_after(key, decision.recheck_after)
        if decision.status.phase in (Phase.RUNNING, Phase.STOPPING):
            due = self.logs.due_in(uid)
            if due is not None:
                self.queue.add_after(key, max(0.2, due))

    # --- writing ----------------------------------------------------------------

    def _ensure_owned_by_pipeline(self, raw: Obj, pipeline: Pipeline) -> Obj:
        """Gives the run an ownerReference to its Pipeline (deleting the Pipeline deletes
        its runs) and the jobline.dev/pipeline label (listing a Pipeline's runs selects on
        it), in one patch, when whoever created the run did not."""
        meta = raw["metadata"]
        owners = meta.get("ownerReferences") or []
        label = short_name(pipeline.metadata.name)
        has_owner = any(o.get("uid") == pipeline.metadata.uid for o in owners)
        has_label = (meta.get("labels") or {}).get(LABEL_PIPELINE) == label
        if has_owner and has_label:
            return raw
        patch: Obj = {"labels": {LABEL_PIPELINE: label}}
        if not has_owner:
            patch["ownerReferences"] = [
                *owners,
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": "Pipeline",
                    "name": pipeline.metadata.name,
                    "uid": pipeline.metadata.uid,
                },
            ]
        updated = self.kube.patch_run_metadata(*key_of(raw), meta["resourceVersion"], patch)
        stored, _ = self.cache.runs.put(updated)
        return stored

    def _write(self, raw: Obj, status: PipelineJobStatus) -> bool:
        """Patches the status once, and only when it changed (or new log lines were read);
        posts an Event on a new phase. True when the run's status now says `status`."""
        uid = raw["metadata"]["uid"]
        new = to_json(status)
        new.pop("logs", None)  # the tail is written only when new lines were read
        old = raw.get("status") or {}
        tail = self.logs.unwritten_tail(uid, self.clock())
        if tail is None and _comparable(new) == _comparable(old):
            return True
        if tail is not None:
            new["logs"] = to_json(tail)
        try:
            updated = self.kube.patch_run_status(
                *key_of(raw), raw["metadata"]["resourceVersion"], new
            )
        except ApiException as e:
            if e.status == 409:  # the run changed since: its event queues it again
                self.queue.add_after(key_of(raw), 1.0)
                return False
            if e.status == 404:
                return False
            raise
        metrics.STATUS_WRITES.labels("PipelineJob").inc()
        self.logs.written(uid)
        self.cache.runs.put(updated)
        self._announce(updated, old, status)
        # Our own write's watch event will look replayed: tell the Pipeline now. A run that
        # ended frees a slot at once.
        ended_now = bool(status.phase and status.phase.terminal)
        self.pipeline_changed(
            raw["metadata"]["namespace"], raw["spec"]["pipelineRef"]["name"], ended_now
        )
        return True

    def _announce(self, run: Obj, old: Obj, status: PipelineJobStatus) -> None:
        """Log line, metrics and Event of a new phase (or a new reason to wait)."""
        phase = status.phase
        if phase is None:
            return
        new_phase = old.get("phase") != phase.value
        new_wait = old.get("reason") != status.reason and status.reason in EVENT_BY_REASON
        if not (new_phase or new_wait):
            return
        log.info(
            "%s -> %s (%s): %s",
            old.get("phase") or "new",
            phase.value,
            status.reason,
            status.message,
            extra=object_ref(run),
        )
        namespace = run["metadata"]["namespace"]
        if phase.terminal:
            metrics.RUNS_FINISHED.labels(namespace, phase.value).inc()
            if status.duration_seconds is not None:
                metrics.RUN_DURATION.labels(namespace).observe(status.duration_seconds)
            self._forget(run["metadata"]["uid"])
        if new_phase and phase in EVENT_BY_PHASE:
            event: tuple[str, str] | None = EVENT_BY_PHASE[phase]
        elif new_wait and status.reason:
            event = EVENT_BY_REASON[Reason(status.reason)]
        else:
            event = None
        if event:
            self.kube.post_event(run, event[0], event[1], status.message or "", self.clock())
        if new_phase and status.reason == Reason.FORBIDDEN:
            pipeline = self.cache.pipelines.get(namespace, run["spec"]["pipelineRef"]["name"])
            if pipeline is not None:
                message = f"{run['metadata']['name']}: {status.message}"
                self.kube.post_event(pipeline, "Normal", "RunSkipped", message, self.clock())

    def _delete_job(self, job: Obj) -> None:
        if not job["metadata"].get("deletionTimestamp"):
            log.info("deleting Job %s", job["metadata"]["name"], extra=object_ref(job))
            self.kube.delete_job(*key_of(job), job["metadata"]["uid"])


def failure_logger(kind: str) -> Callable[[Key, Exception, float, int], None]:
    """Logs a failed sync of an object of `kind`, which the work queue retries later: with
    its traceback the first time, in one line when the same object fails again."""

    def log_failure(key: Key, error: Exception, retry_in: float, failures: int) -> None:
        ref = {"k8s_ref": {"kind": kind, "namespace": key[0], "name": key[1]}}
        log.error(
            "reconciling failed (%d time(s) in a row): %s; retrying in %.1f s",
            failures,
            error,
            retry_in,
            exc_info=error if failures == 1 else None,
            extra=ref,
        )

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


def _comparable(status: Obj) -> Obj:
    """The status without empty fields and its log tail."""
    return drop_empty({k: v for k, v in status.items() if k != "logs"})  # type: ignore[no-any-return]


def _job_facts(job: Obj) -> Any:
    """What a run's decision reads of its Job."""
    return (
        job["metadata"].get("deletionTimestamp"),
        (job.get("status") or {}).get("conditions"),
    )


def _pod_facts(pod: Obj) -> Any:
    """What a run's decision reads of a pod."""
    status = pod.get("status") or {}
    return (
        pod["metadata"].get("deletionTimestamp"),
        status.get("phase"),
        status.get("conditions"),
        [(c.get("name"), c.get("state")) for c in status.get("containerStatuses") or []],
    )


def drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def _too_large(error: ApiException) -> bool:
    """etcd refuses a request over its size limit with a 500 that says so: retrying it
    cannot help."""
    return error.status == 500 and "too large" in str(error.body or "")


def _api_message(error: ApiException) -> str:
    return f"the apiserver rejected the Job: {_error_body(error)}"


def _error_body(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "")["message"])
    except (ValueError, TypeError, KeyError):
        return str(error.reason)


def _log_error(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"pods/log answered {error.status}: {_error_body(error)}"
    return f"the log read failed: {error}"
