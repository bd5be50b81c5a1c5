"""Admission: which runs of one Pipeline start, wait, are forbidden or are replaced.

One pass over the Pipeline's runs decides for all of them (`plan`), so that runs
never compete with each other for a slot: the reconciler calls it from the
Pipeline's own sync, one at a time per Pipeline, and holds no lock across an
API call. Pure: no API calls, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobline.models import ConcurrencyPolicy


@dataclass(frozen=True)
class Candidate:
    """A run as admission sees it."""

    uid: str
    name: str
    created: str  # creationTimestamp (RFC 3339 sorts as text)
    priority: int = 0
    holds_slot: bool = False  # admitted, or its Job's pods may still run, and not ended
    waiting: bool = False  # no Job, not admitted, not stopped, not ended
    # Ended by the operator (replaced, stopped, ...) while its pods still stop: it holds
    # its slot until they have, but cannot be replaced again.
    ending: bool = False


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)  # UIDs, in the order they were chosen
    positions: dict[str, int] = field(default_factory=dict)  # waiting UID -> 1 = next
    forbid: list[str] = field(default_factory=list)
    replace: dict[str, str] = field(default_factory=dict)  # active UID -> the newer run's name


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
    never lets more than `max_runs` run."""
    waiting = [r for r in runs if r.waiting]
    if policy == ConcurrencyPolicy.ALLOW:
        return Plan(start=[r.uid for r in queue_order(waiting)])
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
    newest_first = sorted(waiting, key=lambda r: (r.created, r.name), reverse=True)
    starting, superseded = newest_first[:max_runs], newest_first[max_runs:]
    newest = starting[0].name if starting else ""
    now, later = starting[:free], starting[free:]
    result = Plan(
        start=[r.uid for r in reversed(now)],
        positions={r.uid: i for i, r in enumerate(reversed(later), start=1)},
    )
    replaceable = sorted((r for r in active if not r.ending), key=lambda r: (r.created, r.name))
    for victim in replaceable[: max(0, len(later) - _ending(active))]:
        result.replace[victim.uid] = newest
    for old in superseded:
        result.replace[old.uid] = newest
    return result


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
