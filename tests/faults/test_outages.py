"""The control plane and the operator go away, freeze or restart: runs still end in
their right phase, with their exit code and last log line, and no limit is exceeded."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from kubernetes import client, watch

from jobline.models import API_GROUP, API_VERSION
from tests.audit import AuditLog
from tests.cluster.jobline_fixtures import Jobline, Operator, eventually_gone, runs_of
from tests.conftest import wait_for
from tests.faults.plane import compact_etcd, frozen, kill, require_local_plane, start

pytestmark = pytest.mark.usefixtures("sim")


def _ready(jl: Jobline) -> bool:
    try:
        return bool(jl.core.list_namespace(limit=1))
    except Exception:
        return False


def test_apiserver_restart_with_the_operator_frozen_loses_nothing(
    jl: Jobline, operator: Operator
) -> None:
    require_local_plane()
    assert operator.process is not None
    jl.pipeline("q", {"sim.jobline.dev/duration": "6s"}, maxConcurrentRuns=1)
    jl.pipeline("tick", schedule="* * * * *")
    for name in ("q-1", "q-2", "q-3"):
        jl.start(name, "q")
    jl.wait_phase("q-1", "RUNNING")
    jl.wait_phase("q-2", "QUEUED")
    os.kill(operator.process.pid, signal.SIGSTOP)
    try:
        # While the operator is frozen: a queued run and a scheduled Pipeline go.
        jl.delete("q-2")
        jl.custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, jl.namespace, "pipelines", "tick"
        )
        how = kill("kube-apiserver")
        compact_etcd()  # the operator's watches resume from versions that are gone: 410
        start("kube-apiserver", how)
        wait_for("the apiserver to serve again", lambda: _ready(jl), timeout=60)
        # The operator, frozen, has asked nothing since the compaction: any list of its
        # from this mark on is one made after it.
        since_compaction = AuditLog()
    finally:
        os.kill(operator.process.pid, signal.SIGCONT)
    first = jl.wait_done("q-1", timeout=60)
    assert (first["phase"], first["exitCode"]) == ("COMPLETE", 0)  # no completion missed
    third = jl.wait_done("q-3", timeout=60)
    assert third["phase"] == "COMPLETE"
    eventually_gone(
        "the deleted run's Job", lambda: [j for j in jl.jobs() if j.metadata.name == "q-2"]
    )
    # Its watches came back to versions the compaction removed (410 Gone) and listed
    # again. A watch may also have read the deletion before the apiserver went down (the
    # event waited in its socket while the operator was frozen) and resumed from a
    # version the compaction kept: either way, no deletion is missed (below).
    assert since_compaction.operator_lists() & {"pipelinejobs", "pipelines", "jobs", "pods"}
    since_caught_up = AuditLog()  # the operator has seen the deletions (q-2's Job is gone)
    # Past the next cron time: the deleted Pipeline gets no run; and no request at all
    # about either deleted object (a retry loop on them would make some).
    time.sleep(65 - dt.datetime.now(dt.UTC).second)
    assert since_caught_up.operator_requests_about(jl.namespace, {"tick", "q-2"}) == []
    assert runs_of(jl, "tick") == []


def test_operator_and_controller_manager_frozen_for_a_minute(
    jl: Jobline, operator: Operator
) -> None:
    require_local_plane()
    assert operator.process is not None
    jl.pipeline("slow", {"sim.jobline.dev/duration": "20s", "sim.jobline.dev/log": "done"})
    jl.start("slow-1", "slow")
    jl.wait_phase("slow-1", "RUNNING")
    os.kill(operator.process.pid, signal.SIGSTOP)
    try:
        time.sleep(60)
    finally:
        os.kill(operator.process.pid, signal.SIGCONT)
    done = jl.wait_done("slow-1", timeout=60)
    assert (done["phase"], done["exitCode"], done["logs"]["lines"]) == ("COMPLETE", 0, ["done"])
    jl.start("slow-2", "slow")
    jl.wait_phase("slow-2", "RUNNING")
    with frozen("kube-controller-manager"):
        # The pod's end is the run's end: it needs no Job controller, which marks nothing.
        done = jl.wait_done("slow-2", timeout=60)
        assert (done["phase"], done["exitCode"]) == ("COMPLETE", 0)
        job = jl.batch.read_namespaced_job("slow-2", jl.namespace)
        assert not [c for c in job.status.conditions or [] if c.type == "Complete"]
    assert jl.wait_phase("slow-2", "COMPLETE")["exitCode"] == 0


POLICIES = {  # Pipeline: (concurrencyPolicy, maxConcurrentRuns)
    "mq": ("Queue", 3),
    "ma": ("Allow", 1),
    "mf": ("Forbid", 2),
    "mr": ("Replace", 1),
}


class PodWatch:
    """Watches the namespace's pods: the most running at once per Pipeline, and the Job
    UIDs seen per run."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core, self.namespace = core, namespace
        self.running: dict[str, set[str]] = defaultdict(set)
        self.most: dict[str, int] = defaultdict(int)
        # The pods running when each Pipeline's most was reached, with their runs: what a
        # failed limit check names.
        self.at_most: dict[str, list[str]] = {}
        self.jobs: dict[str, set[str]] = defaultdict(set)
        self._watch = watch.Watch()
        self._stopped = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            # A new watch begins with an ADDED event for every pod that exists: what ran
            # before and went during the gap must not count as still running.
            self.running.clear()
            try:
                for event in self._watch.stream(self.core.list_namespaced_pod, self.namespace):
                    self._see(event)
            except Exception:  # a watch the apiserver ended: list and watch again
                time.sleep(0.2)

    def _see(self, event: dict[str, Any]) -> None:
        pod = event["object"]
        labels = pod.metadata.labels or {}
        pipeline, run = (
            labels.get("jobline.dev/pipeline"),
            labels.get("jobline.dev/pipelinejob"),
        )
        if not pipeline:
            return
        for owner in pod.metadata.owner_references or []:
            if owner.kind == "Job":
                self.jobs[run].add(owner.uid)
        live = event["type"] != "DELETED" and pod.status.phase == "Running"
        if live and not pod.metadata.deletion_timestamp:
            self.running[pipeline].add(pod.metadata.name)
        else:
            self.running[pipeline].discard(pod.metadata.name)
        if len(self.running[pipeline]) > self.most[pipeline]:
            self.most[pipeline] = len(self.running[pipeline])
            self.at_most[pipeline] = sorted(self.running[pipeline])

    def stop(self) -> None:
        self._stopped.set()
        self._watch.stop()


