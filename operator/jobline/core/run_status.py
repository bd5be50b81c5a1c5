"""A run's next status, and what to do about it, as a pure function of what was observed.

`decide_run` covers every case, with a Job or without one: the reconciler
observes (the run, its Pipeline, its own Job and that Job's own pods, the
Pipeline's admission verdict), calls it, carries out the action it returns
(create or delete the Job) and writes the status when it changed. Jobs and pods
are the API's JSON (camelCase dicts).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

from jobline.core.admission import Admission, Verdict, verdict_without_plan
from jobline.core.clock import parse_time
from jobline.core.containers import (
    NEVER_RAN_REASONS,
    Container,
    failed_container,
    failure_message,
    failure_of,
    initializing,
    never_ran,
    stuck,
)
from jobline.core.jobs import build_job
from jobline.core.kueue import deleted_by_suspension, held, resumed_at, status_of, suspended
from jobline.core.variables import InvalidVariables, resolve_variables
from jobline.core.workload import (
    ended,
    job_condition,
    job_finished,
    job_main_container,
    main_container,
    newest,
    pod_phase,
    started,
)
from jobline.models import (
    ANNOTATION_SCHEDULED_TIME,
    ENDED_BY_OPERATOR,
    MESSAGE_MAX_BYTES,
    NEEDS_ATTENTION,
    SCHEDULING_GATE,
    Condition,
    ContainerKind,
    Failure,
    LogTail,
    Output,
    Phase,
    Pipeline,
    PipelineJob,
    PipelineJobStatus,
    Reason,
    Trigger,
    TriggerType,
)

Obj = dict[str, Any]
LOG_ARCHIVED = "LogArchived"
CONDITION_BY_PHASE = {
    Phase.RUNNING: "Running",
    Phase.STOPPING: "Running",
    Phase.COMPLETE: "Complete",
    Phase.ERROR: "Failed",
    Phase.STOPPED: "Stopped",
}
# A run whose Job was just created shows QUEUED only if its pod has not started within
# this delay: most pods start sooner, and their run goes straight to RUNNING in one write.
QUEUED_WRITE_DELAY = 1.0
# A run that already shows QUEUED (it waited for a slot) keeps showing it a little longer:
# only its reason would change.
REQUEUED_WRITE_DELAY = 5.0
DEFAULT_PENDING_DEADLINE = 600  # the Pipeline's default, for a run whose Pipeline is gone
# One message from the Job's creation until its pod runs, whether the pod exists yet or
# not: a new message would be a status write that tells a person nothing new.
STARTING = "the Job is created; waiting for its pod to start"
# DisruptionTarget reasons, by the run's reason: the pod was ended from outside.
DISRUPTIONS = {
    "EvictionByEvictionAPI": Reason.EVICTED,  # a drain, or anyone's eviction
    "TerminationByKubelet": Reason.EVICTED,  # node pressure, graceful node shutdown
    "PreemptionByScheduler": Reason.PREEMPTED,
    "DeletionByTaintManager": Reason.NODE_LOST,  # the node went NotReady or unreachable
    "DeletionByPodGC": Reason.NODE_LOST,  # the node was deleted
}


@dataclass(frozen=True)
class Outcome:
    phase: Phase
    reason: Reason
    message: str
    failure: Failure | None = None  # the container whose end failed the run
    ends_job: bool = False  # the operator ends the run while its Job still tries: delete it


@dataclass(frozen=True)
class LogRead:
    """A read of the log of the run's current pod (its latest started one)."""

    pod: Obj
    final: bool  # the last one: the container has ended, or the run is ending
    at_once: bool  # not when the next refresh is due: the run is being stopped
    container: str | None = None  # None: the main one; else the one that failed before it


class Step(enum.Enum):
    """What a sync does next with its run: exactly one of these (`decide_run` chooses, in
    this order of precedence; RunController._act does it)."""

    # Its Pipeline's admission pass decides first: nothing to write until then.
    AWAIT_ADMISSION = "await admission"
    # The status says the run has ended (or is being ended): nothing is written or deleted
    # until its last log read is in, so that the run's last lines come in the same write.
    AWAIT_LOG = "await the log"
    CREATE_JOB = "create the Job"  # then look again after `hold_for`
    HOLD_WRITE = "hold the write"  # a pod about to start: one write, after `hold_for`
    # Write the status, then (and only then, so that an operator killed in between never
    # mistakes its own deletion for someone else's) delete the Job and release pods.
    WRITE = "write"
    # An ended run: write what the log archive caught up since, delete the Job again (a
    # restart came between write and delete), release pods.
    SETTLE = "settle"


