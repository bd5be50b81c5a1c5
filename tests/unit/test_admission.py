"""Admission as a table: one pass decides for every run of a Pipeline."""

from typing import Any

import pytest

from jobline.core.admission import (
    Admission,
    Candidate,
    Plan,
    Verdict,
    candidate_of,
    forbidden_by,
    plan,
    positions_to_show,
    queue_order,
    verdict_without_plan,
)
from jobline.models import ConcurrencyPolicy

QUEUE, ALLOW, FORBID, REPLACE = (
    ConcurrencyPolicy.QUEUE,
    ConcurrencyPolicy.ALLOW,
    ConcurrencyPolicy.FORBID,
    ConcurrencyPolicy.REPLACE,
)


def waiting(name: str, minute: int = 0, priority: int = 0) -> Candidate:
    return Candidate(
        uid=name,
        name=name,
        created=f"2026-01-01T00:{minute:02d}:00Z",
        priority=priority,
        waiting=True,
    )


def active(name: str, minute: int = 0) -> Candidate:
    return Candidate(
        uid=name, name=name, created=f"2026-01-01T00:{minute:02d}:00Z", holds_slot=True
    )


def ending(name: str) -> Candidate:
    """Ended by the operator, its pods still stopping."""
    return Candidate(uid=name, name=name, created="2026-01-01T00:00:00Z", ending=True)


def ended(name: str) -> Candidate:
    return Candidate(uid=name, name=name, created="2026-01-01T00:00:00Z")


def test_queue_order_is_priority_then_age_then_name() -> None:
    runs = [
        waiting("old-low", 0, 0),
        waiting("new-high", 5, 5),
        waiting("old-high", 1, 5),
        waiting("new-low", 9, 0),
        waiting("b-same", 9, 0),
    ]
    assert [r.name for r in queue_order(runs)] == [
        "old-high",
        "new-high",
        "old-low",
        "b-same",
        "new-low",
    ]


@pytest.mark.parametrize(
    ("policy", "max_runs", "runs", "unknown_jobs", "expected"),
    [
        # Queue: free slots go in priority-then-age order; the rest wait, 1 = next.
        (QUEUE, 1, [waiting("a", 1), waiting("b", 2)], 0, Plan(start=["a"], positions={"b": 1})),
        (
            QUEUE,
            1,
            [active("x"), waiting("a", 1), waiting("b", 2)],
            0,
            Plan(positions={"a": 1, "b": 2}),
        ),
        (
            QUEUE,
            3,
            [active("x"), waiting("a", 1), waiting("b", 2), waiting("c", 3)],
            0,
            Plan(start=["a", "b"], positions={"c": 1}),
        ),
        (
            QUEUE,
            2,
            [waiting("low", 1), waiting("high", 2, priority=9), waiting("mid", 3, 5)],
            0,
            Plan(start=["high", "mid"], positions={"low": 1}),
        ),
        # Ended runs hold nothing; Jobs of unknown runs (after a restart) hold slots.
        (QUEUE, 1, [ended("done"), waiting("a", 1)], 0, Plan(start=["a"])),
        (QUEUE, 2, [waiting("a", 1), waiting("b", 2)], 1, Plan(start=["a"], positions={"b": 1})),
        (QUEUE, 1, [active("x"), active("y"), waiting("a", 1)], 0, Plan(positions={"a": 1})),
        # Forbid: what does not fit ends.
        (FORBID, 1, [active("x"), waiting("a", 1)], 0, Plan(forbid=["a"])),
        (
            FORBID,
            2,
            [active("x"), waiting("a", 1), waiting("b", 2)],
            0,
            Plan(start=["a"], forbid=["b"]),
        ),
        # Replace: the oldest active and older waiting runs make room for the newest,
        # which starts once the replaced run's pods have stopped (never two at once).
        (
            REPLACE,
            1,
            [active("x", 0), waiting("a", 1)],
            0,
            Plan(positions={"a": 1}, replace={"x": "a"}),
        ),
        (
            REPLACE,
            1,
            [active("x", 0), waiting("a", 1), waiting("b", 2)],
            0,
            Plan(positions={"b": 1}, replace={"x": "b", "a": "b"}),
        ),
        (
            REPLACE,
            2,
            [active("x", 0), active("y", 1), waiting("a", 2)],
            0,
            Plan(positions={"a": 1}, replace={"x": "a"}),
        ),
        (REPLACE, 2, [active("x", 0), waiting("a", 2)], 0, Plan(start=["a"])),
        # A waiting run older than the active one never replaces it: it is superseded
        # (a burst under operator restarts once ended both runs, each "replaced" by the
        # other, when the older run's end had not reached the cache yet).
        (REPLACE, 1, [active("y", 2), waiting("a", 1)], 0, Plan(replace={"a": "y"})),
        (
            REPLACE,
            2,
            [active("x", 0), active("y", 3), waiting("a", 1), waiting("b", 2)],
            0,
            Plan(positions={"b": 1}, replace={"x": "b", "a": "y"}),
        ),
        (REPLACE, 1, [ending("x"), waiting("a", 1)], 0, Plan(positions={"a": 1})),
        (REPLACE, 1, [ended("x"), waiting("a", 1)], 0, Plan(start=["a"])),
        # A run the operator ended holds its slot until its pods have stopped.
        (QUEUE, 1, [ending("x"), waiting("a", 1)], 0, Plan(positions={"a": 1})),
    ],
)
def test_plan(
    policy: ConcurrencyPolicy,
    max_runs: int,
    runs: list[Candidate],
    unknown_jobs: int,
    expected: Plan,
) -> None:
    assert plan(policy, max_runs, runs, unknown_jobs) == expected


