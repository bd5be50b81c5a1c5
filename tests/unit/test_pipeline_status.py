"""What a Pipeline's status says of its runs, and which runs its history drops."""

import datetime as dt
from typing import Any

import pytest

from jobline.core.pipeline_status import (
    STATUS_INTERVAL,
    PipelineSeen,
    decide_pipeline,
    history_to_delete,
    last_run,
)
from jobline.models import Pipeline


def run(name: str, created: str = "2026-01-01T00:00:00Z", **status: Any) -> Any:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"pipelineRef": {"name": "p"}},
        "status": status,
    }


def names(runs: list[Any]) -> list[str]:
    return [r["metadata"]["name"] for r in runs]


def test_history_keeps_the_newest_of_each_kind() -> None:
    runs = [
        run(f"ok-{i}", phase="COMPLETE", endTime=f"2026-01-01T00:0{i}:00Z") for i in range(4)
    ] + [
        run("bad-0", phase="ERROR", endTime="2026-01-01T00:00:30Z"),
        run("stop-1", phase="STOPPED", endTime="2026-01-01T00:01:30Z"),
        run("live", phase="RUNNING"),
        run("waiting", phase="QUEUED"),
    ]
    assert names(history_to_delete(runs, 2, 1)) == ["ok-0", "bad-0", "ok-1"]
    assert history_to_delete(runs, 10, 10) == []


def test_last_run_is_the_newest() -> None:
    runs = [
        run("a", "2026-01-01T00:00:00Z", phase="COMPLETE", exitCode=0),
        run("b", "2026-01-01T00:01:00Z", phase="RUNNING"),
    ]
    latest = last_run(runs)
    assert latest is not None
    assert (latest.name, latest.phase and latest.phase.value) == ("b", "RUNNING")


# --- decide_pipeline: a Pipeline's sync, decided ----------------------------------------

NOW = dt.datetime(2026, 1, 1, 0, 30, 10, tzinfo=dt.UTC)
WRITTEN = {
    "observedGeneration": 1,
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Valid", "message": "the spec is valid",
         "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Stalled", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    ],
    "activeCount": 0,
    "queuedRuns": 0,
}  # fmt: skip


def pipeline_raw(generation: int = 1, status: Any = None, **spec: Any) -> Any:
    return {
        "apiVersion": "jobline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "p-uid",
            "generation": generation,
            "resourceVersion": "5",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}, **spec},
        "status": status if status is not None else dict(WRITTEN),
    }


def seen_of(raw: Any, runs: list[Any] | None = None, **extra: Any) -> PipelineSeen:
    return PipelineSeen(
        raw=raw, pipeline=Pipeline.model_validate(raw), pipeline_error=None, runs=runs or [],
        **extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "seen", "write", "look_again_in"),
    [
        # A new run changes the summary; the status was written a second ago: later.
        ("summary, written 1 s ago", seen_of(pipeline_raw(), [run("a")], status_written_ago=1.0),
         False, STATUS_INTERVAL - 1.0),
        ("summary, written 9 s ago", seen_of(pipeline_raw(), [run("a")], status_written_ago=9.0),
         True, None),
        # A spec change is recorded at once, whatever was written lately.
        ("new generation", seen_of(pipeline_raw(generation=2), status_written_ago=1.0),
         True, None),
        ("nothing changed", seen_of(pipeline_raw(), status_written_ago=1.0), False, None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_the_status_is_written_when_it_changed_at_a_bounded_rate(
    case: str, seen: PipelineSeen, write: bool, look_again_in: float | None
) -> None:
    decision = decide_pipeline(seen, NOW)
    assert (decision.write, decision.look_again_in) == (write, look_again_in), case


def test_a_scheduled_run_due_now_is_created_and_recorded_at_once() -> None:
    raw = pipeline_raw(schedule="*/5 * * * *", startingDeadlineSeconds=60)
    decision = decide_pipeline(seen_of(raw, status_written_ago=1.0), NOW)  # 00:30:10
    assert decision.create_run_for == dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
    assert decision.status["lastScheduleTime"] == "2026-01-01T00:30:00Z"
    assert decision.status["nextScheduleTime"] == "2026-01-01T00:35:00Z"
    assert decision.write  # at once, not after the status interval
    assert decision.look_again_in == pytest.approx(290.0)  # the next cron time


def test_a_missed_run_older_than_its_deadline_is_reported_once() -> None:
    raw = pipeline_raw(schedule="*/5 * * * *", startingDeadlineSeconds=5)
    missed = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
    assert decide_pipeline(seen_of(raw), NOW).skipped == missed
    assert decide_pipeline(seen_of(raw, skipped_reported=missed), NOW).skipped is None


def test_a_pipeline_the_model_rejects_is_not_ready_and_admits_nothing() -> None:
    raw = pipeline_raw(maxConcurrentRuns=0)
    seen = PipelineSeen(
        raw=raw, pipeline=None, pipeline_error="spec.maxConcurrentRuns: must be >= 1",
        runs=[run("a")],
    )  # fmt: skip
    decision = decide_pipeline(seen, NOW)
    ready = decision.status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.maxConcurrentRuns" in ready["message"]
    assert (decision.verdicts, decision.delete, decision.create_run_for) == ({}, [], None)
    assert decision.status["queuedRuns"] == 1