@dataclass(frozen=True)
class Decision:
    """The run's next status and its next step. Whatever the step, the requests come
    first: pods to let the scheduler place (`ungate`) and the log read (`read_log`)."""

    status: PipelineJobStatus
    step: Step = Step.WRITE
    job_to_create: Obj | None = None  # CREATE_JOB
    hold_for: float | None = None  # seconds: HOLD_WRITE's delay; after CREATE_JOB, the look
    delete_job: bool = False  # after WRITE or SETTLE
    # Pods whose finalizer goes once the status is written: their end is recorded.
    release: list[Obj] = field(default_factory=list)
    # Pods of the run's Job to let the scheduler place (their scheduling gate removed),
    # at once: the run goes on, and they are its own.
    ungate: list[Obj] = field(default_factory=list)
    read_log: LogRead | None = None
    # When to look again though nothing changes (a deadline), in seconds from now.
    recheck_after: float | None = None

    @property
    def awaiting_admission(self) -> bool:
        return self.step == Step.AWAIT_ADMISSION


@dataclass(frozen=True)
class Observed:
    run: PipelineJob
    pipeline: Pipeline | None
    job: Obj | None  # the Job controlled by this run (its reference checked)
    # Pods controlled by that Job; with no Job, those its deleted Job left (by the run's
    # label), for a run that had one.
    pods: list[Obj] = field(default_factory=list)
    # A Job of the run's Job name exists and is not the run's: a predecessor's (a run of
    # the same name, deleted, whose Job the garbage collector has not removed yet), or
    # something else's.
    predecessor_job: bool = False
    foreign_job: bool = False
    # Why the Job could not create a pod, as the Job controller said (its FailedCreate Event).
    pod_creation_error: str | None = None
    # The latest pod's Events that say why it cannot start (FailedMount, FailedAttachVolume).
    pod_events: list[Obj] = field(default_factory=list)
    verdict: Verdict | None = None  # for a run without a Job whose Pipeline is not Allow
    generation: int | None = None
    # The Pipeline exists but cannot be read as one (what the schema let through).
    pipeline_error: str | None = None
    # The apiserver refused the Job that this run's sync tried to create, saying this.
    job_rejected: str | None = None
    # Seconds since this operator created the run's Job; None when it did not (a restart).
    job_created_ago: float | None = None
    # The pod (UID) whose last log read is done, or that can be read no more.
    log_done_for: str | None = None
    # The pod (UID) kept after its last read for the log archive to catch up.
    archive_pending_for: str | None = None
    # The log reader's latest tail, when the run's status does not hold it yet.
    log_tail: LogTail | None = None
    # Kueue's Workload of the run's Job, if Kueue made one.
    workload: Obj | None = None
    # Whether Kueue's Workload API is served (a Pipeline may name a Kueue LocalQueue).
    kueue_installed: bool = False
    # When this operator lifted its scheduling gate from the newest pod, if it did: its
    # pending deadline counts from then (a restart since: from the pod's creation).
    gate_lifted_at: dt.datetime | None = None


def decide_run(seen: Observed, now: dt.datetime) -> Decision:
    """The run's next status, its next step and the requests that come before it."""
    decision = _decide(seen, now)
    if decision.step in (Step.AWAIT_ADMISSION, Step.SETTLE):
        return decision
    status = decision.status
    read_log = _log_read(seen, status, decision.delete_job, now)
    ending = bool(status.phase and status.phase.terminal)
    hold = _queued_hold(seen, status)
    if read_log is not None and ending:
        step, hold_for = Step.AWAIT_LOG, None
    elif decision.job_to_create is not None:
        step, hold_for = Step.CREATE_JOB, decision.hold_for
    elif hold is not None:
        step, hold_for = Step.HOLD_WRITE, hold
    else:
        step, hold_for = Step.WRITE, None
    ungate = []
    if status.phase in (Phase.QUEUED, Phase.RUNNING) and not seen.run.spec.stopped:
        ungate = [p for p in seen.pods if gated(p)]
    return replace(
        decision,
        step=step,
        hold_for=hold_for,
        read_log=read_log,
        release=_releasable(seen, _to_release(seen.pods, status)),
        ungate=ungate,
    )


def gated(pod: Obj) -> bool:
    """The pod still waits for the operator's leave to be scheduled."""
    gates = (pod.get("spec") or {}).get("schedulingGates") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        g.get("name") == SCHEDULING_GATE for g in gates
    )


def _releasable(seen: Observed, pods: list[Obj]) -> list[Obj]:
    """The pods, but the one kept for the log archive to catch up."""
    return [p for p in pods if p["metadata"].get("uid") != seen.archive_pending_for]


def _log_read(
    seen: Observed, status: PipelineJobStatus, stopping: bool, now: dt.datetime
) -> LogRead | None:
    """The read of the current pod's log, if one is due (the status takes the reader's
    news first); a run that ends waits for its last read (Step.AWAIT_LOG)."""
    _take_log_tail(seen, status, now)
    pod = newest([p for p in seen.pods if started(p) or _failed_early(p)])
    if pod is None or pod["metadata"].get("uid") == seen.log_done_for:
        return None
    ending = bool(status.phase and status.phase.terminal)
    early = _failed_early(pod)
    # The last read waits for the container's end: a stopped container has its grace
    # period to print its last lines (the pod finalizer keeps its log readable till then).
    # A stop reads at once too, so what was printed before it is kept however it ends.
    return LogRead(
        pod,
        final=ended(pod) or ending,
        at_once=stopping,
        container=early.name if early else None,
    )