def test_allow_starts_every_run_without_a_plan() -> None:
    assert verdict_without_plan(ALLOW) == Verdict(Admission.START)
    for policy in (QUEUE, FORBID, REPLACE):
        assert verdict_without_plan(policy) is None
    with pytest.raises(ValueError, match="Allow"):
        plan(ALLOW, 1, [waiting("a")])


def api_run(
    phase: str | None = None, reason: str | None = None, job_name: str | None = None, **spec: Any
) -> dict[str, Any]:
    status = {"phase": phase, "reason": reason, "jobName": job_name}
    return {
        "metadata": {"uid": "u", "name": "r", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"pipelineRef": {"name": "p"}, **spec},
        "status": {k: v for k, v in status.items() if v},
    }


JOB = {"metadata": {"uid": "j"}, "status": {}}
FINISHED_JOB = {
    "metadata": {"uid": "j"},
    "status": {"conditions": [{"type": "Failed", "status": "True"}]},
}
RUNNING_POD = {"spec": {"containers": [{"name": "main"}]}, "status": {"phase": "Running"}}
DONE_POD = {"spec": {"containers": [{"name": "main"}]}, "status": {"phase": "Failed"}}


@pytest.mark.parametrize(
    ("run", "job", "pods", "admitted", "slot"),
    [
        # (holds_slot, waiting, ending)
        (api_run(), None, [], False, (False, True, False)),  # new: waits
        (api_run(), None, [], True, (True, False, False)),  # admitted, Job not created yet
        (api_run(stopped=True), None, [], False, (False, False, False)),  # stopped first
        (api_run("QUEUED", job_name="r"), JOB, [], False, (True, False, False)),
        (api_run("RUNNING", job_name="r"), JOB, [RUNNING_POD], False, (True, False, False)),
        # Its Job finished (the slot is free before the run's status says so).
        (api_run("RUNNING", job_name="r"), FINISHED_JOB, [DONE_POD], False, (False, False, False)),
        # Its Job was deleted by someone: it does not wait for a new one.
        (api_run("RUNNING", job_name="r"), None, [], False, (False, False, False)),
        # Ended by the operator while its pod or Job still stops: it holds the slot until
        # then (the Job, deleted in the foreground, goes after its pods; a pod just made
        # may not be cached yet: a burst under restarts once ran two Replace runs so).
        (api_run("STOPPED", "Replaced", "r"), JOB, [RUNNING_POD], False, (False, False, True)),
        (api_run("STOPPED", "Replaced", "r"), JOB, [], False, (False, False, True)),
        (api_run("STOPPED", "Replaced", "r"), JOB, [DONE_POD], False, (False, False, True)),
        (api_run("STOPPED", "Replaced", "r"), None, [DONE_POD], False, (False, False, False)),
        (
            api_run("STOPPED", "Replaced", "r"),
            FINISHED_JOB,
            [DONE_POD],
            False,
            (False, False, False),
        ),
        # Ended by its own pod: nothing to wait for, once that pod has ended; a pod that
        # has not may still run, whatever ended the run (a deadline, a Job deleted).
        (api_run("ERROR", "Failed", "r"), JOB, [DONE_POD], False, (False, False, False)),
        (api_run("ERROR", "Failed", "r"), JOB, [RUNNING_POD], False, (False, False, True)),
    ],
)
def test_slot_state_of_a_run(
    run: dict[str, Any],
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    admitted: bool,
    slot: tuple[bool, bool, bool],
) -> None:
    found = candidate_of(run, job, pods, admitted)
    assert (found.holds_slot, found.waiting, found.ending) == slot


