"""The controllers, their caches and queues while the apiserver is unreachable, on fakes
of our API layer that fail as the network fails (urllib3's and the standard library's
errors, not only the apiserver's answers): nothing escapes where it would end a thread,
no event is lost, and what failed is retried, at once when the apiserver is back."""

from __future__ import annotations

import threading
import time

import pytest

from jobline.controller.log_reader import REFRESH_SECONDS, LogTails
from jobline.controller.workqueue import WorkQueue
from jobline.kube.request import FAILED_REQUEST
from jobline.kube.store import Store
from tests.conftest import wait_for
from tests.unit import test_pipeline_controller as pipelines
from tests.unit import test_run_controller as runs
from tests.unit.fakes import FakeClock, FakeKube, transport_errors

ERRORS = transport_errors()
IDS = [type(e).__name__ for e in ERRORS]
POD = {
    "metadata": {"uid": "pod-1", "name": "run-1-abc", "namespace": "data"},
    "spec": {"containers": [{"name": "main"}]},
}


# --- log reads -------------------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS, ids=IDS)
def test_a_log_stream_cut_midway_is_a_failed_read_with_its_reason(error: Exception) -> None:
    clock = FakeClock()
    kube, told = FakeKube(clock), list[str]()
    logs = LogTails(kube, told.append, clock)
    kube.log_lines["run-1-abc"] = [b"one", b"two"]
    kube.log_cut["run-1-abc"] = error
    logs.request("run-1", POD, 100, final=False, at_once=True)
    logs.read("run-1")  # must not raise: the readers' queue would retry it in 5 ms
    assert told == ["run-1"]  # the run's sync hears of it
    found = logs.unwritten_tail("run-1")
    assert found is not None and found[0].read_error is not None
    assert found[0].read_error.startswith("the log read failed: ")
    assert logs.due_in("run-1") == pytest.approx(REFRESH_SECONDS)  # not hammered


# --- run syncs and handlers ------------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS, ids=IDS)
def test_a_run_sync_whose_request_fails_raises_a_failed_request_for_the_queue_to_retry(
    error: Exception,
) -> None:
    w = runs.World()
    w.pipeline()
    w.run()
    w.kube.fail["create_job"] = error
    with pytest.raises(FAILED_REQUEST):
        w.sync()
    w.sync()  # the retry
    assert w.kube.made("create_job") == [f"create_job {runs.NS}/sales-1"] * 2
    assert (runs.NS, "sales-1") in w.kube.jobs


@pytest.mark.parametrize("error", ERRORS, ids=IDS)
def test_a_pod_release_that_fails_in_a_handler_does_not_escape_into_the_watch(
    error: Exception,
) -> None:
    w = runs.World()
    # A pod being deleted whose run and Job are gone: its handler releases it.
    orphan_job = {"metadata": {"name": "gone", "namespace": runs.NS, "uid": "gone-job"}}
    pod = w.pod(orphan_job, "Running", deletionTimestamp="2026-01-01T00:00:09Z")
    w.kube.fail["remove_pod_finalizer"] = error
    w.runs.on_pod("MODIFIED", pod, None)  # must not raise
    w.runs.on_pod("MODIFIED", pod, None)  # its next event tries again, and succeeds
    assert w.kube.pods[(runs.NS, pod["metadata"]["name"])]["metadata"]["finalizers"] == []


# --- Pipelines ----------------------------------------------------------------------------


def test_a_pipeline_the_model_rejects_is_not_ready_naming_the_field_once() -> None:
    w = pipelines.World("Queue", max_runs=0)  # the CRD's schema lets 0 through
    w.run("waiting")
    w.controller.run_changed(pipelines.NS, "sales", True)  # on the run watch: no raise
    w.sync()
    status = w.kube.pipelines[(pipelines.NS, "sales")]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.maxConcurrentRuns" in ready["message"]
    assert status["queuedRuns"] == 1
    w.kube.calls.clear()
    w.sync()
    w.sync()
    assert w.kube.calls == []  # costs nothing after


