"""Per-run sync in four steps, each once: observe, decide, act, requeue.

Every change (a PipelineJob or Pipeline, a Job or pod of the label-selected
informers, a FailedCreate Event, a log read done, a timer) queues the run's key.
`sync` observes what is (the indexed caches, the Pipeline's verdict, the log
reader's latest lines, what this process did: a Job it created, one the
apiserver refused), asks `decide_run` for the next status and what to do, does
it, and queues the key again when time alone will change something. The status
is written once, only when it changed, with the resourceVersion it was decided
from as a precondition, and before any deletion the decision makes, so that an
operator killed in between reads its own deletion as its own. Each step is
idempotent, so a restart at any instant resumes correctly: the Job's name is
deterministic and adoption checks its owner UID.

Only this controller writes a run's status, one worker per run at a time.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from jobline.archive import Archive
from jobline.controller import metrics
from jobline.controller.cache import JOB_FIELDS, POD_FIELDS, Cache, Key, Obj, key_of, object_ref
from jobline.controller.kube import KubeAPI
from jobline.controller.log_reader import LogTails
from jobline.controller.workqueue import WorkQueue, failure_logger
from jobline.core.admission import Admissions
from jobline.core.clock import SYSTEM_CLOCK, Clock
from jobline.core.jobs import job_name, run_metadata, short_name
from jobline.core.run_status import (
    LOG_ARCHIVED,
    QUEUED_WRITE_DELAY,
    Decision,
    Observed,
    Step,
    decide_run,
)
from jobline.core.workload import ended, job_finished, newest
from jobline.kube.request import FAILED_REQUEST, describe, error_message
from jobline.models import (
    ENDED_BY_OPERATOR,
    LABEL_PIPELINE,
    POD_FINALIZER,
    SCHEDULING_GATE,
    TERMINAL_PHASES,
    LogsSpec,
    Phase,
    Pipeline,
    PipelineJob,
    PipelineJobStatus,
    Reason,
    drop_empty,
    to_json,
)

log = logging.getLogger(__name__)
# A run's end gets an Event (what event exporters and `kubectl describe` show); its start
# does not: the status says it (phase, startTime, the Running condition), and an Event
# would be one more request per run that tells a person nothing new.
EVENT_BY_PHASE = {
    Phase.COMPLETE: ("Normal", "Completed"),
    Phase.ERROR: ("Warning", "Failed"),
    Phase.STOPPED: ("Normal", "Stopped"),
}
# Waiting runs get an Event once, saying why they wait.
EVENT_BY_REASON = {
    Reason.WAITING_FOR_RUN: ("Normal", "Queued"),
    Reason.PIPELINE_NOT_FOUND: ("Warning", "PipelineNotFound"),
}
# Told when a run changes: (namespace, Pipeline name, whether admission may change).
PipelineChanged = Callable[[str, str, bool], None]


@dataclass
class _Acted:
    """What this process did for a run, observed by its next syncs."""

    first_seen: float | None = None  # monotonic, for the Job creation latency metric
    job_created: float | None = None  # monotonic
    job_rejected: str | None = None  # the apiserver's answer to the Job it refused
    gate_lifted: dict[str, dt.datetime] = field(default_factory=dict)  # by pod UID


class Refused(enum.Enum):
    """What `_act` returns when the apiserver refused the run's Job for good."""

    JOB = "refused"


REFUSED = Refused.JOB


