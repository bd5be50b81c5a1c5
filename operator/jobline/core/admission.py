"""Admission: which runs of one Pipeline start, wait, are forbidden or are replaced.

Everything about slots lives here: what a run is to admission (`candidate_of`:
holding a slot, waiting for one, or ending while its pods stop), the one pass
over a Pipeline's runs that decides for all of them (`plan`), so that runs never
compete with each other for a slot, the verdicts it hands to each run's sync
(`Verdict`, kept in `Admissions`), and the check that `jobline start` and the
Jobs API make before creating a run of a Forbid Pipeline (`forbidden_by`).

The Pipeline controller calls `plan` from the Pipeline's own sync, one at a time
per Pipeline, holding no lock across an API call. Allow needs no pass: every
run starts (`verdict_without_plan`). Pure: no API calls, no clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from jobline.core.workload import RUN_KIND, controller_key, ended, job_finished
from jobline.models import ENDED_BY_OPERATOR, TERMINAL_PHASES, ConcurrencyPolicy

Obj = dict[str, Any]


class Admission(Enum):
    """What admission decided for a run that has no Job yet."""

    START = "start"
    WAIT = "wait"
    FORBID = "forbid"
    REPLACE = "replace"  # an active run, replaced by a newer one


@dataclass(frozen=True)
class Verdict:
    admission: Admission
    position: int | None = None  # while waiting: 1 = next
    by: str = ""  # for REPLACE: the newer run


def verdict_without_plan(policy: ConcurrencyPolicy) -> Verdict | None:
    """The verdict every run of a Pipeline gets without waiting for its Pipeline's pass:
    under Allow, runs never wait for one another."""
    return Verdict(Admission.START) if policy == ConcurrencyPolicy.ALLOW else None


class Admissions:
    """The verdicts of the latest passes, by run UID, read by each run's sync."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[str, Verdict] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._verdicts)

    def get(self, uid: str) -> Verdict | None:
        with self._lock:
            return self._verdicts.get(uid)

    def set(self, uid: str, verdict: Verdict) -> bool:
        """Records a verdict; False when it was already the run's."""
        with self._lock:
            if self._verdicts.get(uid) == verdict:
                return False
            self._verdicts[uid] = verdict
            return True

    def admitted(self, uid: str) -> bool:
        verdict = self.get(uid)
        return verdict is not None and verdict.admission == Admission.START

    def forget(self, uid: str) -> None:
        with self._lock:
            self._verdicts.pop(uid, None)


@dataclass(frozen=True)
class Candidate:
    """A run as admission sees it."""

    uid: str
    name: str
    created: str  # creationTimestamp (RFC 3339 sorts as text)
    priority: int = 0
    holds_slot: bool = False  # admitted, or its Job's pods may still run, and not ended
    waiting: bool = False  # no Job, not admitted, not stopped, not ended
    # Ended by the operator (replaced, stopped, ...) while its Job or pods still stop: it
    # holds its slot until they have, but cannot be replaced again.
    ending: bool = False


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)  # UIDs, in the order they were chosen
    positions: dict[str, int] = field(default_factory=dict)  # waiting UID -> 1 = next
    forbid: list[str] = field(default_factory=list)
    replace: dict[str, str] = field(default_factory=dict)  # active UID -> the newer run's name


def candidate_of(run: Obj, job: Obj | None, pods: list[Obj], admitted: bool) -> Candidate:
    """A run (API JSON) as admission sees it, from its own Job (if any), that Job's pods
    and whether the latest pass admitted it."""
    meta, spec, status = run["metadata"], run["spec"], run.get("status") or {}
    terminal = status.get("phase") in TERMINAL_PHASES
    has_job = job is not None or bool(status.get("jobName"))
    # A pod that has not ended may still run, whatever the run's phase says (a deadline's
    # stop, a Job deleted by someone else, a restart): the slot is its until it has.
    pods_live = any(not ended(p) for p in pods)
    return Candidate(
        uid=meta["uid"],
        name=meta["name"],
        created=meta["creationTimestamp"],
        priority=int(spec.get("priority", 0)),
        holds_slot=not terminal
        and (admitted or pods_live or (job is not None and not job_finished(job))),
        waiting=not terminal and not has_job and not admitted and not spec.get("stopped"),
        # Ended by the operator, its unfinished Job counts too: the Job is deleted in the
        # foreground, so it goes only after its pods, and a pod the Job controller just
        # made may not be cached yet.
        ending=terminal
        and (
            pods_live
            or (
                status.get("reason") in ENDED_BY_OPERATOR
                and job is not None
                and not job_finished(job)
            )
        ),
    )