def _failed_early(pod: Obj) -> Container | None:
    """The container that failed before the main one ran (an init container, a sidecar),
    whose log then explains the run."""
    failed = failed_container(pod) if ended(pod) and never_ran(pod) else None
    return failed if failed is not None and failed.kind != ContainerKind.MAIN else None


def _take_log_tail(seen: Observed, status: PipelineJobStatus, now: dt.datetime) -> None:
    """The log reader's news, when the status does not hold it yet, and what it says of
    the archive (LogArchived)."""
    if seen.log_tail is not None:
        status.logs = seen.log_tail
        status.conditions = archive_condition(status.conditions, seen.log_tail, now)


def _queued_hold(seen: Observed, status: PipelineJobStatus) -> float | None:
    """How long to hold back QUEUED/Queued for a run whose Job was just created: if its
    pod starts soon, one write says RUNNING (a waiting run shows WaitingForRun a moment
    longer). None: no hold."""
    shown = seen.run.status.phase
    if seen.job_created_ago is None or status.reason != Reason.QUEUED:
        return None
    if shown not in (None, Phase.QUEUED):
        return None
    delay = QUEUED_WRITE_DELAY if shown is None else REQUEUED_WRITE_DELAY
    return delay - seen.job_created_ago if seen.job_created_ago < delay else None


def _to_release(pods: list[Obj], status: PipelineJobStatus) -> list[Obj]:
    """Pods whose end the status records once written: all of a run that ended; earlier
    attempts of one that runs (they are counted; only the latest is still news)."""
    if status.phase and status.phase.terminal:
        return list(pods)
    current = newest(pods)
    return [p for p in pods if p is not current and ended(p)]


def _decide(seen: Observed, now: dt.datetime) -> Decision:
    run = seen.run
    # A shallow copy: decisions assign fields, and never change a nested value in place.
    status = run.status.model_copy()
    status.trigger = status.trigger or trigger_of(run.metadata.annotations)
    if status.phase and status.phase.terminal:
        # Terminal phases never change; a Job the operator ended is deleted (again, after
        # a restart between the two steps).
        job = seen.job
        delete = (
            job is not None
            and (status.reason in ENDED_BY_OPERATOR or _uncounted_success(job, seen.pods, now))
            and not job_finished(job)
            and not job["metadata"].get("deletionTimestamp")
        )
        # The log archive may still be catching up after the end: its news is written,
        # and its pod kept until it is settled.
        _take_log_tail(seen, status, now)
        return Decision(
            status, Step.SETTLE, delete_job=delete, release=_releasable(seen, seen.pods)
        )
    if seen.pipeline_error and seen.job is None and not status.job_name:
        # Only a run that has no Job yet: one whose program runs is followed to its end
        # (an older CRD after a `helm upgrade` must not end every running run).
        ref = run.spec.pipeline_ref.name
        message = f"Pipeline {ref} cannot be read: {seen.pipeline_error}; fix the Pipeline"
        return _end(seen, status, Phase.ERROR, Reason.INVALID_TEMPLATE, message, now)
    if seen.verdict and seen.verdict.admission == Admission.REPLACE:
        job = seen.job
        return _end(
            seen,
            status,
            Phase.STOPPED,
            Reason.REPLACED,
            f"replaced by the newer run {seen.verdict.by}",
            now,
            delete_job=job is not None
            and not job_finished(job)
            and not job["metadata"].get("deletionTimestamp"),
        )
    if seen.foreign_job:
        name = run.metadata.name
        return _end(
            seen,
            status,
            Phase.ERROR,
            Reason.JOB_REJECTED,
            f"a Job named for this run already exists and belongs to something else; delete "
            f"or rename it, then start a new run (run {name})",
            now,
        )
    if seen.job is None:
        return _without_job(seen, status, now)
    return _with_job(seen, status, now)


def _end(
    seen: Observed,
    status: PipelineJobStatus,
    phase: Phase,
    reason: Reason,
    message: str,
    now: dt.datetime,
    **kw: Any,
) -> Decision:
    return Decision(finish(status, Outcome(phase, reason, message), seen.generation, now), **kw)


