"""Pipeline-level behaviour: concurrency policies, schedules, history, Pipeline status."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from kubernetes import watch

from tests.cluster.jobline_fixtures import (
    Jobline,
    Operator,
    events_of,
    pipeline_status,
    runs_of,
)
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("sim")


class RunWatch:
    """Records, from watches, the order the runs' Jobs appear and the most pods that had
    not ended at once (a run holds its slot until its pod ends: the Job controller marks
    the Job finished later, and the next run need not wait for that)."""

    def __init__(self, jl: Jobline) -> None:
        self.created: list[str] = []
        self.live: set[str] = set()
        self.most_live = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for target in (self._jobs, self._pods):
            threading.Thread(target=target, args=(jl,), daemon=True).start()

    def _jobs(self, jl: Jobline) -> None:
        for event in watch.Watch().stream(
            jl.batch.list_namespaced_job, jl.namespace, timeout_seconds=600
        ):
            if self._stop.is_set():
                return
            name = event["raw_object"]["metadata"]["name"]
            with self._lock:
                if event["type"] == "ADDED" and name not in self.created:
                    self.created.append(name)

    def _pods(self, jl: Jobline) -> None:
        for event in watch.Watch().stream(
            jl.core.list_namespaced_pod, jl.namespace, timeout_seconds=600
        ):
            if self._stop.is_set():
                return
            pod = event["raw_object"]
            name = pod["metadata"]["name"]
            ended = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            with self._lock:
                if event["type"] == "DELETED" or ended:
                    self.live.discard(name)
                else:
                    self.live.add(name)
                self.most_live = max(self.most_live, len(self.live))

    def stop(self) -> None:
        self._stop.set()


def test_queue_with_two_slots_and_priorities(jl: Jobline) -> None:
    # All 20 runs exist before their Pipeline, so every admission sees the whole queue.
    names = [f"q-{i:02d}" for i in range(20)]
    for i, name in enumerate(names):
        jl.start(name, "queued", priority=10 if i % 4 == 0 else 0)
    watcher = RunWatch(jl)
    jl.pipeline(
        "queued",
        {"sim.jobline.dev/duration": "1s"},
        maxConcurrentRuns=2,
        history={"successfulRuns": 20},
    )
    try:
        statuses = {n: jl.wait_done(n, timeout=180) for n in names}
    finally:
        watcher.stop()
    assert {s["phase"] for s in statuses.values()} == {"COMPLETE"}
    assert watcher.most_live <= 2
    # Priority 10 first, then the rest; within each, oldest first (names follow age).
    expected = ["q-00", "q-04", "q-08", "q-12", "q-16"]
    expected += ["q-01", "q-02", "q-03", "q-05", "q-06", "q-07", "q-09", "q-10", "q-11"]
    expected += ["q-13", "q-14", "q-15", "q-17", "q-18", "q-19"]
    assert sorted(watcher.created) == sorted(expected)
    # Priority order, up to the slots: when both slots free at once, the two runs next
    # in the queue start together and their Jobs may be created in either order.
    position = {name: i for i, name in enumerate(watcher.created)}
    for i, earlier in enumerate(expected):
        for later in expected[i + 2 :]:
            assert position[earlier] < position[later], (earlier, later, watcher.created)


def test_queue_positions_are_kept_current(jl: Jobline) -> None:
    jl.pipeline("line", {"sim.jobline.dev/duration": "300s"})
    jl.start("line-0", "line")
    jl.wait_phase("line-0", "RUNNING")
    jl.start("line-1", "line")
    jl.start("line-2", "line")
    wait_for("positions 1 and 2", lambda: jl.status("line-2").get("queuePosition") == 2)
    jl.start("line-vip", "line", priority=5)
    wait_for("the VIP first", lambda: jl.status("line-vip").get("queuePosition") == 1)
    wait_for("the others pushed back", lambda: jl.status("line-2").get("queuePosition") == 3)
    status = wait_for(
        "Pipeline status", lambda: (s := pipeline_status(jl, "line")).get("queuedRuns") == 3 and s
    )
    assert status["activeRuns"] == ["line-0"]
    jl.patch("line-0", {"stopped": True})  # frees the slot at once
    jl.wait_phase("line-vip", "RUNNING")
    wait_for("line-1 next", lambda: jl.status("line-1").get("queuePosition") == 1)


def test_forbid(jl: Jobline) -> None:
    jl.pipeline("solo", {"sim.jobline.dev/duration": "300s"}, concurrencyPolicy="Forbid")
    jl.start("solo-1", "solo")
    jl.wait_phase("solo-1", "RUNNING")
    jl.start("solo-2", "solo")
    status = jl.wait_done("solo-2")
    assert (status["phase"], status["reason"]) == ("STOPPED", "Forbidden")
    assert "Forbid" in status["message"]
    assert jl.status("solo-1")["phase"] == "RUNNING"
    assert "RunSkipped" in {e.reason for e in events_of(jl, "Pipeline", "solo")}


def test_replace(jl: Jobline) -> None:
    jl.pipeline("fresh", {"sim.jobline.dev/duration": "300s"}, concurrencyPolicy="Replace")
    jl.start("fresh-1", "fresh")
    jl.wait_phase("fresh-1", "RUNNING")
    jl.start("fresh-2", "fresh")
    old = jl.wait_done("fresh-1")
    assert (old["phase"], old["reason"]) == ("STOPPED", "Replaced")
    assert "fresh-2" in old["message"]
    jl.wait_phase("fresh-2", "RUNNING")
    wait_for("the old Job gone", lambda: [j.metadata.name for j in jl.jobs()] == ["fresh-2"])


def test_allow_runs_everything_together(jl: Jobline) -> None:
    jl.pipeline("crowd", {"sim.jobline.dev/duration": "300s"}, concurrencyPolicy="Allow")
    for i in range(4):
        jl.start(f"crowd-{i}", "crowd")
    wait_for(
        "all four RUNNING at once",
        lambda: all(jl.status(f"crowd-{i}").get("phase") == "RUNNING" for i in range(4)),
    )


def test_history_is_trimmed_oldest_first(jl: Jobline) -> None:
    jl.pipeline("tidy", concurrencyPolicy="Allow", history={"successfulRuns": 2, "failedRuns": 1})
    for i in range(4):
        jl.start(f"tidy-ok-{i}", "tidy")
        jl.wait_done(f"tidy-ok-{i}")
    for i in range(2):
        jl.start(f"tidy-stop-{i}", "tidy", stopped=True)
        jl.wait_done(f"tidy-stop-{i}")
    wait_for(
        "history trimmed",
        lambda: (
            sorted(r["metadata"]["name"] for r in runs_of(jl, "tidy"))
            == ["tidy-ok-2", "tidy-ok-3", "tidy-stop-1"]
        ),
    )
    # The Pipeline's status follows its runs within a few seconds (written at most every 5 s).
    status = wait_for(
        "the Pipeline's last run",
        lambda: (
            (s := pipeline_status(jl, "tidy")).get("lastRun", {}).get("name") == "tidy-stop-1" and s
        ),
        timeout=30,
    )
    assert status["lastSuccessfulTime"]


def test_invalid_schedule_and_zone_are_not_ready_but_manual_runs_work(jl: Jobline) -> None:
    jl.pipeline("badcron", schedule="every day at 2")
    jl.pipeline("badzone", schedule="0 2 * * *", timeZone="Mars/Olympus")
    for name, reason in (("badcron", "InvalidSchedule"), ("badzone", "InvalidTimeZone")):
        ready = wait_for(
            f"{name} Ready=False",
            lambda name=name: next(
                (
                    c
                    for c in pipeline_status(jl, name).get("conditions", [])
                    if c["type"] == "Ready"
                ),
                None,
            ),
        )
        assert (ready["status"], ready["reason"]) == ("False", reason)
        assert ready["message"]
    jl.start("manual", "badcron")
    assert jl.wait_done("manual")["phase"] == "COMPLETE"


def wait_past_minute(after: float) -> dt.datetime:
    """Sleeps until `after` seconds past the next minute; returns that minute (UTC)."""
    now = time.time()
    boundary = (int(now) // 60 + 1) * 60
    time.sleep(boundary + after - now)
    return dt.datetime.fromtimestamp(boundary, dt.UTC)


def test_schedule_every_minute_creates_scheduled_runs(jl: Jobline) -> None:
    jl.pipeline("minutely", schedule="* * * * *")
    run: dict[str, Any] = wait_for(
        "a scheduled run", lambda: next(iter(runs_of(jl, "minutely")), None), timeout=75
    )
    name = run["metadata"]["name"]
    status = jl.wait_done(name)
    scheduled = status["trigger"]["scheduledTime"]
    assert status["trigger"]["type"] == "Schedule"
    minute = int(dt.datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()) // 60
    assert name == f"minutely-{minute}"
    assert jl.main_env(name)["JOBLINE_SCHEDULED_TIME"] == scheduled
    pl = pipeline_status(jl, "minutely")
    assert pl["lastScheduleTime"] == scheduled
    assert pl["nextScheduleTime"] > scheduled
    assert "RunCreated" in {e.reason for e in events_of(jl, "Pipeline", "minutely")}


def test_operator_down_across_a_scheduled_time(jl: Jobline, operator: Operator) -> None:
    operator.stop()
    try:
        jl.pipeline("within", schedule="* * * * *", startingDeadlineSeconds=50)
        jl.pipeline("beyond", schedule="* * * * *", startingDeadlineSeconds=5)
        jl.pipeline("paused", schedule="* * * * *", suspend=True)
        if time.time() % 60 > 40:  # leave room before the boundary for the creates above
            time.sleep(25)
        missed = wait_past_minute(12)
    finally:
        operator.start()
    minute = int(missed.timestamp()) // 60
    caught_up = wait_for("the catch-up run", lambda: runs_of(jl, "within"), timeout=30)
    assert [r["metadata"]["name"] for r in caught_up] == [f"within-{minute}"]
    wait_for(
        "RunSkipped",
        lambda: "RunSkipped" in {e.reason for e in events_of(jl, "Pipeline", "beyond")},
    )
    assert runs_of(jl, "beyond") == []
    assert runs_of(jl, "paused") == []


def test_a_burst_of_300_queued_runs_never_exceeds_5_and_starts_by_priority(jl: Jobline) -> None:
    names = [f"b-{i:03d}" for i in range(300)]
    priority = {name: 10 if i % 10 == 0 else 0 for i, name in enumerate(names)}
    # Created before their Pipeline, so the whole queue is known when admission begins;
    # one after another (a few seconds), so that creation order is name order.
    for name in names:
        jl.start(name, "burst", priority=priority[name])
    watcher = RunWatch(jl)
    jl.pipeline(
        "burst",
        {"sim.jobline.dev/duration": "1s"},
        maxConcurrentRuns=5,
        history={"successfulRuns": 300},
    )
    try:
        wait_for(
            "all 300 runs to complete",
            lambda: (
                sum(
                    (r.get("status") or {}).get("phase") == "COMPLETE" for r in runs_of(jl, "burst")
                )
                == 300
            ),
            timeout=600,
            interval=2,
        )
    finally:
        watcher.stop()
    assert watcher.most_live <= 5
    # The 30 runs of priority 10 first, then the others, each group oldest (name) first.
    expected = [n for n in names if priority[n]] + [n for n in names if not priority[n]]
    assert sorted(watcher.created) == sorted(expected)
    # When several slots free at once, the runs next in line start together and their
    # Jobs may be created in any order among them: order holds 5 places apart.
    position = {name: i for i, name in enumerate(watcher.created)}
    late = [
        (a, b)
        for i, a in enumerate(expected)
        for b in expected[i + 5 :]
        if position[a] > position[b]
    ]
    assert late == []


def test_a_job_that_only_carries_the_labels_holds_no_slot(jl: Jobline) -> None:
    # Made by hand, labelled as a run's Job of Pipeline "guarded", controlled by nothing.
    jl.batch.create_namespaced_job(
        jl.namespace,
        {
            "metadata": {
                "name": "impostor",
                "labels": {"jobline.dev/pipeline": "guarded", "jobline.dev/pipelinejob": "x"},
            },
            "spec": {
                "suspend": True,  # never finishes on its own
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "busybox:1.36"}],
                    }
                },
            },
        },
    )
    jl.pipeline("guarded", {"sim.jobline.dev/duration": "1s"}, maxConcurrentRuns=1)
    jl.start("guarded-1", "guarded")
    assert jl.wait_done("guarded-1")["phase"] == "COMPLETE"
    assert any(j.metadata.name == "impostor" for j in jl.jobs())  # and it is left alone
