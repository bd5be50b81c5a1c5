"""Queue order, admission under each concurrency policy, and history selection."""

from typing import Any

import pytest

from jobline.core.pipelines import admit, history_to_delete, last_run, queue_order
from jobline.models import ConcurrencyPolicy


def run(name: str, created: str = "2026-01-01T00:00:00Z", priority: int = 0, **status: Any) -> Any:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"pipelineRef": {"name": "p"}, "priority": priority},
        "status": status,
    }


def names(runs: list[Any]) -> list[str]:
    return [r["metadata"]["name"] for r in runs]


def test_queue_order_is_priority_then_age() -> None:
    runs = [
        run("old-low", "2026-01-01T00:00:00Z", 0),
        run("new-high", "2026-01-01T00:05:00Z", 5),
        run("old-high", "2026-01-01T00:01:00Z", 5),
        run("new-low", "2026-01-01T00:09:00Z", 0),
    ]
    assert names(queue_order(runs)) == ["old-high", "new-high", "old-low", "new-low"]


QUEUED = [run("a", "2026-01-01T00:00:01Z"), run("b", "2026-01-01T00:00:02Z")]
ACTIVE = [run("x", "2026-01-01T00:00:00Z", phase="RUNNING")]


@pytest.mark.parametrize(
    ("policy", "max_runs", "active", "who", "expected"),
    [
        (ConcurrencyPolicy.QUEUE, 1, [], "a", {"start": True}),
        (ConcurrencyPolicy.QUEUE, 1, [], "b", {"queue_position": 1}),
        (ConcurrencyPolicy.QUEUE, 1, ACTIVE, "a", {"queue_position": 1}),
        (ConcurrencyPolicy.QUEUE, 1, ACTIVE, "b", {"queue_position": 2}),
        (ConcurrencyPolicy.QUEUE, 2, ACTIVE, "a", {"start": True}),
        (ConcurrencyPolicy.QUEUE, 3, ACTIVE, "b", {"start": True}),
        (ConcurrencyPolicy.ALLOW, 1, ACTIVE, "b", {"start": True}),
        (ConcurrencyPolicy.FORBID, 1, ACTIVE, "a", {"forbidden": True}),
        (ConcurrencyPolicy.FORBID, 2, ACTIVE, "a", {"start": True}),
        (ConcurrencyPolicy.REPLACE, 1, ACTIVE, "a", {"start": True, "replace": ["x"]}),
    ],
)
def test_admission(
    policy: ConcurrencyPolicy, max_runs: int, active: list[Any], who: str, expected: dict[str, Any]
) -> None:
    [me] = [r for r in QUEUED if r["metadata"]["name"] == who]
    got = admit(me, policy, max_runs, active, QUEUED)
    assert got.start == expected.get("start", False)
    assert got.queue_position == expected.get("queue_position")
    assert got.forbidden == expected.get("forbidden", False)
    assert names(got.replace) == expected.get("replace", [])


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