def _without_job(seen: Observed, status: PipelineJobStatus, now: dt.datetime) -> Decision:
    run, pipeline = seen.run, seen.pipeline
    if run.spec.stopped:
        message = "the run was stopped" + (" before it started" if not status.job_name else "")
        return _end(seen, status, Phase.STOPPED, Reason.STOPPED, message, now)
    if status.job_name:
        # Its pods (found by the run's label) stop with their grace period: the run holds
        # its slot, and waits for their last lines, until they have ended.
        message = f"the run's Job {status.job_name} was deleted by someone else"
        if not all(ended(p) for p in seen.pods):
            message = f"stopping: {message}; its pod is stopping"
            return _end(seen, status, Phase.STOPPING, Reason.FAILED, message, now)
        return _end(seen, status, Phase.ERROR, Reason.FAILED, message, now)
    ref = run.spec.pipeline_ref.name
    if pipeline is None:
        message = (
            f"Pipeline {ref} does not exist in namespace {run.metadata.namespace}; "
            "the run starts when it is created"
        )
        return _end(seen, status, Phase.QUEUED, Reason.PIPELINE_NOT_FOUND, message, now)
    try:
        variables = resolve_variables(pipeline.spec.variables, run.spec.variables)
    except InvalidVariables as e:
        return _end(seen, status, Phase.ERROR, Reason.INVALID_VARIABLES, str(e), now)

    spec = pipeline.spec
    verdict = verdict_without_plan(spec.concurrency_policy) or seen.verdict
    if verdict is None:
        return Decision(status, Step.AWAIT_ADMISSION)
    if verdict.admission == Admission.FORBID:
        message = (
            f"the {spec.max_concurrent_runs} slot(s) of {ref} were taken and its "
            "concurrencyPolicy is Forbid"
        )
        return _end(seen, status, Phase.STOPPED, Reason.FORBIDDEN, message, now)
    if verdict.admission == Admission.WAIT:
        status.queue_position = verdict.position
        message = (
            f"waiting for a free slot: {spec.max_concurrent_runs} run(s) of {ref} may run at once"
        )
        return _end(seen, status, Phase.QUEUED, Reason.WAITING_FOR_RUN, message, now)
    status.variables = variables
    status.main_container = pipeline.spec.template.spec.containers[0].name
    status.queue_position = None
    if seen.job_rejected:
        message = f"the apiserver rejected the Job: {seen.job_rejected}"
        return _end(seen, status, Phase.ERROR, Reason.JOB_REJECTED, message, now)
    if seen.predecessor_job:
        # Its Job's deletion wakes the run (RunController.on_job).
        message = (
            f"waiting for the Job of a deleted run named {run.metadata.name} to be removed "
            "by the garbage collector"
        )
        return _end(seen, status, Phase.QUEUED, Reason.QUEUED, message, now)
    if spec.kueue is not None and not seen.kueue_installed:
        return _without_kueue(seen, status, now)
    # Written once its pod has had a moment to start (see _hold_queued).
    return _end(
        seen,
        status,
        Phase.QUEUED,
        Reason.QUEUED,
        STARTING,
        now,
        job_to_create=build_job(pipeline, run, variables, status.trigger),
        hold_for=QUEUED_WRITE_DELAY,
    )


def _without_kueue(seen: Observed, status: PipelineJobStatus, now: dt.datetime) -> Decision:
    """A Pipeline names a Kueue LocalQueue where Kueue is not installed: a Job made for it
    would wait suspended for good. The run waits for Kueue up to pendingDeadlineSeconds
    (from its creation), then fails."""
    assert seen.pipeline is not None
    spec, kueue = seen.pipeline.spec, seen.pipeline.spec.kueue
    assert kueue is not None
    created = seen.run.metadata.creation_timestamp or now
    waited = (now - created).total_seconds()
    message = (
        f"Pipeline {seen.pipeline.metadata.name} names the Kueue LocalQueue "
        f"{kueue.local_queue}, but Kueue is not installed in this cluster (no "
        "kueue.x-k8s.io/v1beta2 Workloads are served); install Kueue, or remove the "
        "Pipeline's spec.kueue"
    )
    if waited >= spec.pending_deadline_seconds:
        message += f" (waited pendingDeadlineSeconds, {spec.pending_deadline_seconds} s)"
        return _end(seen, status, Phase.ERROR, Reason.KUEUE_NOT_INSTALLED, message, now)
    recheck = spec.pending_deadline_seconds - waited + 1
    return _end(
        seen, status, Phase.QUEUED, Reason.KUEUE_NOT_INSTALLED, message, now,
        recheck_after=recheck,
    )  # fmt: skip