class RunController:
    def __init__(
        self,
        kube: KubeAPI,
        cache: Cache,
        admissions: Admissions,
        synced: Callable[[str], bool],
        pipeline_changed: PipelineChanged,
        clock: Clock = SYSTEM_CLOCK,
        archive: Archive | None = None,
        kueue_installed: Callable[[], bool] = lambda: False,
    ) -> None:
        self.kube = kube
        self.kueue_installed = kueue_installed
        self.cache = cache
        self.admissions = admissions
        self.synced = synced
        self.pipeline_changed = pipeline_changed
        self.clock = clock
        self.logs = LogTails(kube, self._log_read, clock, archive)
        self.queue: WorkQueue[Key] = WorkQueue(clock.monotonic)
        self._lock = threading.Lock()
        self._acted: dict[str, _Acted] = {}  # by run UID, while the run has not ended

    # --- events in ------------------------------------------------------------

    def on_run(self, event: str, run: Obj, old: Obj | None) -> None:
        """A run changed; the run informer has already updated the cache."""
        namespace, name = key_of(run)
        pipeline = run["spec"]["pipelineRef"]["name"]
        uid = run["metadata"]["uid"]
        if event == "DELETED":
            self.cache.forget_run_model((namespace, name), uid)
            self._forget(uid, deleted=True)
            self.logs.delete_archived(namespace, uid)
            self.pipeline_changed(namespace, pipeline, True)
            return
        phase = (run.get("status") or {}).get("phase")
        if not phase:
            with self._lock:
                acted = self._acted.setdefault(uid, _Acted())
                if acted.first_seen is None:
                    acted.first_seen = self.clock.monotonic()
        self.queue.add((namespace, name))
        old_phase = ((old or {}).get("status") or {}).get("phase")
        urgent = (
            old is None
            or (phase != old_phase and phase in TERMINAL_PHASES)
            or run["spec"] != old["spec"]
        )
        self.pipeline_changed(namespace, pipeline, urgent)

    def on_pipeline(self, namespace: str, name: str) -> None:
        for run in self.cache.runs.by("pipeline", (namespace, name)):
            self.queue.add(key_of(run))

    def on_job(self, event: str, job: Obj, old: Obj | None) -> None:
        if (
            event == "MODIFIED"
            and old is not None
            and JOB_FIELDS.facts(job) == JOB_FIELDS.facts(old)
        ):
            return  # counters the Job controller keeps; nothing a run's decision reads
        run = self.cache.run_of(job)
        if run is not None:
            self.queue.add(key_of(run))
            if (event == "DELETED" or job_finished(job)) and _ended_by_operator(run):
                self._slot_may_be_free(run)
        else:  # a Job whose run is not known (yet) holds a slot of its Pipeline
            self._wake_pipeline_labelled(job)
            successor = self.cache.successor_of(job)
            if successor is not None and event == "DELETED":  # its name is free now
                self.queue.add(key_of(successor))

    def _wake_pipeline_labelled(self, obj: Obj) -> None:
        """Tells the Pipeline named by the object's jobline.dev/pipeline label that a slot
        may have changed: for a Job or pod no known run accounts for."""
        namespace = obj["metadata"]["namespace"]
        label = (obj["metadata"].get("labels") or {}).get(LABEL_PIPELINE, "")
        pipeline = self.cache.pipeline_of_label(namespace, label)
        if pipeline:
            self.pipeline_changed(namespace, pipeline, True)

    def _slot_may_be_free(self, run: Obj) -> None:
        """A Job or pod of `run` has stopped or gone: if the run has ended, it held its
        slot until its pods stopped (and, if the operator ended it, until its Job was
        gone: `candidate_of`)."""
        if (run.get("status") or {}).get("phase") in TERMINAL_PHASES:
            namespace = run["metadata"]["namespace"]
            self.pipeline_changed(namespace, run["spec"]["pipelineRef"]["name"], True)

    def on_pod(self, event: str, pod: Obj, old: Obj | None) -> None:
        if (
            event == "MODIFIED"
            and old is not None
            and POD_FIELDS.facts(pod) == POD_FIELDS.facts(old)
        ):
            return
        job = self.cache.job_of(pod)
        run = self.cache.run_of(job)
        if run is not None:
            self.queue.add(key_of(run))
            if event == "DELETED" or ended(pod):
                self._slot_may_be_free(run)
        else:
            # Its Job is gone: a pod it made as it was deleted holds its run's slot until it
            # stops (`Cache.pods_of_run`), and its end may free that slot.
            namespace = pod["metadata"]["namespace"]
            if job is None and (event == "DELETED" or ended(pod)):
                self._wake_pipeline_labelled(pod)
            if (
                event != "DELETED"
                and pod["metadata"].get("deletionTimestamp")
                and self.synced(namespace)
            ):
                # Its run (or Job) is gone, and with it the need to record how it ended.
                try:
                    self._release([pod])
                except FAILED_REQUEST as e:  # its next event tries again
                    log.warning("cannot release pod %s: %s", pod["metadata"]["name"], describe(e))

    def on_job_event(self, event: str, job_event: Obj, old: Obj | None) -> None:
        """The Job controller could not create a Job's pod (a FailedCreate Event)."""
        run = self.cache.run_of(self.cache.job_of_event(job_event))
        if run is not None and event != "DELETED":
            self.queue.add(key_of(run))

    def on_pod_event(self, event: str, pod_event: Obj, old: Obj | None) -> None:
        """The kubelet cannot mount or attach a volume of a run's pod (its Events)."""
        run = self.cache.run_of(self.cache.job_of(self.cache.pod_of_event(pod_event)))
        if run is not None and event != "DELETED":
            self.queue.add(key_of(run))

    def on_workload(self, event: str, workload: Obj, old: Obj | None) -> None:
        """Kueue's Workload of a run's Job changed: admitted, pending, evicted."""
        run = self.cache.run_of(self.cache.job_of(workload))
        if run is not None:
            self.queue.add(key_of(run))

    def _log_read(self, run_uid: str) -> None:
        run = self.cache.runs.one("uid", run_uid)
        if run is not None:
            self.queue.add(key_of(run))

    def _forget(self, uid: str, deleted: bool = False) -> None:
        """What is kept of a run only while it runs: dropped when it ends or is deleted."""
        self.admissions.forget(uid)
        self.logs.forget(uid, deleted)
        with self._lock:
            self._acted.pop(uid, None)

    def tracked(self) -> dict[str, int]:
        """What is kept in memory per run, by kind: every count falls back once runs are
        gone (a leak shows here first; jobline_tracked_runs)."""
        with self._lock:
            acted = len(self._acted)
        return {
            "cached": len(self.cache.runs),
            "jobs": len(self.cache.jobs),  # fall back as the garbage collector deletes them
            "pods": len(self.cache.pods),
            "parsed": self.cache.run_models_kept(),
            "acted": acted,
            "log_follows": self.logs.following(),
            "verdicts": len(self.admissions),
        }

    # --- sync -----------------------------------------------------------------

    def start(self, workers: int) -> None:
        self.logs.start()
        self.queue.run_workers(workers, self.sync, failure_logger("PipelineJob"), "run")

    def stop(self) -> None:
        self.queue.stop()
        self.logs.stop()

    def sync(self, key: Key) -> float | None:
        """One sync of the run: observe, decide, act. Returns when to look again (seconds)
        though nothing changes; the work queue requeues, nothing else does."""
        # Decisions need the whole picture of Jobs and pods: wait for the first lists.
        if not self.synced(key[0]):
            return 0.5
        raw = self.cache.runs.get(*key)
        if raw is None:
            return None
        uid = raw["metadata"]["uid"]
        try:
            seen, tail_version = self._observe(raw)
            again = self._act(raw, seen, decide_run(seen, self.clock.now()), tail_version)
            if again is REFUSED:
                # The apiserver refused the Job for good: the run ends now, saying why.
                seen, tail_version = self._observe(raw)
                again = self._act(raw, seen, decide_run(seen, self.clock.now()), tail_version)
            return None if isinstance(again, Refused) else again
        finally:
            # Deleted while this sync ran: its DELETED event may have forgotten the run
            # before this sync recorded more of it (a log follow, a parsed model).
            current = self.cache.runs.get(*key)
            if current is None or current["metadata"]["uid"] != uid:
                self.cache.forget_run_model(key, uid)
                self._forget(uid, deleted=True)

    def _observe(self, raw: Obj) -> tuple[Observed, int]:
        """The run's whole picture, from the caches and what this process did; and the
        version of the log tail it holds."""
        run = self.cache.run_model(raw)
        uid, namespace = run.metadata.uid or "", run.metadata.namespace or ""
        pipeline = self._pipeline(run)
        # The schema let through what the operator cannot read: the run says which fields.
        pipeline_error = self.cache.pipeline_error(namespace, run.spec.pipeline_ref.name)
        job = self.cache.job_of_run(raw)
        # A run whose Job is gone (deleted by someone else) waits for the pods it left.
        had_job = job is None and bool(run.status.job_name)
        pods = self.cache.pods_of_run(raw, None) if had_job else self.cache.pods_of_job(job)
        ended_already = bool(run.status.phase and run.status.phase.terminal)
        unwritten = self.logs.unwritten_tail(uid)  # after the end: the archive catching up
        with self._lock:
            acted = self._acted.get(uid) or _Acted()
        created = acted.job_created
        namesake = None if job else self.cache.jobs.get(namespace, job_name(run.metadata.name))
        predecessor = namesake is not None and self.cache.predecessor_of(raw, namesake)
        seen = Observed(
            run=run,
            pipeline=pipeline,
            job=job,
            pods=pods,
            predecessor_job=predecessor,
            foreign_job=namesake is not None and not predecessor,
            pod_creation_error=None if ended_already else self._pod_creation_error(job, pods),
            pod_events=[] if ended_already else self.cache.pod_events_of(newest(pods)),
            verdict=self.admissions.get(uid),
            generation=raw["metadata"].get("generation"),
            pipeline_error=pipeline_error,
            job_rejected=acted.job_rejected,
            job_created_ago=None if created is None else self.clock.monotonic() - created,
            log_done_for=self.logs.done_for(uid),
            archive_pending_for=self.logs.archive_pending_for(uid),
            log_tail=unwritten[0] if unwritten else None,
            workload=self.cache.workload_of_job(job),
            kueue_installed=self.kueue_installed(),
            gate_lifted_at=acted.gate_lifted.get(
                (newest(pods) or {}).get("metadata", {}).get("uid", "")
            ),
        )
        return seen, unwritten[1] if unwritten else 0

    def _act(
        self, raw: Obj, seen: Observed, decision: Decision, tail_version: int
    ) -> float | Refused | None:
        """Makes the decision's requests (pods let go, a log read), then takes its step.
        Returns when to look again (seconds; None: when something changes), or REFUSED
        when the apiserver refused the Job for good (the run is decided again at once)."""
        key, uid = key_of(raw), raw["metadata"]["uid"]
        if decision.step == Step.SETTLE:
            if decision.status.logs is not None:
                written = self._write(raw, decision.status, tail_version)
                if written is not True:
                    return written  # the archive's news after the end: before its pod goes
            if decision.delete_job and seen.job is not None:
                self._delete_job(seen.job)  # again: a restart came between write and delete
            self._release(decision.release)  # recorded: the API may let them go
            return None
        if seen.pipeline is not None:
            owned = self._ensure_owned_by_pipeline(raw, seen.pipeline)
            if owned is None:
                return None  # deleted meanwhile: its DELETED event forgets it
            raw = owned
        self._request(uid, seen, decision)
        match decision.step:
            case Step.AWAIT_ADMISSION:
                self.pipeline_changed(key[0], seen.run.spec.pipeline_ref.name, True)
                return None
            case Step.AWAIT_LOG:
                return None  # the read, once done, queues the run again
            case Step.CREATE_JOB:
                assert decision.job_to_create is not None
                return self._create_job(uid, decision.job_to_create, decision.hold_for)
            case Step.HOLD_WRITE:
                return decision.hold_for or QUEUED_WRITE_DELAY
            case _:  # Step.WRITE
                written = self._write(raw, decision.status, tail_version)
                if written is not True:
                    return written  # the run changed meanwhile: look again
                if decision.delete_job and seen.job is not None:
                    self._delete_job(seen.job)
                self._release(decision.release)
                later = [decision.recheck_after]
                if decision.status.phase in (Phase.RUNNING, Phase.STOPPING):
                    due = self.logs.due_in(uid)
                    later.append(None if due is None else max(0.2, due))
                return min((t for t in later if t is not None), default=None)

    def _request(self, uid: str, seen: Observed, decision: Decision) -> None:
        """What comes before any step: pods of the run's own Job let go (they may start
        now), and the log read asked for."""
        for pod in decision.ungate:
            self.kube.remove_scheduling_gate(*key_of(pod), SCHEDULING_GATE)
            with self._lock:  # its pending deadline counts from now
                acted = self._acted.setdefault(uid, _Acted())
                acted.gate_lifted[pod["metadata"]["uid"]] = self.clock.now()
        read = decision.read_log
        if read is not None:
            logs = seen.pipeline.spec.logs if seen.pipeline else LogsSpec()
            self.logs.request(
                uid, read.pod, logs.tail_lines, read.final, read.at_once, logs.archive,
                read.container,
            )  # fmt: skip

    # --- observing --------------------------------------------------------------

    def _pipeline(self, run: PipelineJob) -> Pipeline | None:
        """The run's Pipeline. Pipelines and runs arrive by different watches, so a new run
        can come before its Pipeline: on a miss, the API says whether it exists (once per
        run: a run already waiting for its Pipeline is not asked about again)."""
        namespace, name = run.metadata.namespace or "", run.spec.pipeline_ref.name
        cached = self.cache.pipelines.get(namespace, name) is not None
        if cached or run.status.reason == Reason.PIPELINE_NOT_FOUND:
            return self.cache.pipeline(namespace, name)  # None: the model rejects it
        raw = self.kube.read_pipeline(namespace, name)
        if raw is None:
            return None
        self.cache.pipelines.add_created(raw)
        return self.cache.pipeline(namespace, name)

    def _pod_creation_error(self, job: Obj | None, pods: list[Obj]) -> str | None:
        """Why the Job has no pod, as the Job controller said: the message of its latest
        FailedCreate Event (a quota, Pod Security, a webhook), from the Event watch."""
        if job is None or pods or job["metadata"].get("deletionTimestamp"):
            return None
        return self.cache.failed_create_message(job)

    # --- acting -----------------------------------------------------------------

    def _create_job(self, uid: str, body: Obj, hold_for: float | None) -> float | Refused:
        """Creates the Job; returns when to look again, or REFUSED when the apiserver
        refused it for good."""
        try:
            created = self.kube.create_job(body)
        except ApiException as e:
            if e.status == 409:  # created before a restart: adopted when its owner is this run
                existing = self.kube.read_job(*key_of(body))
                if existing is not None:
                    self.cache.jobs.add_created(existing)
                return 0.0
            if e.status in (400, 403, 413, 422) or _too_large(e):
                with self._lock:  # observed by the decision that ends the run, saying why
                    self._acted.setdefault(uid, _Acted()).job_rejected = error_message(e)
                return REFUSED
            raise
        self.cache.jobs.add_created(created)  # not if already deleted (its run is gone)
        now = self.clock.monotonic()
        with self._lock:
            acted = self._acted.setdefault(uid, _Acted())
            acted.job_created = now
        if acted.first_seen is not None:
            metrics.JOB_CREATION_LATENCY.observe(now - acted.first_seen)
        log.info("created Job %s", created["metadata"]["name"], extra=object_ref(body))
        return hold_for or QUEUED_WRITE_DELAY

    def _release(self, pods: list[Obj]) -> None:
        """Removes the operator's finalizer from pods whose end is recorded (or no longer
        needed), so that the API can delete them."""
        for pod in pods:
            if POD_FINALIZER in (pod["metadata"].get("finalizers") or []):
                updated = self.kube.remove_pod_finalizer(*key_of(pod), POD_FINALIZER)
                if updated is not None:  # syncs before its watch event must not ask again
                    self.cache.pods.update(updated)

    def _ensure_owned_by_pipeline(self, raw: Obj, pipeline: Pipeline) -> Obj | None:
        """Gives the run an ownerReference to its Pipeline (deleting the Pipeline deletes
        its runs) and the jobline.dev/pipeline label (listing a Pipeline's runs selects on
        it), in one patch, when whoever created the run did not. None: the run is gone."""
        meta = raw["metadata"]
        owners = meta.get("ownerReferences") or []
        wanted = run_metadata(pipeline.metadata.name, pipeline.metadata.uid or "")
        has_owner = any(o.get("uid") == pipeline.metadata.uid for o in owners)
        has_label = (meta.get("labels") or {}).get(LABEL_PIPELINE) == short_name(
            pipeline.metadata.name
        )
        if has_owner and has_label:
            return raw
        patch: Obj = {"labels": wanted["labels"]}
        if not has_owner:
            patch["ownerReferences"] = [*owners, *wanted["ownerReferences"]]
        try:
            updated = self.kube.patch_run_metadata(*key_of(raw), meta["resourceVersion"], patch)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self.cache.runs.update(updated)  # None: deleted meanwhile

    def _write(self, raw: Obj, status: PipelineJobStatus, tail_version: int) -> bool | float | None:
        """Patches the status once, and only when it changed (or new log lines were read);
        posts an Event on a new phase. True when the run's status now says `status`; else
        when to look again (None: the run is gone)."""
        uid = raw["metadata"]["uid"]
        old = raw.get("status") or {}
        # The cached run's status as a model (its log tail is not cached): equal models
        # mean nothing to write, without dumping and comparing JSON on every sync.
        if status.logs is None and status == self.cache.run_model(raw).status:
            return True
        new = to_json(status)
        tail = new.pop("logs", None)  # written only when new lines were read
        if tail is None and _comparable(new) == _comparable(old):
            return True
        if tail is not None:
            new["logs"] = tail
        try:
            updated = self.kube.patch_run_status(
                *key_of(raw), raw["metadata"]["resourceVersion"], new
            )
        except ApiException as e:
            if e.status == 409:  # the run changed since: its event queues it again
                return 1.0
            if e.status == 404:
                return None
            raise
        metrics.STATUS_WRITES.labels("PipelineJob").inc()
        if tail is not None:
            self.logs.written(uid, tail_version)
        self.cache.runs.update(updated)
        self._announce(updated, old, status)
        self._announce_archive(updated, old, status)
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
            self.kube.post_event(run, event[0], event[1], status.message or "", self.clock.now())
        if new_phase and status.reason == Reason.FORBIDDEN:
            pipeline = self.cache.pipelines.get(namespace, run["spec"]["pipelineRef"]["name"])
            if pipeline is not None:
                message = f"{run['metadata']['name']}: {status.message}"
                self.kube.post_event(pipeline, "Normal", "RunSkipped", message, self.clock.now())

    def _announce_archive(self, run: Obj, old: Obj, status: PipelineJobStatus) -> None:
        """A Warning Event when the log archive starts failing, or gives up on lines."""
        new = next((c for c in status.conditions if c.type == LOG_ARCHIVED), None)
        if new is None or new.status != "False":
            return
        conditions = old.get("conditions") or []
        before = next((c.get("reason") for c in conditions if c["type"] == LOG_ARCHIVED), None)
        if before != new.reason:
            self.kube.post_event(
                run, "Warning", new.reason or "", new.message or "", self.clock.now()
            )

    def _delete_job(self, job: Obj) -> None:
        if not job["metadata"].get("deletionTimestamp"):
            log.info("deleting Job %s", job["metadata"]["name"], extra=object_ref(job))
            self.kube.delete_job(*key_of(job), job["metadata"]["uid"])


def _ended_by_operator(run: Obj) -> bool:
    """The operator ended the run: it holds its slot until its Job is gone too."""
    return (run.get("status") or {}).get("reason") in ENDED_BY_OPERATOR


def _comparable(status: Obj) -> Obj:
    """The status without empty fields and its log tail."""
    return drop_empty({k: v for k, v in status.items() if k != "logs"})  # type: ignore[no-any-return]


def _too_large(error: ApiException) -> bool:
    """etcd refuses a request over its size limit with a 500 that says so: retrying it
    cannot help."""
    return error.status == 500 and "too large" in str(error.body or "")
