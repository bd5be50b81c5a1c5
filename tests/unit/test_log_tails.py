"""LogTails: when a log read fails, the run's status says why, and reads back off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from jobline.controller.logs import REFRESH_SECONDS, LogTails

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
POD = {
    "metadata": {"uid": "pod-1", "name": "run-1-abc", "namespace": "data"},
    "spec": {"containers": [{"name": "main"}]},
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeKube:
    """The one call LogTails makes: the log as the kubelet serves it (timestamps on)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.reads = 0

    def stream_log(
        self, namespace: str, pod: str, container: str, since_time: str | None
    ) -> Iterator[bytes]:
        self.reads += 1
        return iter([b"".join(b"2026-01-01T00:00:05.%09dZ " % i + line + b"\n"
                              for i, line in enumerate(self.lines))])  # fmt: skip


def tails() -> tuple[LogTails, FakeKube, FakeClock]:
    kube, clock = FakeKube(), FakeClock()
    return LogTails(kube, clock), kube, clock  # type: ignore[arg-type]


def test_a_failed_read_is_written_with_its_reason_and_time() -> None:
    logs, _, _ = tails()
    logs.failed("run-1", POD, 100, "pods/log answered 500: dial tcp: connection refused", NOW)
    tail = logs.unwritten_tail("run-1", NOW)
    assert tail is not None
    assert tail.read_error == "pods/log answered 500: dial tcp: connection refused"
    assert tail.read_error_time == NOW
    assert tail.lines == []
    logs.written("run-1")
    # The same failure again changes nothing in the status.
    logs.failed("run-1", POD, 100, "pods/log answered 500: dial tcp: connection refused", NOW)
    assert logs.unwritten_tail("run-1", NOW) is None


def test_a_read_that_works_again_clears_the_error_and_keeps_the_lines() -> None:
    logs, kube, clock = tails()
    logs.failed("run-1", POD, 100, "pods/log answered 502: no route", NOW)
    logs.written("run-1")
    kube.lines = [b"one", b"two"]
    clock.now += REFRESH_SECONDS
    logs.read("run-1", POD, 100, final=True)
    tail = logs.unwritten_tail("run-1", NOW + dt.timedelta(seconds=5))
    assert tail is not None
    assert (tail.lines, tail.read_error, tail.read_error_time) == (["one", "two"], None, None)


def test_a_failed_read_waits_before_the_next_attempt() -> None:
    logs, kube, clock = tails()
    logs.failed("run-1", POD, 100, "pods/log answered 500: timeout", NOW)
    assert logs.due_in("run-1") == REFRESH_SECONDS
    logs.read("run-1", POD, 100, final=False)
    assert kube.reads == 0  # not due yet
    clock.now += REFRESH_SECONDS
    logs.read("run-1", POD, 100, final=False)
    assert kube.reads == 1


def test_the_first_error_time_is_kept_while_the_reason_changes() -> None:
    logs, _, _ = tails()
    later = NOW + dt.timedelta(seconds=30)
    logs.failed("run-1", POD, 100, "pods/log answered 500: connection refused", NOW)
    logs.written("run-1")
    logs.failed("run-1", POD, 100, "pods/log answered 503: service unavailable", later)
    tail: Any = logs.unwritten_tail("run-1", later)
    assert (tail.read_error, tail.read_error_time) == (
        "pods/log answered 503: service unavailable",
        NOW,
    )