def _with_job(seen: Observed, status: PipelineJobStatus, now: dt.datetime) -> Decision:
    job, run, pipeline = seen.job, seen.run, seen.pipeline
    assert job is not None
    pods = sorted(seen.pods, key=lambda p: p["metadata"]["creationTimestamp"])
    latest = pods[-1] if pods else None
    pending_deadline = (
        pipeline.spec.pending_deadline_seconds if pipeline else DEFAULT_PENDING_DEADLINE
    )
    outcome, recheck = observe(
        run,
        job,
        pods,
        now,
        pending_deadline,
        seen.pod_creation_error,
        seen.pod_events,
        seen.workload,
        seen.gate_lifted_at,
    )
    if seen.workload is not None or status.kueue is not None:
        status.kueue = status_of(seen.workload, status.kueue)

    status.job_name = job["metadata"]["name"]
    # Set when the Job is created, but that status is not written if the pod starts soon
    # after; the Job's template says the same.
    status.main_container = status.main_container or job_main_container(job)
    status.attempts = _attempts(status, pods)
    # The pod's name once it started or is stuck (worth a look); a pod merely being
    # scheduled is not worth a status write of its own.
    if latest is not None and outcome.reason != Reason.QUEUED:
        status.pod_name = latest["metadata"]["name"]
    status.queue_position = None
    if not status.variables and pipeline is not None:
        # The Job was created with valid ones; if the Pipeline changed since, keep none.
        with contextlib.suppress(InvalidVariables):
            status.variables = resolve_variables(pipeline.spec.variables, run.spec.variables)
    first_start = next((main_container(p).get("state", {}) for p in pods if started(p)), None)
    if first_start and status.start_time is None and not never_ran_state(first_start):
        state = first_start.get("running") or first_start.get("terminated") or {}
        status.start_time = parse_time(state.get("startedAt"))
    terminated = main_container(latest).get("state", {}).get("terminated") if latest else None
    if terminated and terminated.get("reason") not in NEVER_RAN_REASONS:
        status.exit_code = terminated.get("exitCode")  # a program that never ran has none
        status.outputs = outputs_of(terminated)
    if outcome.failure is not None:
        status.failure = outcome.failure
    finished = finish(status, outcome, seen.generation, now, terminated)
    # A stop deletes the Job; a deadline's stop is the Job controller's own doing.
    stopping = outcome.phase == Phase.STOPPING and outcome.reason == Reason.STOPPED
    delete = (stopping or outcome.ends_job) and not job_finished(job)
    delete = delete and not job["metadata"].get("deletionTimestamp")
    return Decision(finished, delete_job=delete, recheck_after=recheck)


def _attempts(status: PipelineJobStatus, pods: list[Obj]) -> int:
    """Pods that ran or failed for the run: those it still has, or one more than the
    status counted when the pod it named is gone and a newer one ran (an evicted pod is
    deleted once its end is recorded; a pod the Job controller failed is kept)."""
    attempted = [p for p in pods if _attempted(p)]
    count = len(attempted)
    named = status.pod_name
    if attempted and named and named not in {p["metadata"]["name"] for p in pods}:
        count = max(count, status.attempts + 1)
    return max(status.attempts, count)


def _attempted(pod: Obj) -> bool:
    """The pod got as far as running a container, or failed trying: an attempt."""
    return started(pod) or pod_phase(pod) == "Failed"


def never_ran_state(state: Obj) -> bool:
    return (state.get("terminated") or {}).get("reason") in NEVER_RAN_REASONS


def observe(
    run: PipelineJob,
    job: Obj,
    pods: list[Obj],
    now: dt.datetime,
    pending_deadline_seconds: int,
    pod_creation_error: str | None = None,
    pod_events: list[Obj] | None = None,
    workload: Obj | None = None,
    gate_lifted_at: dt.datetime | None = None,
) -> tuple[Outcome, float | None]:
    """The phase, reason and message that the Job and its pods (oldest first) show, and
    when to look again if nothing changes (a pending deadline)."""
    latest = pods[-1] if pods else None
    failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    job_spec = job.get("spec") or {}
    backoff_limit = int(job_spec.get("backoffLimit", 6))  # the API's default
    # The pods the Job controller deleted for a suspension (Kueue's preemption) are not
    # failures: it drops their tracking finalizer first, and never counts them.
    failed_pods = [p for p in failed_pods if not deleted_by_suspension(p, job, now)]

    if latest and pod_phase(latest) == "Succeeded":
        uncounted = _uncounted_success(job, [latest], now) and not job_finished(job)
        message = "the run completed successfully"
        return Outcome(Phase.COMPLETE, Reason.COMPLETED, message, ends_job=uncounted), None
    if job_condition(job, "Complete"):
        if latest is not None:  # its pod's end (exit code, last lines) is on its way
            return Outcome(Phase.RUNNING, Reason.RUNNING, "the run is running"), None
        return Outcome(
            Phase.COMPLETE,
            Reason.COMPLETED,
            "the run completed successfully; its pod was gone before its exit code and "
            "last log lines could be read",
        ), None
    failed = job_condition(job, "Failed") or job_condition(job, "FailureTarget")
    if (failed and failed.get("reason") == "DeadlineExceeded") or _past_deadline(job, pods, now):
        deadline = job_spec.get("activeDeadlineSeconds")
        if not all(ended(p) for p in pods):
            # The Job controller stops the pod, which has its grace period to print its
            # last lines: the run is stopping (and holds its slot) until it has ended.
            message = f"stopping: activeDeadlineSeconds ({deadline} s) passed"
            return Outcome(Phase.STOPPING, Reason.DEADLINE_EXCEEDED, message), None
        message = (
            f"the run was stopped after activeDeadlineSeconds ({deadline} s); "
            "raise it or speed the run up"
        )
        return Outcome(Phase.STOPPED, Reason.DEADLINE_EXCEEDED, message), None
    # A stop deletes the Job and its pods: their failing is the stop's doing.
    if run.spec.stopped:
        if job["metadata"].get("deletionTimestamp") and all(ended(p) for p in pods):
            return Outcome(Phase.STOPPED, Reason.STOPPED, "the run was stopped"), None
        return Outcome(Phase.STOPPING, Reason.STOPPED, "stopping: the Job is being deleted"), None
    if suspended(job):
        # Kueue holds the Job (not admitted yet, or preempted: its pods are being
        # deleted); pendingDeadlineSeconds does not count this wait.
        why = held(job, workload)
        return Outcome(Phase.QUEUED, why.reason, why.message), None
    if latest is not None and latest["metadata"].get("deletionTimestamp") and not ended(latest):
        # Being deleted: how it ends (and why) shows once its containers have stopped,
        # after their grace period. The Job controller counts a terminating pod as
        # failed at once (FailureTarget): that is not yet the run's end.
        return Outcome(Phase.RUNNING, Reason.RUNNING, "the run's pod is being deleted"), None
    # The outcome is known once the last pod the Job may start has failed: the Job
    # controller marks the Job Failed later, and the slot need not wait for it. With a
    # podFailurePolicy only the Job controller knows which failed pods count.
    exhausted = "podFailurePolicy" not in job_spec and len(failed_pods) > backoff_limit
    if failed or exhausted:
        return _failure(pods, latest, failed), None
    if latest is None:
        return _no_pod(job, now, pending_deadline_seconds, pod_creation_error)
    if pod_phase(latest) == "Pending":
        return _pending(latest, now, pending_deadline_seconds, pod_events or [], gate_lifted_at)
    if pod_phase(latest) == "Failed":  # the Job controller will start another pod
        message = f"attempt {len(pods)} {_how_it_failed(latest)}; retrying"
        return Outcome(Phase.RUNNING, Reason.RUNNING, message), None
    return Outcome(Phase.RUNNING, Reason.RUNNING, "the run is running"), None


