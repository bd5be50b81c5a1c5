"""Pipeline-level decisions over its runs (the API's JSON): who may start, what
history to trim, and the Pipeline's status. Pure: no API calls, no clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from jobline.core.status import ENDED_BY_OPERATOR
from jobline.models import TERMINAL_PHASES, ConcurrencyPolicy, LastRun, Phase

Run = dict[str, Any]


def phase_of(run: Run) -> str | None:
    phase: str | None = (run.get("status") or {}).get("phase")
    return phase


def holds_slot(run: Run, has_unfinished_job: bool) -> bool:
    """A run holds one of its Pipeline's slots while its Job is not finished, unless the
    operator ended the run (stopped, replaced, ...) and is deleting that Job."""
    status = run.get("status") or {}
    ended_by_operator = (
        phase_of(run) in TERMINAL_PHASES and status.get("reason") in ENDED_BY_OPERATOR
    )
    return has_unfinished_job and not ended_by_operator


def waiting(run: Run, has_job: bool) -> bool:
    return (
        not has_job
        and not run["spec"].get("stopped")
        and phase_of(run) in (None, Phase.QUEUED.value)
    )


def queue_order(runs: list[Run]) -> list[Run]:
    """Higher priority first, then older creation time (then name, for a total order)."""
    return sorted(
        runs,
        key=lambda r: (
            -int(r["spec"].get("priority", 0)),
            r["metadata"]["creationTimestamp"],
            r["metadata"]["name"],
        ),
    )


@dataclass(frozen=True)
class Admission:
    start: bool = False
    queue_position: int | None = None  # while waiting; 1 = next
    forbidden: bool = False
    replace: list[Run] = field(default_factory=list)  # active runs to stop first


def admit(
    run: Run,
    policy: ConcurrencyPolicy,
    max_runs: int,
    active: list[Run],
    queued: list[Run],
) -> Admission:
    """Whether `run` (one of `queued`) may start, given the runs holding slots."""
    if policy == ConcurrencyPolicy.ALLOW:
        return Admission(start=True)
    free = max(0, max_runs - len(active))
    order = queue_order(queued)
    uid = run["metadata"]["uid"]
    index = next((i for i, r in enumerate(order) if r["metadata"]["uid"] == uid), len(order))
    if index < free:
        return Admission(start=True)
    if policy == ConcurrencyPolicy.FORBID:
        return Admission(forbidden=True)
    if policy == ConcurrencyPolicy.REPLACE:
        oldest_first = sorted(active, key=lambda r: r["metadata"]["creationTimestamp"])
        return Admission(start=True, replace=oldest_first[: len(active) - max_runs + 1])
    return Admission(queue_position=index - free + 1)


def history_to_delete(runs: list[Run], successful_runs: int, failed_runs: int) -> list[Run]:
    """Finished runs beyond the Pipeline's history limits, oldest first."""

    def finished_order(r: Run) -> tuple[str, str]:
        status = r.get("status") or {}
        return status.get("endTime") or r["metadata"]["creationTimestamp"], r["metadata"]["name"]

    successful = [r for r in runs if phase_of(r) == Phase.COMPLETE.value]
    failed = [r for r in runs if phase_of(r) in (Phase.ERROR.value, Phase.STOPPED.value)]
    doomed = []
    for group, keep in ((successful, successful_runs), (failed, failed_runs)):
        ordered = sorted(group, key=finished_order)
        doomed += ordered[: max(0, len(ordered) - keep)]
    return sorted(doomed, key=finished_order)


def last_run(runs: list[Run]) -> LastRun | None:
    if not runs:
        return None
    newest = max(runs, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))
    status = newest.get("status") or {}
    return LastRun.model_validate(
        {
            "name": newest["metadata"]["name"],
            "phase": status.get("phase"),
            "exitCode": status.get("exitCode"),
            "startTime": status.get("startTime"),
            "endTime": status.get("endTime"),
        }
    )


def last_successful_time(runs: list[Run], known: dt.datetime | None) -> dt.datetime | None:
    """The latest end of a COMPLETE run; kept after history deletes that run."""
    times = [
        dt.datetime.fromisoformat(r["status"]["endTime"].replace("Z", "+00:00"))
        for r in runs
        if phase_of(r) == Phase.COMPLETE.value and r["status"].get("endTime")
    ]
    if known:
        times.append(known)
    return max(times, default=None)
