"""The operator as a Deployment: a deleted pod is replaced and its runs carry on; two
replicas hand over through the Lease; an upgrade rolls it without losing a run."""

from __future__ import annotations

import time
import uuid

from tests.conftest import wait_for
from tests.e2e.conftest import NAMESPACE, RealJobline, Release


def _all_done_once(jl: RealJobline, names: list[str], timeout: float) -> list[dict[str, object]]:
    statuses = wait_for(
        f"{len(names)} runs to end",
        lambda: (
            (s := [jl.status(n) for n in names])
            and all(x.get("phase") in ("COMPLETE", "ERROR", "STOPPED") for x in s)
            and s
        ),
        timeout=timeout,
        interval=2,
    )
    jobs = jl.jobs()
    assert sorted(j.metadata.name for j in jobs) == sorted(names)  # one Job each, never two
    return list(statuses)


def test_a_deleted_operator_pod_is_replaced_and_a_burst_of_50_runs_ends_once_each(
    jl: RealJobline, release: Release
) -> None:
    jl.real_pipeline(
        "burst",
        "echo run $JOBLINE_PIPELINEJOB; sleep 3",
        concurrencyPolicy="Allow",
        history={"successfulRuns": 50, "failedRuns": 50},  # keep every run to look at
    )
    names = [f"burst-{i}" for i in range(50)]
    for name in names:
        jl.start(name, "burst")
    wait_for(
        "some runs to start",
        lambda: sum(jl.status(n).get("phase") in ("RUNNING", "COMPLETE") for n in names) >= 5,
        timeout=120,
    )
    [old] = release.ready_operator_pods()
    release.core.delete_namespaced_pod(old.metadata.name, NAMESPACE)
    wait_for(
        "a new operator pod",
        lambda: [p for p in release.ready_operator_pods() if p.metadata.name != old.metadata.name],
        timeout=180,
    )
    statuses = _all_done_once(jl, names, timeout=600)
    assert all(s["phase"] == "COMPLETE" for s in statuses), [s.get("reason") for s in statuses]
    assert all(s["exitCode"] == 0 for s in statuses)


def test_two_replicas_one_acts_and_the_other_takes_over_within_30_s(
    jl: RealJobline, release: Release
) -> None:
    release.upgrade("--set", "replicaCount=2")
    try:
        pods = release.wait_ready(replicas=2)
        leader = wait_for("a leader", lambda: release.leader() in {p.metadata.name for p in pods}
                          and release.leader())  # fmt: skip
        deleted_at = time.monotonic()
        release.core.delete_namespaced_pod(leader, NAMESPACE)
        new_leader = wait_for(
            "the other replica to take over",
            lambda: (h := release.leader()) and h != leader and h,
            timeout=60,
            interval=0.5,
        )
        took = time.monotonic() - deleted_at
        # The standby, or the pod the Deployment made in the leader's place: the leader
        # gives its Lease up as it stops, and both candidates try every 2 s.
        standby = {p.metadata.name for p in pods} - {leader}
        assert new_leader in standby | {p.metadata.name for p in release.operator_pods()}
        assert took < 30, f"took over after {took:.1f} s"
        # The new leader acts: a run started now completes.
        jl.real_pipeline("after", "echo served by the new leader")
        jl.start("after-1", "after")
        status = jl.wait_done("after-1", timeout=120)
        assert status["logs"]["lines"] == ["served by the new leader"]
    finally:
        release.upgrade("--set", "replicaCount=1")


def test_an_upgrade_rolls_the_operator_without_losing_a_run(
    jl: RealJobline, release: Release
) -> None:
    jl.real_pipeline("steady", "echo begin; sleep 15; echo end")
    jl.start("steady-1", "steady")
    jl.wait_phase("steady-1", "RUNNING", timeout=120)
    before = {p.metadata.name for p in release.operator_pods()}
    # A change to the pod template rolls the Deployment as a new image tag does.
    # --set-string: a hex id of digits only (or like 1e5) would be read as a number.
    release.upgrade("--set-string", f"podAnnotations.jobline\\.dev/rollout={uuid.uuid4().hex[:8]}")
    after = {p.metadata.name for p in release.wait_ready()}
    assert not before & after
    status = jl.wait_done("steady-1", timeout=120)
    assert (status["phase"], status["logs"]["lines"]) == ("COMPLETE", ["begin", "end"])
    assert [j.metadata.name for j in jl.jobs()] == ["steady-1"]