def _uncounted_success(job: Obj, pods: list[Obj], now: dt.datetime) -> bool:
    """A pod a preemption deleted still finished its work within its grace period: the
    Job controller does not count it and would run the program again, so the run's end
    ends its Job. Read again by every sync after the end (a failed delete, a restart):
    the pod keeps the operator's finalizer until the Job is deleted."""
    return any(pod_phase(p) == "Succeeded" and deleted_by_suspension(p, job, now) for p in pods)


def _no_pod(
    job: Obj, now: dt.datetime, pending_deadline_seconds: int, pod_creation_error: str | None
) -> tuple[Outcome, float | None]:
    created = parse_time(job["metadata"].get("creationTimestamp")) or now
    # A Job Kueue held waits from its (last) resume: admission has no deadline here.
    created = max(created, resumed_at(job, now) or created)
    waited = (now - created).total_seconds()
    why = pod_creation_error or (
        "a ResourceQuota, Pod Security admission or a webhook may refuse it; "
        f"`kubectl describe job {job['metadata']['name']}` shows why"
    )
    if waited >= pending_deadline_seconds:
        message = (
            f"the Job could not create a pod in pendingDeadlineSeconds "
            f"({pending_deadline_seconds} s): {why}"
        )
        return Outcome(Phase.ERROR, Reason.POD_CREATION_FAILED, message, ends_job=True), None
    # Why it has no pod arrives with the Job controller's FailedCreate Event (watched):
    # only the deadline needs a timer.
    recheck = pending_deadline_seconds - waited + 1
    if pod_creation_error:
        message = f"the Job cannot create a pod (retrying until pendingDeadlineSeconds): {why}"
        return Outcome(Phase.QUEUED, Reason.POD_CREATION_FAILED, message), recheck
    return Outcome(Phase.QUEUED, Reason.QUEUED, STARTING), recheck


def _pending(
    pod: Obj,
    now: dt.datetime,
    pending_deadline_seconds: int,
    events: list[Obj],
    gate_lifted_at: dt.datetime | None = None,
) -> tuple[Outcome, float | None]:
    """A pod not started yet: QUEUED, with why when it is stuck (updated as the kubelet's
    words change), until pendingDeadlineSeconds; then ERROR with that reason. A cause
    that cannot go away (an invalid image name) ends the run at once. Time behind the
    operator's own scheduling gate does not count: the clock starts when it is lifted."""
    if gated(pod):  # lifted by this sync (decide_run's ungate)
        return Outcome(Phase.QUEUED, Reason.QUEUED, STARTING), None
    problem = stuck(pod, events)
    init = initializing(pod)
    if init is not None and problem is None:
        # The pod has started: its init containers' time (fetching data, waiting for a
        # database) is work, not a wait, and the pending deadline no longer runs.
        return Outcome(Phase.RUNNING, Reason.INITIALIZING, init.message()), None
    created = parse_time(pod["metadata"]["creationTimestamp"]) or now
    created = max(created, gate_lifted_at or created)
    waited = (now - created).total_seconds()
    if problem is not None and problem.hopeless:
        return Outcome(Phase.ERROR, problem.reason, problem.message, ends_job=True), None
    if waited >= pending_deadline_seconds:
        reason, message = (
            (problem.reason, problem.message)
            if problem
            else (Reason.PENDING_DEADLINE_EXCEEDED, "the pod did not start")
        )
        message = f"{message} (waited pendingDeadlineSeconds, {pending_deadline_seconds} s)"
        return Outcome(Phase.ERROR, reason, message, ends_job=True), None
    recheck = pending_deadline_seconds - waited + 1
    if problem:
        return Outcome(Phase.QUEUED, problem.reason, problem.message), recheck
    return Outcome(Phase.QUEUED, Reason.QUEUED, STARTING), recheck


