"""Per-Pipeline sync: admission, schedules, history and the Pipeline's status.

A Pipeline's key is queued when it changes, when one of its runs is created,
ends or is edited (at once: a slot may have freed), when any of its runs
changes (later, for its status), and at its next cron time (a timer, not a
poll). One sync decides admission for all the Pipeline's runs in one pass
(`core.admission.plan`) and hands its verdicts to the run controller, which acts
on each run. Creating a scheduled run is idempotent: its name is derived from
the cron time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException

from jobline.controller import metrics
from jobline.controller.cache import Cache, Key, Obj, object_ref
from jobline.controller.kube import Kube
from jobline.controller.workqueue import TokenBucket, WorkQueue, failure_logger
from jobline.core.admission import (
    Admission,
    Admissions,
    Verdict,
    candidate_of,
    plan,
    positions_to_show,
    unknown_jobs,
)
from jobline.core.clock import SYSTEM_CLOCK, Clock, format_time, parse_time
from jobline.core.jobs import build_run, short_name
from jobline.core.pipeline_status import (
    history_to_delete,
    last_run,
    last_successful_time,
    phase_of,
)
from jobline.core.schedule import InvalidSchedule, InvalidTimeZone, decide, parse_schedule, run_name
from jobline.kube.request import FAILED_REQUEST, describe
from jobline.models import (
    ANNOTATION_SCHEDULED_TIME,
    ConcurrencyPolicy,
    Condition,
    Phase,
    Pipeline,
    PipelineStatus,
    drop_empty,
    to_json,
)

log = logging.getLogger(__name__)
# Run changes come in bursts: a Pipeline's status (a summary for people) is written at
# most this often.
STATUS_INTERVAL = 5.0
# Queue positions of waiting runs shift whenever one starts; refresh at most this many
# per second per Pipeline (nearest the head first), beyond each run's first.
POSITION_REFRESH_RATE = 0.2
ACTIVE = (Phase.RUNNING.value, Phase.STOPPING.value)
HISTORY_RETRY_SECONDS = 30.0


class PipelineController:
    def __init__(
        self,
        kube: Kube,
        cache: Cache,
        admissions: Admissions,
        synced: Callable[[str], bool],
        wake_run: Callable[[Key], None],
        wake_runs_of: Callable[[str, str], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.kube = kube
        self.cache = cache
        self.admissions = admissions
        self.synced = synced
        self.wake_run = wake_run  # a run's sync has a new verdict to act on
        self.wake_runs_of = wake_runs_of  # a Pipeline's spec changed, or it is gone
        self.clock = clock
        self.queue: WorkQueue[Key] = WorkQueue(clock.monotonic)
        self._skipped_reported: dict[Key, dt.datetime] = {}
        self._status_written: dict[Key, float] = {}
        self._position_budget: dict[Key, TokenBucket] = {}

    def start(self, workers: int) -> None:
        self.queue.run_workers(workers, self.sync, failure_logger("Pipeline"), "pipeline")

    def on_pipeline(self, event: str, stored: Obj, old: Obj | None) -> None:
        """A Pipeline changed; the informer has already updated the cache."""
        meta = stored["metadata"]
        key = (meta["namespace"], meta["name"])
        if event == "DELETED":
            self._forget(key)
            return
        # Its runs care about its spec, not its status: a status change (most events)
        # must not wake every run of the Pipeline.
        if old is None or old["metadata"].get("generation") != stored["metadata"].get("generation"):
            self.wake_runs_of(*key)
        self.queue.add(key)

    def _forget(self, key: Key) -> None:
        self.cache.forget_pipeline(*key)
        self._skipped_reported.pop(key, None)
        self._status_written.pop(key, None)
        self._position_budget.pop(key, None)
        self.wake_runs_of(*key)  # waiting runs now wait for it to exist again

    def run_changed(self, namespace: str, pipeline: str, urgent: bool) -> None:
        key = (namespace, pipeline)
        model = self.cache.pipeline(*key)
        if urgent and model and model.spec.concurrency_policy != ConcurrencyPolicy.ALLOW:
            self.queue.add(key)  # a slot may be free, or a newcomer waits
        else:
            self.queue.add_after(key, STATUS_INTERVAL)

    def sync(self, key: Key) -> None:
        """Admission, the schedule and the status, then history: a history deletion that
        fails is logged and retried later, never holding up the Pipeline's runs."""
        if not self.synced(key[0]):
            self.queue.add_after(key, 0.5)
            return
        raw = self.cache.pipelines.get(*key)
        if raw is None:
            return
        now = self.clock.now()
        status = PipelineStatus.model_validate(raw.get("status") or {})
        runs = self.cache.runs.by("pipeline", key)
        pipeline = self.cache.pipeline(*key)
        if pipeline is None:  # the model rejects what the CRD's schema let through
            error = self.cache.pipeline_error(*key) or "the spec cannot be read"
            reason = "InvalidTemplate" if error.startswith("spec.template") else "InvalidSpec"
            invalid = Condition(
                type="Ready", status="False", reason=reason, message=f"{error}; fix the Pipeline"
            )
            status.next_schedule_time = None
            self._write_status(key, raw, status, invalid, runs, now)
            return
        ready = self._schedule(raw, pipeline, status, now)
        doomed = history_to_delete(
            runs, pipeline.spec.history.successful_runs, pipeline.spec.history.failed_runs
        )
        gone = {r["metadata"]["uid"] for r in doomed}
        kept = [r for r in runs if r["metadata"]["uid"] not in gone]
        if pipeline.spec.concurrency_policy != ConcurrencyPolicy.ALLOW:
            self._admit(key, pipeline, kept)
        self._write_status(key, raw, status, ready, kept, now)
        self._delete_history(key, doomed)

    def _delete_history(self, key: Key, doomed: list[Obj]) -> None:
        """Deletes finished runs beyond the history limits, as the CronJob controller
        cleans up after its sync: a failed deletion is said and tried again later."""
        for run in doomed:
            meta = run["metadata"]
            try:
                self.kube.delete_run(meta["namespace"], meta["name"], meta["uid"])
            except FAILED_REQUEST as e:
                log.warning(
                    "cannot delete the finished run %s (history): %s; trying again in %.0f s",
                    meta["name"],
                    describe(e),
                    HISTORY_RETRY_SECONDS,
                    extra=object_ref(run),
                )
                self.queue.add_after(key, HISTORY_RETRY_SECONDS)
                return

    # --- admission ----------------------------------------------------------------

    def _admit(self, key: Key, pipeline: Pipeline, runs: list[Obj]) -> None:
        candidates = []
        for run in runs:
            job = self.cache.jobs.one("owner", run["metadata"]["uid"])
            pods = self.cache.pods_of_run(run, job)
            admitted = self.admissions.admitted(run["metadata"]["uid"])
            candidates.append(candidate_of(run, job, pods, admitted))
        # Jobs of runs not known yet (right after a restart) hold slots too.
        unknown = unknown_jobs(
            self.cache.jobs.by("pipeline", (key[0], short_name(key[1]))),
            lambda uid: self.cache.runs.one("uid", uid) is not None,
        )
        spec = pipeline.spec
        decided = plan(spec.concurrency_policy, spec.max_concurrent_runs, candidates, unknown)
        by_uid = {r["metadata"]["uid"]: r for r in runs}
        for uid in decided.start:
            self._tell(by_uid[uid], Verdict(Admission.START))
        for uid in decided.forbid:
            self._tell(by_uid[uid], Verdict(Admission.FORBID))
        for uid, newer in decided.replace.items():
            self._tell(by_uid[uid], Verdict(Admission.REPLACE, by=newer))
        shown = {uid: self._shown_position(by_uid[uid]) for uid in decided.positions}
        budget = self._position_budget.setdefault(
            key, TokenBucket(POSITION_REFRESH_RATE, 1, self.clock.monotonic)
        )
        stale = any(shown[uid] not in (None, pos) for uid, pos in decided.positions.items())
        refresh = 1 if stale and budget.take() else 0
        chosen = positions_to_show(shown, decided.positions, refresh)
        for uid, position in chosen.items():
            self._tell(by_uid[uid], Verdict(Admission.WAIT, position))
        if any(
            shown.get(uid) != pos for uid, pos in decided.positions.items() if uid not in chosen
        ):
            self.queue.add_after(key, 1 / POSITION_REFRESH_RATE)  # the rest, later

    def _shown_position(self, run: Obj) -> int | None:
        """The position the run shows, or has been told to show and not written yet."""
        written: int | None = (run.get("status") or {}).get("queuePosition")
        told = self.admissions.get(run["metadata"]["uid"])
        if told is not None and told.admission == Admission.WAIT and told.position is not None:
            return told.position
        return written

    def _tell(self, run: Obj, verdict: Verdict) -> None:
        if self.admissions.set(run["metadata"]["uid"], verdict):
            self.wake_run((run["metadata"]["namespace"], run["metadata"]["name"]))

    # --- schedules ------------------------------------------------------------------

    def _schedule(
        self, raw: Obj, pipeline: Pipeline, status: PipelineStatus, now: dt.datetime
    ) -> Condition:
        """Creates the run due now, if any; returns the Ready condition."""
        spec, key = pipeline.spec, (raw["metadata"]["namespace"], raw["metadata"]["name"])
        ready = Condition(type="Ready", status="True", reason="Valid", message="the spec is valid")
        status.next_schedule_time = None
        if not spec.schedule:
            return ready
        try:
            schedule = parse_schedule(spec.schedule, spec.time_zone)
        except (InvalidSchedule, InvalidTimeZone) as e:
            return Condition(type="Ready", status="False", reason=e.reason, message=str(e))
        created = parse_time(raw["metadata"]["creationTimestamp"]) or now
        decision = decide(
            schedule, now, status.last_schedule_time, created, spec.starting_deadline_seconds
        )
        if spec.suspend:
            return ready
        status.next_schedule_time = decision.next_time
        if decision.create:
            self._create_scheduled_run(raw, decision.create)
            status.last_schedule_time = decision.create
        elif decision.skipped and self._skipped_reported.get(key) != decision.skipped:
            self._skipped_reported[key] = decision.skipped
            self.kube.post_event(
                raw,
                "Warning",
                "RunSkipped",
                f"the run due at {decision.skipped.isoformat()} was missed by more "
                f"than startingDeadlineSeconds ({spec.starting_deadline_seconds} s)",
                now,
            )
        self.queue.add_after(key, max(1.0, (decision.next_time - now).total_seconds()))
        return ready

    def _create_scheduled_run(self, pipeline: Obj, scheduled: dt.datetime) -> None:
        meta = pipeline["metadata"]
        name = run_name(meta["name"], scheduled)
        stamp = format_time(scheduled)
        body = build_run(
            meta["name"],
            meta["uid"],
            {"name": name, "annotations": {ANNOTATION_SCHEDULED_TIME: stamp}},
        )
        try:
            self.kube.create_run(meta["namespace"], body)
        except ApiException as e:
            if e.status != 409:
                raise
            # Created before a restart, or by someone else under the name it would have:
            # used only if it is what the operator would have created.
            existing = self.kube.read_run(meta["namespace"], name)
            if existing is not None and not is_scheduled_run(existing, pipeline, stamp):
                self.kube.post_event(
                    pipeline,
                    "Warning",
                    "RunSkipped",
                    f"no run for {stamp}: a PipelineJob named {name} already exists and is not "
                    "the scheduled run the operator would have created; delete or rename it",
                    self.clock.now(),
                )
            return
        self.kube.post_event(
            pipeline, "Normal", "RunCreated", f"created {name} for {stamp}", self.clock.now()
        )
        log.info("created scheduled run %s for %s", name, stamp, extra=object_ref(pipeline))

    # --- status -----------------------------------------------------------------------

    def _write_status(
        self,
        key: Key,
        raw: Obj,
        status: PipelineStatus,
        ready: Condition,
        runs: list[Obj],
        now: dt.datetime,
    ) -> None:
        current = PipelineStatus.model_validate(raw.get("status") or {})
        status.observed_generation = raw["metadata"].get("generation")
        # Stalled mirrors a False Ready for kstatus readers (Flux, kpt, ...).
        failed = ready.status == "False"
        stalled = Condition(
            type="Stalled",
            status="True" if failed else "False",
            reason=ready.reason if failed else None,
            message=ready.message if failed else None,
        )
        status.conditions = [
            ready.transitioned_from(current.conditions, now),
            stalled.transitioned_from(current.conditions, now),
        ]
        status.active_runs = sorted(r["metadata"]["name"] for r in runs if phase_of(r) in ACTIVE)
        status.active_count = len(status.active_runs)
        status.queued_runs = sum(1 for r in runs if phase_of(r) in (None, Phase.QUEUED.value))
        status.last_run = last_run(runs)
        status.last_successful_time = last_successful_time(runs, current.last_successful_time)
        new = to_json(status)
        if drop_empty(new) == drop_empty(raw.get("status") or {}):
            return
        # A spec change (generation) and a new scheduled run are recorded at once; the
        # summary of the runs at a bounded rate.
        at_once = (
            status.observed_generation != current.observed_generation
            or status.last_schedule_time != current.last_schedule_time
        )
        wait = self._status_written.get(key, 0.0) + STATUS_INTERVAL - self.clock.monotonic()
        if wait > 0 and not at_once:
            self.queue.add_after(key, wait)
            return
        try:
            updated = self.kube.patch_pipeline_status(*key, raw["metadata"]["resourceVersion"], new)
        except ApiException as e:
            if e.status == 409:  # changed since: its event queues it again
                self.queue.add_after(key, 1.0)
                return
            if e.status == 404:
                # Deleted while its key waited (the operator frozen, its watch not caught
                # up): what its DELETED event would do, not a failure to retry.
                self._forget(key)
                return
            raise
        metrics.STATUS_WRITES.labels("Pipeline").inc()
        self._status_written[key] = self.clock.monotonic()
        self.cache.pipelines.put(updated)


def is_scheduled_run(run: Obj, pipeline: Obj, stamp: str) -> bool:
    """Whether `run` is the scheduled run the operator creates for `pipeline` at `stamp`:
    that Pipeline's, owned by it, marked with that time, with nothing of its own (no
    variables, priority or stop) that a person could have slipped in."""
    meta, spec = run["metadata"], run.get("spec") or {}
    owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
    return (
        (meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_TIME) == stamp
        and spec.get("pipelineRef", {}).get("name") == pipeline["metadata"]["name"]
        and pipeline["metadata"]["uid"] in owners
        and not spec.get("variables")
        and not spec.get("priority")
        and not spec.get("stopped")
    )
