"""Reconciliation of Pipelines: schedules, history and the Pipeline's status.

A Pipeline is reconciled when it changes, when one of its runs changes, and
at its next cron time (a timer, not a poll). Creating a scheduled run is
idempotent: its name is derived from the cron time.
"""

from __future__ import annotations

import datetime as dt
import logging

from kubernetes.client.exceptions import ApiException

from jobline.controller.reconciler import (
    Key,
    Obj,
    Reconciler,
    drop_empty,
    failure_logger,
    key_of,
    object_ref,
)
from jobline.controller.workqueue import WorkQueue
from jobline.core.pipelines import history_to_delete, last_run, last_successful_time, phase_of
from jobline.core.schedule import InvalidSchedule, InvalidTimeZone, decide, parse_schedule, run_name
from jobline.core.status import parse_time
from jobline.models import (
    ANNOTATION_SCHEDULED_TIME,
    API_GROUP,
    API_VERSION,
    Condition,
    Phase,
    Pipeline,
    PipelineStatus,
    to_json,
)

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0
PIPELINE_STATUS_DELAY = 1.0
ACTIVE = (Phase.RUNNING.value, Phase.STOPPING.value)


class PipelineReconciler:
    def __init__(self, runs: Reconciler) -> None:
        self.runs = runs
        self.kube = runs.kube
        self.clock = runs.clock
        self.queue: WorkQueue[Key] = WorkQueue()
        self._skipped_reported: dict[Key, dt.datetime] = {}
        # Run changes come in bursts (created, started, ended within a second or two):
        # one Pipeline status update a second at most is enough for people to read.
        runs.pipeline_changed = lambda key: self.queue.add_after(key, PIPELINE_STATUS_DELAY)

    def start(self, workers: int = 2) -> None:
        self.queue.run_workers(workers, self.reconcile, failure_logger("Pipeline"), RETRY_SECONDS)

    def on_pipeline(self, event: str | None, body: Obj) -> None:
        self.runs.on_pipeline(event, body)
        self.queue.add(key_of(body))

    def reconcile(self, key: Key) -> None:
        namespace, name = key
        with self.runs._lock:
            raw = self.runs.pipelines.get(key)
            runs = [
                r
                for r in self.runs.runs.values()
                if r["metadata"]["namespace"] == namespace
                and r["spec"]["pipelineRef"]["name"] == name
            ]
        if raw is None:
            return
        pipeline = Pipeline.model_validate(raw)
        spec = pipeline.spec
        now = self.clock()
        current = PipelineStatus.model_validate(raw.get("status") or {})
        status = current.model_copy(deep=True)
        ready = Condition(type="Ready", status="True", reason="Valid", message="the spec is valid")
        status.next_schedule_time = None

        if spec.schedule:
            try:
                schedule = parse_schedule(spec.schedule, spec.time_zone)
            except (InvalidSchedule, InvalidTimeZone) as e:
                ready = Condition(type="Ready", status="False", reason=e.reason, message=str(e))
            else:
                created = parse_time(raw["metadata"]["creationTimestamp"]) or now
                decision = decide(
                    schedule,
                    now,
                    status.last_schedule_time,
                    created,
                    spec.starting_deadline_seconds,
                )
                if not spec.suspend:
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
                    delay = (decision.next_time - now).total_seconds()
                    self.queue.add_after(key, max(1.0, delay))

        for doomed in history_to_delete(
            runs, spec.history.successful_runs, spec.history.failed_runs
        ):
            self.kube.delete_run(namespace, doomed["metadata"]["name"])
            runs.remove(doomed)

        status.observed_generation = raw["metadata"].get("generation")
        # Stalled mirrors a False Ready for kstatus readers (Flux, kpt, ...).
        stalled = Condition(
            type="Stalled",
            status="True" if ready.status == "False" else "False",
            reason=ready.reason if ready.status == "False" else None,
            message=ready.message if ready.status == "False" else None,
        )
        status.conditions = [
            _keep_transition_time(ready, current.conditions, now),
            _keep_transition_time(stalled, current.conditions, now),
        ]
        status.active_runs = sorted(r["metadata"]["name"] for r in runs if phase_of(r) in ACTIVE)
        status.queued_runs = sum(1 for r in runs if phase_of(r) in (None, Phase.QUEUED.value))
        status.last_run = last_run(runs)
        status.last_successful_time = last_successful_time(runs, current.last_successful_time)
        new = to_json(status)
        if drop_empty(new) != drop_empty(raw.get("status") or {}):
            updated = self.kube.patch_pipeline_status(namespace, name, new)
            with self.runs._lock:
                if key in self.runs.pipelines:
                    self.runs.pipelines[key] = updated

    def _create_scheduled_run(self, pipeline: Obj, scheduled: dt.datetime) -> None:
        meta = pipeline["metadata"]
        name = run_name(meta["name"], scheduled)
        stamp = scheduled.isoformat().replace("+00:00", "Z")
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "PipelineJob",
            "metadata": {
                "name": name,
                "annotations": {ANNOTATION_SCHEDULED_TIME: stamp},
                "ownerReferences": [
                    {
                        "apiVersion": f"{API_GROUP}/{API_VERSION}",
                        "kind": "Pipeline",
                        "name": meta["name"],
                        "uid": meta["uid"],
                    }
                ],
            },
            "spec": {"pipelineRef": {"name": meta["name"]}},
        }
        try:
            self.kube.create_run(meta["namespace"], body)
        except ApiException as e:
            if e.status == 409:  # created before a restart
                return
            raise
        self.kube.post_event(
            pipeline, "Normal", "RunCreated", f"created {name} for {stamp}", self.clock()
        )
        log.info("created scheduled run %s for %s", name, stamp, extra=object_ref(pipeline))


def _keep_transition_time(
    condition: Condition, current: list[Condition], now: dt.datetime
) -> Condition:
    old = next((c for c in current if c.type == condition.type), None)
    unchanged = old is not None and old.status == condition.status
    condition.last_transition_time = old.last_transition_time if old and unchanged else now
    return condition