def _failure(pods: list[Obj], latest: Obj | None, job_failed: Obj | None) -> Outcome:
    """Why the run failed: a rule of its podFailurePolicy, a disruption of its pod, or the
    container whose end failed it (named, with the kubelet's or the program's words)."""
    container = failed_container(latest) if latest is not None else None
    failure = failure_of(container) if container is not None else None
    if job_failed and job_failed.get("reason") == "PodFailurePolicy":
        rule = str(job_failed.get("message") or "a rule matched")
        how = f"; {failure_message(container)}" if container else ""
        message = f"the Pipeline's podFailurePolicy ended the run: {rule}{how}"
        return Outcome(Phase.ERROR, Reason.POD_FAILURE_POLICY, message, failure)
    lost = disruption(latest) if latest is not None else None
    if lost is not None:  # not a container's doing: no `failure`
        return Outcome(Phase.ERROR, lost[0], lost[1])
    if container is None:
        why = _pod_failed_message(latest) if latest is not None else None
        message = why or str((job_failed or {}).get("message") or "the run's Job failed")
        return Outcome(Phase.ERROR, Reason.FAILED, message)
    terminated = container.state.get("terminated") or {}
    if terminated.get("reason") == "OOMKilled":
        message = f"{failure_message(container)}; raise its memory limit"
        return Outcome(Phase.ERROR, Reason.OOM_KILLED, message, failure)
    if terminated.get("reason") in NEVER_RAN_REASONS:
        return Outcome(Phase.ERROR, Reason.START_FAILED, failure_message(container), failure)
    attempts = sum(1 for p in pods if _attempted(p))
    if attempts > 1:
        message = f"all {attempts} attempts failed; the last one: {failure_message(container)}"
        return Outcome(Phase.ERROR, Reason.BACKOFF_LIMIT_EXCEEDED, message, failure)
    return Outcome(Phase.ERROR, Reason.FAILED, failure_message(container), failure)


def _how_it_failed(pod: Obj) -> str:
    """'was evicted (...)', or 'failed: init container "prep" failed with exit code 4'."""
    lost = disruption(pod)
    if lost is not None:
        return f"ended: {lost[1]}"
    container = failed_container(pod)
    return f"failed: {failure_message(container)}" if container else "failed"


def _pod_failed_message(pod: Obj) -> str | None:
    status = pod.get("status") or {}
    if not status.get("reason") and not status.get("message"):
        return None
    said = f"{status.get('reason') or ''} {status.get('message') or ''}".strip()
    return f"the run's pod failed: {said}"


def disruption(pod: Obj) -> tuple[Reason, str] | None:
    """Why a failed pod was ended from outside, as the API shows it: the DisruptionTarget
    condition (an eviction, a preemption, a lost node), the kubelet's own eviction, or a
    deletionTimestamp (someone deleted it). Its finalizer keeps it readable until the
    operator has recorded this."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            cause = str(cond.get("reason") or "")
            detail = f"{cause}: {cond.get('message', '')}".rstrip(": ")
            reason = DISRUPTIONS.get(cause, Reason.POD_DELETED)
            if reason == Reason.NODE_LOST:
                node = pod["spec"].get("nodeName") or "its node"
                return reason, f"the run's pod was lost with {node} ({detail}); start a new run"
            if reason == Reason.PREEMPTED:
                return reason, (
                    f"the run's pod was preempted for a pod of higher priority ({detail}); "
                    "start a new run, or give the Pipeline's pods a higher priorityClassName"
                )
            if reason == Reason.EVICTED:
                return reason, f"the run's pod was evicted ({detail}); start a new run"
            return reason, f"the run's pod was ended from outside ({detail})"
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":  # the kubelet's eviction, without a condition
        detail = str(status.get("message") or "")
        return Reason.EVICTED, f"the run's pod was evicted by its node's kubelet ({detail})"
    if pod["metadata"].get("deletionTimestamp"):
        return (
            Reason.POD_DELETED,
            "the run's pod was deleted by someone else while it ran; start a new run",
        )
    return None


def _past_deadline(job: Obj, pods: list[Obj], now: dt.datetime) -> bool:
    """The Job controller deletes the pods of a Job past activeDeadlineSeconds before it
    marks the Job: a pod deleted after the deadline is that, not someone else's doing."""
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    started_at = parse_time((job.get("status") or {}).get("startTime"))
    if deadline is None or started_at is None:
        return False
    deleted = any(p["metadata"].get("deletionTimestamp") for p in pods)
    return deleted and (now - started_at).total_seconds() >= int(deadline)