def test_the_operator_killed_50_times_during_a_burst_of_200_runs(
    jl: Jobline, operator: Operator
) -> None:
    # JOBLINE_FAULT_SEED chooses other kill times (the default is what CI runs).
    rng = random.Random(int(os.environ.get("JOBLINE_FAULT_SEED", "9")))
    for name, (policy, limit) in POLICIES.items():
        jl.pipeline(
            name,
            {"sim.jobline.dev/duration": "2s", "sim.jobline.dev/log": f"{name} last line"},
            concurrencyPolicy=policy,
            maxConcurrentRuns=limit,
            history={"successfulRuns": 100, "failedRuns": 100},  # keep them to check
        )
    pods = PodWatch(jl.core, jl.namespace)
    names = [f"{list(POLICIES)[i % 4]}-{i}" for i in range(200)]
    kills = 0

    def killer() -> None:
        nonlocal kills
        while kills < 50:
            time.sleep(rng.uniform(0.5, 2.5))
            operator.kill()
            kills += 1
            operator.start()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        for i, name in enumerate(names):
            jl.start(name, name.split("-")[0])
            if i % 10 == 9:
                time.sleep(rng.uniform(0.5, 1.5))
    finally:
        thread.join()
    finals = {n: jl.wait_done(n, timeout=300) for n in names}
    pods.stop()
    for name, status in finals.items():
        pipeline = name.split("-")[0]
        expected = {
            "mq": {("COMPLETE", "Completed")},
            "ma": {("COMPLETE", "Completed")},
            "mf": {("COMPLETE", "Completed"), ("STOPPED", "Forbidden")},
            "mr": {("COMPLETE", "Completed"), ("STOPPED", "Replaced")},
        }[pipeline]
        assert (status["phase"], status["reason"]) in expected, (name, status)
        if status["phase"] == "COMPLETE":
            assert status["exitCode"] == 0, (name, status)
            lines = (status.get("logs") or {}).get("lines")
            assert lines and lines[-1:] == [f"{pipeline} last line"], (name, status)
    assert sum(1 for s in finals.values() if s["phase"] == "COMPLETE") >= 100
    for run, uids in pods.jobs.items():
        assert len(uids) == 1, f"{run} had {len(uids)} Jobs"
    for pipeline, (policy, limit) in POLICIES.items():
        if policy != "Allow":
            assert pods.most[pipeline] <= limit, (pipeline, pods.at_most[pipeline])
    assert kills == 50
