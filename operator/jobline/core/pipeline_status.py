"""What a Pipeline's status says of its runs (the API's JSON), and which finished runs
its history no longer keeps. Pure: no API calls, no clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobline.core.clock import parse_time
from jobline.models import LastRun, Phase

Run = dict[str, Any]


def phase_of(run: Run) -> str | None:
    phase: str | None = (run.get("status") or {}).get("phase")
    return phase


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
        ended
        for r in runs
        if phase_of(r) == Phase.COMPLETE.value
        and (ended := parse_time(r["status"].get("endTime"))) is not None
    ]
    if known:
        times.append(known)
    return max(times, default=None)
