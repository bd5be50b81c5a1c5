"""What Kueue says of a run's Job, read from its Workload (the API's JSON): whether Kueue
holds the Job and why, in Kueue's own words, and what it did with it before.

Kueue admits a Job labelled with a LocalQueue: it keeps the Job suspended until the
LocalQueue's ClusterQueue has quota for it, then unsuspends it; to preempt or evict it,
it suspends it again (the Job controller deletes its pods) and queues it anew.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from jobline.core.clock import parse_time
from jobline.models import LABEL_KUEUE_QUEUE, KueueStatus, Reason

Obj = dict[str, Any]


@dataclass(frozen=True)
class Held:
    """Kueue holds the run's Job: why, in a word and in Kueue's words."""

    reason: Reason
    message: str


def suspended(job: Obj) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def queue_of(job: Obj) -> str | None:
    """The LocalQueue the Job is labelled with, if any."""
    return (job["metadata"].get("labels") or {}).get(LABEL_KUEUE_QUEUE)


def condition(workload: Obj | None, kind: str) -> Obj | None:
    for cond in ((workload or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def evictions(workload: Obj | None) -> int:
    """How often Kueue evicted the Workload after admitting it, for any reason."""
    stats = ((workload or {}).get("status") or {}).get("schedulingStats") or {}
    return sum(int(e.get("count") or 0) for e in stats.get("evictions") or [])


def held(job: Obj, workload: Obj | None) -> Held:
    """Why the suspended Job waits, as its Workload says."""
    queue = queue_of(job)
    where = f"LocalQueue {queue}" if queue else "Kueue's default LocalQueue"
    if workload is None and queue is None:
        return Held(
            Reason.WAITING_FOR_ADMISSION,
            "the Job is suspended (spec.suspend): its pod starts once it is resumed, by "
            "Kueue where Kueue manages the namespace's Jobs",
        )
    if workload is None:
        return Held(
            Reason.WAITING_FOR_ADMISSION,
            f"the Job is suspended, waiting for Kueue to admit it to {where} "
            "(Kueue has not made its Workload yet)",
        )
    reserved = condition(workload, "QuotaReserved")
    waiting = ""
    if reserved is not None and reserved.get("status") == "False" and reserved.get("message"):
        waiting = str(reserved["message"])
    evicted = condition(workload, "Evicted")
    if evicted is not None and evicted.get("status") == "True":
        preempted = evicted.get("reason") == "Preempted"
        what = "preempted" if preempted else "evicted"
        message = f"Kueue {what} the run ({evicted.get('message') or evicted.get('reason')})"
        message += "; waiting to be admitted again" + (f": {waiting}" if waiting else "")
        return Held(Reason.PREEMPTED if preempted else Reason.EVICTED, message)
    if reserved is not None and reserved.get("status") == "False":
        if reserved.get("reason") == "Inadmissible":
            return Held(
                Reason.INADMISSIBLE,
                f"Kueue cannot admit the run: {waiting}; create the LocalQueue (and its "
                "ClusterQueue), or fix the Pipeline's spec.kueue.localQueue",
            )
        message = f"waiting for Kueue to admit it to {where}" + (f": {waiting}" if waiting else "")
        return Held(Reason.WAITING_FOR_ADMISSION, message)
    if reserved is not None and reserved.get("status") == "True":
        return Held(
            Reason.WAITING_FOR_ADMISSION,
            f"Kueue admitted it ({reserved.get('message') or 'quota reserved'}); "
            "the Job is about to start",
        )
    return Held(Reason.WAITING_FOR_ADMISSION, f"waiting for Kueue to admit it to {where}")


def status_of(workload: Obj | None, previous: KueueStatus | None) -> KueueStatus | None:
    """The run's status.kueue: its Workload, the ClusterQueue of its last admission, and
    its evictions (kept when the Workload is not cached)."""
    if workload is None:
        return previous
    admission = (workload.get("status") or {}).get("admission") or {}
    cluster_queue = admission.get("clusterQueue") or (previous.cluster_queue if previous else None)
    return KueueStatus(
        workload=workload["metadata"]["name"],
        cluster_queue=cluster_queue,
        evictions=max(evictions(workload), previous.evictions if previous else 0),
    )


def resumed_at(job: Obj, now: dt.datetime) -> dt.datetime | None:
    """When the Job was last unsuspended: when the Job controller's Suspended condition
    turned False, or now when it still says True of a Job no longer suspended (Kueue has
    just admitted it); None if the Job controller never saw it suspended."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Suspended":
            if cond.get("status") == "False":
                return parse_time(cond.get("lastTransitionTime"))
            return now
    return None


def deleted_by_suspension(pod: Obj, job: Obj, now: dt.datetime) -> bool:
    """The pod was deleted before the Job's last resume: by the Job controller, for its
    suspension (Kueue's preemption), which the Job's backoffLimit does not count. The
    deletion's own time is its deletionTimestamp less the grace period it was given."""
    meta = pod["metadata"]
    deadline = parse_time(meta.get("deletionTimestamp"))
    resumed = resumed_at(job, now)
    if deadline is None or resumed is None:
        return False
    requested = deadline - dt.timedelta(seconds=int(meta.get("deletionGracePeriodSeconds") or 0))
    return requested <= resumed