def trigger_of(annotations: dict[str, str] | None) -> Trigger:
    """Schedule when the run was created by a schedule (its annotations carry the time),
    else Manual."""
    scheduled = (annotations or {}).get(ANNOTATION_SCHEDULED_TIME)
    if scheduled:
        try:
            return Trigger(type=TriggerType.SCHEDULE, scheduled_time=parse_time(scheduled))
        except ValueError:
            pass  # not a time: not a scheduled run of ours
    return Trigger()


def outputs_of(terminated: Obj) -> list[Output]:
    """Outputs from a JSON termination message like {"outputs": [{"name": ..., "records": N}]}."""
    try:
        data = json.loads(terminated.get("message") or "")
        return [Output.model_validate(o) for o in data["outputs"]]
    except (ValueError, TypeError, KeyError):
        return []  # a plain-text termination message is not an error


def finish(
    status: PipelineJobStatus,
    outcome: Outcome,
    generation: int | None,
    now: dt.datetime,
    terminated: Obj | None = None,
) -> PipelineJobStatus:
    """Sets phase, reason, message, end time and conditions."""
    message = bounded(outcome.message)
    status.phase, status.reason, status.message = outcome.phase, outcome.reason, message
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
            status.duration = human_duration(status.duration_seconds)
    status.conditions = conditions_for(status.conditions, outcome, now)
    return status


def human_duration(seconds: float) -> str:
    """As kubectl shows durations: 0.4s, 12s, 3m5s, 2h0m7s, 3d4h."""
    if seconds < 10:
        return f"{seconds:.1f}s".replace(".0s", "s")
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def conditions_for(current: list[Condition], outcome: Outcome, now: dt.datetime) -> list[Condition]:
    """Running, Complete, Failed and Stopped: True for the phase's own, False for the rest
    (for `kubectl wait --for=condition=Complete`); and kstatus' Reconciling (True until
    the run ends) and Stalled (True when it failed, or waits for a person's fix), for Flux
    and other kstatus readers.
    Other conditions (LogArchived) are kept as they are.

    A condition's lastTransitionTime moves only when its status changes.
    """
    active = CONDITION_BY_PHASE.get(outcome.phase)
    truth = {kind: kind == active for kind in ("Running", "Complete", "Failed", "Stopped")}
    truth["Reconciling"] = not outcome.phase.terminal
    truth["Stalled"] = outcome.phase == Phase.ERROR or (
        outcome.phase == Phase.QUEUED and outcome.reason in NEEDS_ATTENTION
    )
    message = bounded(outcome.message)
    own = [c for c in current if c.type in truth]
    if _already(own, truth, outcome.reason.value, message):
        return current  # most syncs change nothing: no new models to build and compare
    return [
        *(
            Condition(
                type=kind,
                status="True" if true else "False",
                reason=outcome.reason.value if true else None,
                message=message if true else None,
            ).transitioned_from(current, now)
            for kind, true in truth.items()
        ),
        *(c for c in current if c.type not in truth),
    ]


def archive_condition(current: list[Condition], tail: LogTail, now: dt.datetime) -> list[Condition]:
    """LogArchived, for a run whose log is archived: True while the archive holds every
    line read; False, with the store's error, while it lacks some (ArchiveFailing: it
    tries again; ArchiveIncomplete: it gave up, and the message says which lines)."""
    archive = tail.archive
    if archive is None:
        return current
    if archive.error is None:
        reason, message = "Archived", f"{archive.lines} lines in {archive.location}"
    elif archive.incomplete:
        reason, message = "ArchiveIncomplete", archive.error
    else:
        reason, message = "ArchiveFailing", archive.error
    condition = Condition(
        type=LOG_ARCHIVED,
        status="True" if archive.error is None else "False",
        reason=reason,
        message=bounded(message),
    )
    old = next((c for c in current if c.type == LOG_ARCHIVED), None)
    if old is not None and (old.status, old.reason, old.message) == (
        condition.status,
        condition.reason,
        condition.message,
    ):
        return current
    return [
        *(c for c in current if c.type != LOG_ARCHIVED),
        condition.transitioned_from(current, now),
    ]


def _already(current: list[Condition], truth: dict[str, bool], reason: str, message: str) -> bool:
    """Whether `current` already says what `truth`, `reason` and `message` would."""
    if len(current) != len(truth):
        return False
    for condition, (kind, true) in zip(current, truth.items(), strict=True):
        wanted = ("True", reason, message) if true else ("False", None, None)
        if (
            condition.type != kind
            or (condition.status, condition.reason, condition.message) != wanted
        ):
            return False
    return True


def bounded(message: str, limit: int = MESSAGE_MAX_BYTES) -> str:
    """`message` cut to at most `limit` bytes of UTF-8, marked when cut: whatever a message
    quotes (a user's variables, an apiserver's answer), the object stays small."""
    data = message.encode()
    if len(data) <= limit:
        return message
    return data[: limit - 4].decode(errors="ignore") + " ..."
