"""LogTails: reads made on the readers' own queue; a failed read says why in the status
and backs off; a read done while a status write was on its way is not lost."""

from __future__ import annotations

from jobline.controller.log_reader import REFRESH_SECONDS, LogTails
from tests.unit.fakes import START, FakeClock, FakeKube, api_error

POD = {
    "metadata": {"uid": "pod-1", "name": "run-1-abc", "namespace": "data"},
    "spec": {"containers": [{"name": "main"}]},
}


def tails() -> tuple[LogTails, FakeKube, FakeClock, list[str]]:
    clock = FakeClock()
    kube, told = FakeKube(clock), list[str]()
    return LogTails(kube, told.append, clock), kube, clock, told


def test_a_request_is_read_on_the_readers_queue_and_the_run_is_told() -> None:
    logs, kube, clock, told = tails()
    kube.log_lines["run-1-abc"] = [b"one", b"two"]
    logs.request("run-1", POD, 100, final=False, at_once=False)
    assert len(logs.queue) == 0  # not due: the first read waits REFRESH_SECONDS
    clock.advance(REFRESH_SECONDS)
    logs.request("run-1", POD, 100, final=False, at_once=False)
    assert logs.queue.get(block=False) == "run-1"
    logs.read("run-1")
    assert told == ["run-1"]
    found = logs.unwritten_tail("run-1")
    assert found is not None
    # The last line is held back until a later read shows it was whole.
    assert found[0].lines == ["one"]
    assert logs.done_for("run-1") is None  # not the last read


def test_a_failed_read_is_written_with_its_reason_and_time() -> None:
    logs, kube, _, _ = tails()
    kube.fail["stream_log"] = api_error(500, "dial tcp: connection refused")
    logs.request("run-1", POD, 100, final=False, at_once=True)
    logs.read("run-1")
    found = logs.unwritten_tail("run-1")
    assert found is not None
    tail, version = found
    assert tail.read_error == "pods/log answered 500: dial tcp: connection refused"
    assert tail.read_error_time == START
    assert tail.lines == []
    logs.written("run-1", version)
    # The same failure again changes nothing in the status.
    kube.fail["stream_log"] = api_error(500, "dial tcp: connection refused")
    logs.read("run-1")
    assert logs.unwritten_tail("run-1") is None


def test_a_read_that_works_again_clears_the_error_and_keeps_the_lines() -> None:
    logs, kube, clock, _ = tails()
    kube.fail["stream_log"] = api_error(502, "no route")
    logs.request("run-1", POD, 100, final=False, at_once=True)
    logs.read("run-1")
    kube.log_lines["run-1-abc"] = [b"one", b"two"]
    clock.advance(REFRESH_SECONDS)
    logs.request("run-1", POD, 100, final=True, at_once=False)
    logs.read("run-1")
    found = logs.unwritten_tail("run-1")
    assert found is not None
    assert (found[0].lines, found[0].read_error, found[0].read_error_time) == (
        ["one", "two"],
        None,
        None,
    )
    assert logs.done_for("run-1") == "pod-1"


def test_a_failed_read_waits_before_the_next_attempt() -> None:
    logs, kube, clock, _ = tails()
    kube.fail["stream_log"] = api_error(500, "timeout")
    logs.request("run-1", POD, 100, final=False, at_once=True)
    logs.read("run-1")
    assert logs.due_in("run-1") == REFRESH_SECONDS
    logs.queue.get(block=False)
    logs.queue.done("run-1")
    logs.request("run-1", POD, 100, final=False, at_once=False)
    assert logs.queue.get(block=False) is None  # not due yet
    clock.advance(REFRESH_SECONDS)
    logs.request("run-1", POD, 100, final=False, at_once=False)
    assert logs.queue.get(block=False) == "run-1"


def test_the_first_error_time_is_kept_while_the_reason_changes() -> None:
    logs, kube, clock, _ = tails()
    kube.fail["stream_log"] = api_error(500, "connection refused")
    logs.request("run-1", POD, 100, final=False, at_once=True)
    logs.read("run-1")
    clock.advance(30)
    kube.fail["stream_log"] = api_error(503, "service unavailable")
    logs.read("run-1")
    found = logs.unwritten_tail("run-1")
    assert found is not None
    assert (found[0].read_error, found[0].read_error_time) == (
        "pods/log answered 503: service unavailable",
        START,
    )


def test_lines_read_while_a_status_write_was_on_its_way_stay_unwritten() -> None:
    logs, kube, clock, _ = tails()
    kube.log_lines["run-1-abc"] = [b"one"]
    logs.request("run-1", POD, 100, final=False, at_once=True)
    logs.read("run-1")
    observed = logs.unwritten_tail("run-1")  # a sync takes this tail to write
    assert observed is not None
    kube.log_lines["run-1-abc"] = [b"one", b"two"]
    clock.advance(REFRESH_SECONDS)
    logs.read("run-1")  # meanwhile, on a reader
    logs.written("run-1", observed[1])  # the sync's write of the older tail succeeds
    newer = logs.unwritten_tail("run-1")
    assert newer is not None
    assert (observed[0].total_lines, newer[0].total_lines) == (0, 1)


def test_a_last_read_of_a_pod_that_is_gone_is_done() -> None:
    logs, _, _, told = tails()
    logs.request("run-1", POD, 100, final=True, at_once=False)
    logs.read("run-1")  # no log: the pod is gone
    assert logs.done_for("run-1") == "pod-1"
    assert told == ["run-1"]


def test_a_new_attempt_is_read_afresh() -> None:
    logs, kube, _, _ = tails()
    kube.log_lines["run-1-abc"] = [b"first attempt"]
    logs.request("run-1", POD, 100, final=True, at_once=False)
    logs.read("run-1")
    second = {**POD, "metadata": {"uid": "pod-2", "name": "run-1-def", "namespace": "data"}}
    kube.log_lines["run-1-def"] = [b"second attempt"]
    logs.request("run-1", second, 100, final=True, at_once=False)
    assert logs.done_for("run-1") is None
    logs.read("run-1")
    found = logs.unwritten_tail("run-1")
    assert found is not None
    assert found[0].lines == ["second attempt"]