@pytest.mark.parametrize("error", ERRORS, ids=IDS)
def test_a_history_deletion_that_fails_holds_up_neither_admission_nor_the_status(
    error: Exception,
) -> None:
    w = pipelines.World("Queue", max_runs=1, history={"successfulRuns": 0, "failedRuns": 0})
    w.run("old", "COMPLETE", "Completed")
    w.run("new")
    w.kube.fail["delete_run"] = error
    verdicts = w.sync()  # must not raise
    assert verdicts == {"new": (pipelines.START, None)}
    assert w.kube.made("patch_pipeline_status") == [f"patch_pipeline_status {pipelines.NS}/sales"]
    due = w.controller.queue.due_in((pipelines.NS, "sales"))
    assert due is not None and due > 1  # tried again later, not in a tight loop
    w.sync()
    assert w.kube.made("delete_run") == [f"delete_run {pipelines.NS}/old"] * 2
    assert (pipelines.NS, "old") not in w.kube.runs


def test_a_deleted_pipeline_leaves_no_bookkeeping_behind() -> None:
    w = pipelines.World("Queue", max_runs=1, schedule="* * * * *", startingDeadlineSeconds=10)
    w.run("waiting")
    w.sync()
    key = (pipelines.NS, "sales")
    raw = w.cache.pipelines.get(*key)
    assert raw is not None
    w.controller.on_pipeline("DELETED", raw, raw)
    held = (
        w.controller._skipped_reported,
        w.controller._status_written,
        w.controller._position_budget,
    )
    assert [key in h for h in held] == [False, False, False]


# --- the queues ----------------------------------------------------------------------------


def test_keys_backing_off_after_failures_are_retried_at_once_when_the_apiserver_is_back() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock.monotonic)
    for _ in range(14):  # a minute of failures: the backoff is over a minute now
        queue.add_rate_limited("run-1")
    queue.add_after("tick", 30.0)  # a timer that is not a failure's backoff
    assert queue.get(block=False) is None
    assert queue.retry_now() == 1
    assert queue.get(block=False) == "run-1"
    assert queue.get(block=False) is None  # the timer still waits its time
    assert queue.failures("run-1") == 14  # failing again backs off as before


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_thread_that_dies_is_a_problem_for_the_probe() -> None:
    queue: WorkQueue[str] = WorkQueue()
    started = threading.Event()

    def process(key: str) -> None:
        started.set()
        raise SystemExit  # not an Exception: it ends the thread

    queue.run_workers(1, process, lambda *a: None)
    queue.add("k")
    wait_for("the worker to run", started.is_set, timeout=5)
    wait_for("the worker to die", lambda: queue.dead_workers() == 1, timeout=5)
    queue.stop()
    time.sleep(0.01)
    assert queue.dead_workers() == 0  # stopped: no longer a problem


# --- the store -----------------------------------------------------------------------------


def obj(name: str, version: str) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}


def test_a_relist_keeps_what_a_controller_wrote_after_the_list_was_read() -> None:
    store = Store()
    store.put(obj("listed", "5"))
    store.put(obj("gone", "6"))
    store.put(obj("created-after", "12"))  # the operator's own write, after the list at 10
    vanished, changed = store.replace([obj("listed", "9")], None, "10")
    assert [v["metadata"]["name"] for v in vanished] == ["gone"]
    assert [
        (o["metadata"]["name"], (old or {})["metadata"]["resourceVersion"]) for o, old in changed
    ] == [("listed", "5")]
    assert store.get("ns", "created-after") is not None


def test_restore_undoes_an_event() -> None:
    store = Store()
    store.put(obj("a", "1"))
    store.put(obj("a", "2"))
    store.restore(("ns", "a"), obj("a", "1"))
    assert store.get("ns", "a") == obj("a", "1")
    store.restore(("ns", "a"), None)
    assert store.get("ns", "a") is None
