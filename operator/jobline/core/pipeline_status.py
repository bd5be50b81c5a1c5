"""A Pipeline's sync, decided (`decide_pipeline`): the run its schedule makes, the
verdicts of admission, what its status says of its runs (the API's JSON), which finished
runs its history no longer keeps, and when to look again. Pure: no API calls, no clock
of its own."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from jobline.core.admission import (
    Admission,
    Candidate,
    Verdict,
    plan,
    positions_to_show,
)
from jobline.core.clock import format_time, parse_time
from jobline.core.schedule import InvalidSchedule, InvalidTimeZone, decide, parse_schedule
from jobline.models import (
    ConcurrencyPolicy,
    Condition,
    LastRun,
    Phase,
    Pipeline,
    PipelineStatus,
    drop_empty,
    to_json,
)

Run = dict[str, Any]
Obj = dict[str, Any]


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


# --- a Pipeline's sync, decided -----------------------------------------------------------

# Run changes come in bursts: a Pipeline's status (a summary for people) is written at
# most this often, but for a spec change or a new scheduled run, written at once.
STATUS_INTERVAL = 5.0
# Queue positions of waiting runs shift whenever one starts; refresh at most this many
# per second per Pipeline (nearest the head first), beyond each run's first.
POSITION_REFRESH_RATE = 0.2
ACTIVE = (Phase.RUNNING.value, Phase.STOPPING.value)


# A scheduled run the apiserver refused (a quota, a policy webhook) is tried again this
# long after; meanwhile the rest of the Pipeline's sync goes on.
RUN_RETRY_SECONDS = 30.0
SCHEDULE_BLOCKED = "ScheduleBlocked"


@dataclass(frozen=True)
class RunRefusal:
    """The apiserver refused the scheduled run due at `scheduled`, saying `message`; it is
    tried again in `retry_in` seconds."""

    scheduled: dt.datetime
    message: str
    retry_in: float


@dataclass(frozen=True)
class PipelineSeen:
    """What a Pipeline's sync observes: the Pipeline as stored (and as a model, or why
    not), its runs (with each one's slot state, for admission), and what this process
    did for it lately."""

    raw: Run
    pipeline: Pipeline | None  # None: the model rejects what the CRD's schema let through
    pipeline_error: str | None
    runs: list[Run]
    candidates: list[Candidate] = field(default_factory=list)  # one per run, Allow: none
    unknown_jobs: int = 0  # Jobs holding a slot with no run known
    shown_positions: dict[str, int | None] = field(default_factory=dict)  # by run UID
    position_refresh: bool = True  # the budget allows rewriting one stale position now
    skipped_reported: dt.datetime | None = None  # the missed run last reported
    status_written_ago: float | None = None  # seconds since this process wrote its status
    refusal: RunRefusal | None = None  # the latest scheduled run the apiserver refused


@dataclass
class PipelineDecision:
    status: Obj  # the status to hold (API JSON)
    write: bool  # write it now (it changed, and the write is due)
    create_run_for: dt.datetime | None = None  # a scheduled run due now
    skipped: dt.datetime | None = None  # a missed run to report, once
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # by run UID
    used_position_refresh: bool = False
    delete: list[Run] = field(default_factory=list)  # beyond the history: after the rest
    look_again_in: float | None = None  # seconds, for what time alone will change


def decide_pipeline(seen: PipelineSeen, now: dt.datetime) -> PipelineDecision:
    """Everything a Pipeline's sync does, decided from what it observed: the run due on its
    schedule, the verdicts of admission, the status, the runs its history no longer keeps
    and when to look again. Pure: the caller acts on it."""
    raw, pipeline = seen.raw, seen.pipeline
    current = PipelineStatus.model_validate(raw.get("status") or {})
    status = current.model_copy(deep=True)
    decision = PipelineDecision(status={}, write=False)
    later: list[float] = []
    runs = seen.runs
    blocked: Condition | None = None
    if pipeline is None:
        error = seen.pipeline_error or "the spec cannot be read"
        reason = "InvalidTemplate" if error.startswith("spec.template") else "InvalidSpec"
        ready = Condition(
            type="Ready", status="False", reason=reason, message=f"{error}; fix the Pipeline"
        )
        status.next_schedule_time = None
    else:
        spec = pipeline.spec
        ready, blocked = _schedule(seen, status, decision, later, now)
        decision.delete = history_to_delete(
            runs, spec.history.successful_runs, spec.history.failed_runs
        )
        gone = {r["metadata"]["uid"] for r in decision.delete}
        runs = [r for r in runs if r["metadata"]["uid"] not in gone]
        if spec.concurrency_policy != ConcurrencyPolicy.ALLOW:
            candidates = [c for c in seen.candidates if c.uid not in gone]
            _admit(seen, spec.concurrency_policy, spec.max_concurrent_runs, candidates, decision)
            if decision.look_again_in is not None:
                later.append(decision.look_again_in)
    _summarise(raw, current, status, ready, blocked, runs, now)
    decision.status = to_json(status)
    if drop_empty(decision.status) != drop_empty(raw.get("status") or {}):
        at_once = (
            status.observed_generation != current.observed_generation
            or status.last_schedule_time != current.last_schedule_time
        )
        wait = 0.0
        if seen.status_written_ago is not None and not at_once:
            wait = STATUS_INTERVAL - seen.status_written_ago
        if wait > 0:
            later.append(wait)
        else:
            decision.write = True
    decision.look_again_in = min(later, default=None)
    return decision


def _schedule(
    seen: PipelineSeen,
    status: PipelineStatus,
    decision: PipelineDecision,
    later: list[float],
    now: dt.datetime,
) -> tuple[Condition, Condition | None]:
    """The run due now on the schedule, if any, and a missed one to report; returns the
    Ready condition, and ScheduleBlocked when a due run was refused (True) or is being
    made again (False)."""
    assert seen.pipeline is not None
    spec = seen.pipeline.spec
    ready = Condition(type="Ready", status="True", reason="Valid", message="the spec is valid")
    status.next_schedule_time = None
    if not spec.schedule:
        return ready, None
    try:
        schedule = parse_schedule(spec.schedule, spec.time_zone)
    except (InvalidSchedule, InvalidTimeZone) as e:
        return Condition(type="Ready", status="False", reason=e.reason, message=str(e)), None
    created = parse_time(seen.raw["metadata"]["creationTimestamp"]) or now
    due = decide(schedule, now, status.last_schedule_time, created, spec.starting_deadline_seconds)
    if spec.suspend:
        return ready, None
    status.next_schedule_time = due.next_time
    blocked = None
    refused = seen.refusal
    if due.create and refused and refused.scheduled == due.create and refused.retry_in > 0:
        # Still due, not recorded as made: tried again once the retry is due.
        blocked = Condition(
            type=SCHEDULE_BLOCKED,
            status="True",
            reason="RunRefused",
            message=f"the run due at {format_time(due.create)} was refused: {refused.message}"
            f"; tried again every {RUN_RETRY_SECONDS:.0f} s",
        )
        later.append(max(1.0, refused.retry_in))
    elif due.create:
        decision.create_run_for = status.last_schedule_time = due.create
        blocked = Condition(type=SCHEDULE_BLOCKED, status="False", reason="RunCreated")
    elif due.skipped and seen.skipped_reported != due.skipped:
        decision.skipped = due.skipped
    later.append(max(1.0, (due.next_time - now).total_seconds()))
    return ready, blocked


def _admit(
    seen: PipelineSeen,
    policy: ConcurrencyPolicy,
    max_runs: int,
    candidates: list[Candidate],
    decision: PipelineDecision,
) -> None:
    """The verdicts of one admission pass over the Pipeline's runs, and the queue positions
    worth writing now (one stale position per refresh the budget allows)."""
    decided = plan(policy, max_runs, candidates, seen.unknown_jobs)
    verdicts = decision.verdicts
    verdicts.update({uid: Verdict(Admission.START) for uid in decided.start})
    verdicts.update({uid: Verdict(Admission.FORBID) for uid in decided.forbid})
    verdicts.update(
        {uid: Verdict(Admission.REPLACE, by=newer) for uid, newer in decided.replace.items()}
    )
    shown = {uid: seen.shown_positions.get(uid) for uid in decided.positions}
    stale = any(shown[uid] not in (None, pos) for uid, pos in decided.positions.items())
    decision.used_position_refresh = stale and seen.position_refresh
    chosen = positions_to_show(shown, decided.positions, int(decision.used_position_refresh))
    verdicts.update({uid: Verdict(Admission.WAIT, pos) for uid, pos in chosen.items()})
    if any(shown.get(uid) != pos for uid, pos in decided.positions.items() if uid not in chosen):
        decision.look_again_in = 1 / POSITION_REFRESH_RATE  # the rest, later


def _summarise(
    raw: Run,
    current: PipelineStatus,
    status: PipelineStatus,
    ready: Condition,
    blocked: Condition | None,
    runs: list[Run],
    now: dt.datetime,
) -> None:
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
    # Shown once a scheduled run was refused, and kept (False) after: a refusal that comes
    # and goes is history worth a glance.
    shown_before = next((c for c in current.conditions if c.type == SCHEDULE_BLOCKED), None)
    if blocked is not None and (blocked.status == "True" or shown_before is not None):
        status.conditions.append(blocked.transitioned_from(current.conditions, now))
    elif shown_before is not None:
        status.conditions.append(shown_before)
    status.active_runs = sorted(r["metadata"]["name"] for r in runs if phase_of(r) in ACTIVE)
    status.active_count = len(status.active_runs)
    status.queued_runs = sum(1 for r in runs if phase_of(r) in (None, Phase.QUEUED.value))
    status.last_run = last_run(runs)
    status.last_successful_time = last_successful_time(runs, current.last_successful_time)