def test_forbid_check_before_a_run_is_created_counts_the_operators_slots() -> None:
    assert forbidden_by(1, [waiting("a")]) is None
    assert forbidden_by(2, [active("x")]) is None
    assert forbidden_by(1, [active("x")]) == ["x"]
    # A run ended by the operator whose pod still stops holds its slot; a Job whose run is
    # not known yet too.
    assert forbidden_by(2, [active("x"), ending("y")]) == ["x", "y"]
    assert forbidden_by(1, [], unknown_jobs=1) == []


def test_a_burst_never_exceeds_the_limit() -> None:
    runs = [waiting(f"r{i:03d}", i % 60, priority=i % 3) for i in range(300)]
    first = plan(QUEUE, 5, runs)
    assert len(first.start) == 5
    assert sorted(first.positions.values()) == list(range(1, 296))
    started = set(first.start)
    again = [active(r.name) if r.uid in started else r for r in runs]
    assert plan(QUEUE, 5, again).start == []


def test_new_runs_always_show_a_position_and_stale_ones_refresh_nearest_first() -> None:
    shown: dict[str, int | None] = {"a": 3, "b": 4, "c": 5, "new": None}
    actual = {"a": 1, "b": 2, "c": 3, "new": 4}
    assert positions_to_show(shown, actual, budget=1) == {"new": 4, "a": 1}
    assert positions_to_show(shown, actual, budget=0) == {"new": 4}
    assert positions_to_show({"a": 1}, {"a": 1}, budget=5) == {}


def _run(phase: str, reason: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": "old", "name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {},
        "status": {"phase": phase, "reason": reason, "jobName": "old"},
    }


@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        ("STOPPED", "DeadlineExceeded"),  # the Job controller's deadline, pod in its grace
        ("ERROR", "Failed"),  # its Job deleted by someone else, its pod terminating
        ("COMPLETE", "Completed"),
        ("STOPPING", "DeadlineExceeded"),
    ],
)
def test_a_run_whose_pod_has_not_ended_holds_its_slot_whatever_its_phase(
    phase: str, reason: str
) -> None:
    finished = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    pod = {
        "metadata": {"deletionTimestamp": "2026-01-01T00:01:00Z"},
        "status": {"phase": "Running"},
    }
    old = candidate_of(_run(phase, reason), finished, [pod], admitted=False)
    assert plan(QUEUE, 1, [old, waiting("new", 5)]).start == []
    pod["status"]["phase"] = "Failed"
    old = candidate_of(_run(phase, reason), finished, [pod], admitted=False)
    assert plan(QUEUE, 1, [old, waiting("new", 5)]).start == ["new"]