def unknown_jobs(jobs: list[Obj], run_known: Callable[[Obj], bool]) -> int:
    """How many of a Pipeline's Jobs hold a slot with no run known to hold it: unfinished
    Jobs whose controller is a PipelineJob not known (yet, right after a restart; or being
    deleted). `run_known(job)` says whether the run its reference names is known. A Job
    that merely carries the Pipeline's label, with no PipelineJob as its controller, holds
    none: the operator would never act on it."""
    count = 0
    for job in jobs:
        owner = controller_key(job)
        if owner is not None and owner[1:3] == RUN_KIND and not job_finished(job):
            count += not run_known(job)
    return count


def forbidden_by(max_runs: int, runs: list[Candidate], unknown_jobs: int = 0) -> list[str] | None:
    """Under Forbid, the names of the runs holding every slot when a new run would be
    forbidden at once, else None: what `jobline start` and the Jobs API check before they
    create a run, with the same idea of a slot as the operator's."""
    holding = [r for r in runs if r.holds_slot or r.ending]
    if len(holding) + unknown_jobs < max_runs:
        return None
    return sorted(r.name for r in holding)


def queue_order(runs: list[Candidate]) -> list[Candidate]:
    """Higher priority first, then older, then by name (a total order)."""
    return sorted(runs, key=lambda r: (-r.priority, r.created, r.name))


def plan(
    policy: ConcurrencyPolicy,
    max_runs: int,
    runs: list[Candidate],
    unknown_jobs: int = 0,
) -> Plan:
    """Decides for every waiting run of a Pipeline. `unknown_jobs` counts unfinished Jobs
    of the Pipeline whose run is not known (yet): they hold slots too, so that a restart
    never lets more than `max_runs` run. Not for Allow: see `verdict_without_plan`."""
    if policy == ConcurrencyPolicy.ALLOW:
        raise ValueError("Allow admits every run without a plan")
    waiting = [r for r in runs if r.waiting]
    active = [r for r in runs if r.holds_slot or r.ending]
    free = max(0, max_runs - len(active) - unknown_jobs)
    if policy == ConcurrencyPolicy.REPLACE:
        return _replace(max_runs, waiting, active, free)
    order = queue_order(waiting)
    result = Plan(start=[r.uid for r in order[:free]])
    rest = order[free:]
    if policy == ConcurrencyPolicy.FORBID:
        result.forbid = [r.uid for r in rest]
    else:
        result.positions = {r.uid: i for i, r in enumerate(rest, start=1)}
    return result


def _replace(max_runs: int, waiting: list[Candidate], active: list[Candidate], free: int) -> Plan:
    """The newest runs take the slots; the oldest active ones make room; older waiting
    runs that can never start (newer ones take every slot) are replaced before they
    begin. A newcomer starts once a slot is free (the replaced run's pods have stopped),
    so that two runs never overlap; meanwhile it waits first in line."""
    replaceable = sorted((r for r in active if not r.ending), key=_age)
    # The newest runs, active or waiting, are the ones that run: a waiting run older
    # than the active runs that hold the slots never displaces one of them (a waiting
    # run's end can reach the cache after a newer run started) but is superseded.
    contenders = sorted([*waiting, *replaceable], key=_age, reverse=True)
    starting = [r for r in contenders[:max_runs] if r.waiting]
    chosen = {r.uid for r in starting}
    superseded = [r for r in waiting if r.uid not in chosen]
    now, later = starting[:free], starting[free:]
    result = Plan(
        start=[r.uid for r in reversed(now)],
        positions={r.uid: i for i, r in enumerate(reversed(later), start=1)},
    )
    for victim in replaceable[: max(0, len(later) - _ending(active))]:
        result.replace[victim.uid] = starting[0].name
    for old in superseded:
        result.replace[old.uid] = contenders[0].name
    return result


def _age(run: Candidate) -> tuple[str, str]:
    return run.created, run.name


def _ending(active: list[Candidate]) -> int:
    return sum(1 for r in active if r.ending)


def positions_to_show(
    shown: dict[str, int | None], actual: dict[str, int], budget: int
) -> dict[str, int]:
    """The queue positions worth writing now: every run not showing one yet, and up to
    `budget` runs whose shown position is out of date, nearest the head first. Positions
    move for every waiting run whenever one starts; rewriting them all would cost a
    status write per waiting run per start."""
    chosen = {uid: pos for uid, pos in actual.items() if shown.get(uid) is None}
    stale = sorted(
        (pos, uid) for uid, pos in actual.items() if uid not in chosen and shown.get(uid) != pos
    )
    chosen.update({uid: pos for pos, uid in stale[:budget]})
    return chosen
