"""Per-Pipeline sync: admission, schedules, history and the Pipeline's status, decided
in one pure step (`core.pipeline_status.decide_pipeline`) and then acted on here.

A Pipeline's key is queued when it changes, when one of its runs is created,
ends or is edited (at once: a slot may have freed), when any of its runs
changes (later, for its status), and at its next cron time (a timer, not a
poll). One sync decides admission for all the Pipeline's runs in one pass
(`core.admission.plan`) and hands its verdicts to the run controller, which acts
on each run. Creating a scheduled run is idempotent: its name is derived from
the cron time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException

from jobline.controller import metrics
from jobline.controller.cache import Cache, Key, Obj, object_ref
from jobline.controller.kube import KubeAPI
from jobline.controller.workqueue import TokenBucket, WorkQueue, failure_logger
from jobline.core.admission import Admission, Admissions, Verdict, candidate_of, unknown_jobs
from jobline.core.clock import SYSTEM_CLOCK, Clock, format_time
from jobline.core.jobs import build_run, short_name
from jobline.core.pipeline_status import (
    POSITION_REFRESH_RATE,
    RUN_RETRY_SECONDS,
    STATUS_INTERVAL,
    PipelineDecision,
    PipelineSeen,
    RunRefusal,
    decide_pipeline,
)
from jobline.core.schedule import run_name
from jobline.kube.request import FAILED_REQUEST, describe, error_message
from jobline.models import ANNOTATION_SCHEDULED_TIME, ConcurrencyPolicy

log = logging.getLogger(__name__)
HISTORY_RETRY_SECONDS = 30.0


class PipelineController:
    def __init__(
        self,
        kube: KubeAPI,
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
        # The latest scheduled run refused per Pipeline: (due time, why, monotonic when).
        self._refusals: dict[Key, tuple[dt.datetime, str, float]] = {}

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
        self._refusals.pop(key, None)
        self.wake_runs_of(*key)  # waiting runs now wait for it to exist again

    def run_changed(self, namespace: str, pipeline: str, urgent: bool) -> None:
        key = (namespace, pipeline)
        model = self.cache.pipeline(*key)
        if urgent and model and model.spec.concurrency_policy != ConcurrencyPolicy.ALLOW:
            self.queue.add(key)  # a slot may be free, or a newcomer waits
        else:
            self.queue.add_after(key, STATUS_INTERVAL)

    def sync(self, key: Key) -> None:
        """Observe, decide (`decide_pipeline`), act: the scheduled run, the verdicts, the
        status, then history, whose failed deletion is logged and retried later, never
        holding up the Pipeline's runs."""
        if not self.synced(key[0]):
            self.queue.add_after(key, 0.5)
            return
        raw = self.cache.pipelines.get(*key)
        if raw is None:
            return
        seen = self._observe(key, raw)
        now = self.clock.now()
        decision = decide_pipeline(seen, now)
        if decision.create_run_for is not None:
            refused = self._create_scheduled_run(raw, decision.create_run_for)
            if refused is not None:
                # Decided again with the refusal seen: the run stays due (retried later),
                # and admission, history and the status go on.
                seen = dataclasses.replace(seen, refusal=self._refused_now(key, refused))
                decision = decide_pipeline(seen, now)
                assert decision.create_run_for is None
            else:
                self._refusals.pop(key, None)
        self._act(key, raw, seen, decision)

    def _observe(self, key: Key, raw: Obj) -> PipelineSeen:
        pipeline = self.cache.pipeline(*key)
        runs = self.cache.runs.by("pipeline", key)
        candidates, unknown, shown = [], 0, {}
        if pipeline is not None and pipeline.spec.concurrency_policy != ConcurrencyPolicy.ALLOW:
            for run in runs:
                uid = run["metadata"]["uid"]
                job = self.cache.job_of_run(run)
                pods = self.cache.pods_of_run(run, job)
                candidates.append(candidate_of(run, job, pods, self.admissions.admitted(uid)))
                shown[uid] = self._shown_position(run)
            # Jobs of runs not known yet (right after a restart) hold slots too.
            unknown = unknown_jobs(
                self.cache.jobs.by("pipeline", (key[0], short_name(key[1]))),
                lambda job: self.cache.run_of(job) is not None,
            )
        written = self._status_written.get(key)
        return PipelineSeen(
            raw=raw,
            pipeline=pipeline,
            pipeline_error=self.cache.pipeline_error(*key),
            runs=runs,
            candidates=candidates,
            unknown_jobs=unknown,
            shown_positions=shown,
            position_refresh=self._budget(key).available(),
            skipped_reported=self._skipped_reported.get(key),
            status_written_ago=None if written is None else self.clock.monotonic() - written,
            refusal=self._refusal(key),
        )

    def _refused_now(self, key: Key, refused: tuple[dt.datetime, str]) -> RunRefusal:
        """Records a refusal of the scheduled run just tried; a Warning Event when it is
        news (another run, or other words)."""
        scheduled, message = refused
        before = self._refusals.get(key)
        self._refusals[key] = (scheduled, message, self.clock.monotonic())
        if before is None or before[:2] != (scheduled, message):
            pipeline = self.cache.pipelines.get(*key)
            if pipeline is not None:
                text = f"the run due at {format_time(scheduled)} was refused: {message}"
                self.kube.post_event(pipeline, "Warning", "RunRefused", text, self.clock.now())
        return RunRefusal(scheduled, message, RUN_RETRY_SECONDS)

    def _refusal(self, key: Key) -> RunRefusal | None:
        refused = self._refusals.get(key)
        if refused is None:
            return None
        scheduled, message, at = refused
        return RunRefusal(scheduled, message, RUN_RETRY_SECONDS - (self.clock.monotonic() - at))

    def _act(self, key: Key, raw: Obj, seen: PipelineSeen, decision: PipelineDecision) -> None:
        if decision.skipped is not None and seen.pipeline is not None:
            self._skipped_reported[key] = decision.skipped
            self.kube.post_event(
                raw,
                "Warning",
                "RunSkipped",
                f"the run due at {decision.skipped.isoformat()} was missed by more than "
                f"startingDeadlineSeconds ({seen.pipeline.spec.starting_deadline_seconds} s)",
                self.clock.now(),
            )
        by_uid = {r["metadata"]["uid"]: r for r in seen.runs}
        for uid, verdict in decision.verdicts.items():
            self._tell(by_uid[uid], verdict)
        if decision.used_position_refresh:
            self._budget(key).take()
        if decision.write and not self._write_status(key, raw, decision.status):
            return
        if decision.look_again_in is not None:
            self.queue.add_after(key, decision.look_again_in)
        self._delete_history(key, decision.delete)

    def _budget(self, key: Key) -> TokenBucket:
        return self._position_budget.setdefault(
            key, TokenBucket(POSITION_REFRESH_RATE, 1, self.clock.monotonic)
        )

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

    def _shown_position(self, run: Obj) -> int | None:
        """The position the run shows, or has been told to show and not written yet."""
        written: int | None = (run.get("status") or {}).get("queuePosition")
        told = self.admissions.get(run["metadata"]["uid"])
        if told is not None and told.admission == Admission.WAIT and told.position is not None:
            return told.position
        return written

    def _tell(self, run: Obj, verdict: Verdict) -> None:
        meta = run["metadata"]
        if self.admissions.set(meta["uid"], verdict):
            current = self.cache.runs.get(meta["namespace"], meta["name"])
            if current is None or current["metadata"]["uid"] != meta["uid"]:
                # Deleted since this sync looked: its DELETED event may have come first.
                self.admissions.forget(meta["uid"])
                return
            self.wake_run((meta["namespace"], meta["name"]))

    # --- schedules ------------------------------------------------------------------

    def _create_scheduled_run(
        self, pipeline: Obj, scheduled: dt.datetime
    ) -> tuple[dt.datetime, str] | None:
        """Creates the run due at `scheduled`; the apiserver's refusal when it refuses it
        (a quota, a policy webhook), for the sync to record and retry later."""
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
                log.warning(
                    "the apiserver refused the scheduled run %s: %s", name, error_message(e),
                    extra=object_ref(pipeline),
                )  # fmt: skip
                return scheduled, error_message(e)
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
            return None
        self.kube.post_event(
            pipeline, "Normal", "RunCreated", f"created {name} for {stamp}", self.clock.now()
        )
        log.info("created scheduled run %s for %s", name, stamp, extra=object_ref(pipeline))
        return None

    # --- status -----------------------------------------------------------------------

    def _write_status(self, key: Key, raw: Obj, status: Obj) -> bool:
        """Writes the status decided; False when the Pipeline is gone or changed since (its
        event, or its DELETED event, comes next)."""
        try:
            updated = self.kube.patch_pipeline_status(
                *key, raw["metadata"]["resourceVersion"], status
            )
        except ApiException as e:
            if e.status == 409:  # changed since: its event queues it again
                self.queue.add_after(key, 1.0)
                return False
            if e.status == 404:
                # Deleted while its key waited (the operator frozen, its watch not caught
                # up): what its DELETED event would do, not a failure to retry.
                self._forget(key)
                return False
            raise
        metrics.STATUS_WRITES.labels("Pipeline").inc()
        self._status_written[key] = self.clock.monotonic()
        self.cache.pipelines.update(updated)
        return True


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
