"""Two replicas with leader election: one acts at a time, and the other takes over
within 30 s when the active one is killed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from tests.audit import AuditLog
from tests.cluster.jobline_fixtures import Jobline, Operator
from tests.conftest import wait_for
from tests.faults.plane import require_local_plane

pytestmark = pytest.mark.usefixtures("sim")
WRITES = {"create", "update", "patch", "delete"}


def holder(jl: Jobline) -> str | None:
    lease = client.CoordinationV1Api(jl.cluster.api).read_namespaced_lease(
        "jobline-operator", jl.namespace
    )
    return lease.spec.holder_identity


def writes_by_replica(audit: AuditLog) -> list[tuple[str, str]]:
    """(time, replica) of every successful write the replicas made since the mark."""
    found = []
    for event in audit.events():
        agent = event.get("userAgent", "")
        if not agent.startswith("jobline-operator/") or "(replica-" not in agent:
            continue
        if event.get("verb") not in WRITES:
            continue
        if (event.get("responseStatus") or {}).get("code", 500) >= 400:
            continue
        found.append((event["stageTimestamp"], agent.split("(")[1].rstrip(")")))
    return sorted(found)


@dataclass
class Replicas:
    """Two operator replicas electing a leader in the test's namespace, the session's
    operator stopped meanwhile (it would be a third actor). `leader` and `standby` are
    known once one run has completed under the first leader."""

    by_name: dict[str, Operator]
    audit: AuditLog
    leader: str = ""
    standby: str = ""


@pytest.fixture
def replicas(jl: Jobline, operator: Operator, tmp_path: Path) -> Iterator[Replicas]:
    require_local_plane()
    audit = AuditLog()
    operator.stop()
    by_name = {
        name: Operator(
            operator.kubeconfig,
            tmp_path / f"{name}.log",
            namespaces=(jl.namespace,),
            extra_args=("--leader-elect", f"--leader-election-namespace={jl.namespace}"),
            env={"POD_NAME": name},
        )
        for name in ("replica-a", "replica-b")
    }
    try:
        for replica in by_name.values():
            replica.start()
        jl.pipeline("ha", {"sim.jobline.dev/duration": "1s"})
        jl.start("ha-1", "ha")
        assert jl.wait_done("ha-1", timeout=60)["phase"] == "COMPLETE"
        leader = wait_for("a leader", lambda: holder(jl))
        [standby] = [n for n in by_name if n != leader]
        yield Replicas(by_name, audit, leader, standby)
    finally:
        for replica in by_name.values():
            replica.stop()
        operator.start()


def test_two_replicas_one_actor_and_a_takeover_within_30_s(jl: Jobline, replicas: Replicas) -> None:
    leader, standby = replicas.leader, replicas.standby
    replicas.by_name[leader].kill()
    killed_at = time.monotonic()
    jl.start("ha-2", "ha")
    assert jl.wait_done("ha-2", timeout=60)["phase"] == "COMPLETE"
    took = time.monotonic() - killed_at
    assert holder(jl) == standby
    assert took <= 30, f"the standby took {took:.1f} s to finish a run"
    writes = writes_by_replica(replicas.audit)
    actors = [replica for _, replica in writes]
    assert leader in actors and standby in actors
    # Every write of the first leader came before any write of the second: never both.
    last_of_leader = max(t for t, r in writes if r == leader)
    first_of_standby = min(t for t, r in writes if r == standby)
    assert last_of_leader < first_of_standby


def test_a_leader_frozen_past_its_lease_stops_acting_when_it_wakes(
    jl: Jobline, replicas: Replicas
) -> None:
    leader, standby = replicas.leader, replicas.standby
    frozen = replicas.by_name[leader].process
    assert frozen is not None
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        wait_for("the standby to lead", lambda: holder(jl) == standby, timeout=40)
        jl.start("ha-2", "ha")
        assert jl.wait_done("ha-2", timeout=60)["phase"] == "COMPLETE"
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    # Awake, it finds the Lease taken and stops at once, rather than act on old news.
    wait_for("the old leader to exit", lambda: frozen.poll() is not None, timeout=15)
    jl.start("ha-3", "ha")
    assert jl.wait_done("ha-3", timeout=60)["phase"] == "COMPLETE"
    writes = writes_by_replica(replicas.audit)
    first_of_standby = min(t for t, r in writes if r == standby)
    assert all(t < first_of_standby for t, r in writes if r == leader)
