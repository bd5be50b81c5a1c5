"""Which lines a reader gets of a run whose pod is gone (`jobline.client.run_logs`), on fakes of
the client and the archive: the archived lines then the status tail's, the lines lost
said as a range, and the archive only for callers who may get pods/log. Against a real
apiserver and store: tests/cluster/test_log_archive.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobline.archive import ArchiveError, PodLog
from jobline.client.run_logs import read_log
from jobline.client.runs import UserError

POD_LOG = PodLog("data", "uid-1", "etl-1-abcde")


class FakeRuns:
    """`Runs` as read_log calls it: a run whose pod is gone."""

    namespace = "data"

    def __init__(self, tail_first: int, tail_end: int, archived: int, may_read: bool) -> None:
        self.may_read = may_read
        self.asked: list[tuple[str, str, str, str]] = []
        logs: dict[str, Any] = {
            "sequence": tail_first,
            "lines": [f"line {i}" for i in range(tail_first, tail_end)],
            "totalLines": tail_end,
        }
        if archived:
            logs["archive"] = {"location": "s3://logs/data/uid-1/etl-1-abcde/", "lines": archived}
        self.run = {
            "metadata": {"name": "etl-1", "uid": "uid-1"},
            "status": {"phase": "COMPLETE", "podName": "etl-1-abcde", "logs": logs},
        }

    def get(self, name: str) -> dict[str, Any]:
        return self.run

    def pod_log(self, pod: str, container: str | None, follow: bool) -> None:
        return None  # the pod is gone

    def may(
        self, verb: str, plural: str, group: str = "jobline.dev", subresource: str = ""
    ) -> bool:
        self.asked.append((verb, plural, group, subresource))
        return self.may_read


class FakeArchive:
    def __init__(self, end: int, error: str | None = None) -> None:
        self.end = end
        self.error = error

    def read_from(self, log: PodLog, line: int) -> Iterator[tuple[int, bytes]]:
        assert log == POD_LOG
        if self.error:
            raise ArchiveError(self.error)
        for number in range(line, self.end):
            yield number, b"line %d\n" % number


def numbers(runs: FakeRuns, archive: FakeArchive | None, sequence: int) -> list[int]:
    found = read_log(runs, "etl-1", sequence, False, archive=archive)  # type: ignore[arg-type]
    return [n for n, line in found.lines if line == f"line {n}"]


def test_archived_lines_then_the_tail_after_them() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=95, may_read=True)
    found = read_log(runs, "etl-1", 10, False, archive=FakeArchive(95))  # type: ignore[arg-type]
    assert ([n for n, _ in found.lines], found.gone) == (list(range(10, 100)), None)
    assert runs.asked == [("get", "pods", "", "log")]


def test_lines_neither_archived_nor_in_the_tail_are_said_gone() -> None:
    # The store refused after line 50: 50-89 are gone; the archive serves 0-49.
    runs = FakeRuns(tail_first=90, tail_end=100, archived=50, may_read=True)
    found = read_log(runs, "etl-1", 0, False, archive=FakeArchive(50))  # type: ignore[arg-type]
    assert found.gone == (50, 90)
    assert [n for n, _ in found.lines] == [*range(50), *range(90, 100)]


def test_the_tail_alone_needs_no_permission_for_pods_log() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=100, may_read=False)
    assert numbers(runs, FakeArchive(100), 95) == list(range(95, 100))
    assert runs.asked == []


def test_the_archive_is_refused_to_who_may_not_get_pods_log() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=100, may_read=False)
    with pytest.raises(UserError, match="permission to get pods/log in namespace 'data'") as e:
        read_log(runs, "etl-1", 0, False, archive=FakeArchive(100))  # type: ignore[arg-type]
    assert (e.value.status, e.value.reason) == (403, "Forbidden")


def test_without_archive_settings_the_reader_is_told_where_the_lines_are() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=100, may_read=True)
    found = read_log(runs, "etl-1", 5, False, archive=None)  # type: ignore[arg-type]
    assert (found.gone, found.archived_at) == ((5, 90), "s3://logs/data/uid-1/etl-1-abcde/")
    assert [n for n, _ in found.lines] == list(range(90, 100))


def test_a_store_that_fails_is_a_503_naming_it() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=100, may_read=True)
    found = read_log(
        runs,  # type: ignore[arg-type]
        "etl-1",
        0,
        False,
        archive=FakeArchive(100, "cannot reach the log archive at http://s3.example"),  # type: ignore[arg-type]
    )
    with pytest.raises(UserError, match="cannot reach the log archive") as e:
        next(found.lines)
    assert e.value.status == 503


def test_a_run_never_archived_keeps_todays_answer() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=0, may_read=True)
    found = read_log(runs, "etl-1", 5, False, archive=FakeArchive(0))  # type: ignore[arg-type]
    assert (found.gone, [n for n, _ in found.lines]) == ((5, 90), list(range(90, 100)))


def test_who_may_not_read_the_pods_log_reads_the_tail_the_status_keeps() -> None:
    runs = FakeRuns(tail_first=90, tail_end=100, archived=100, may_read=False)
    refused = UserError("permission denied for the log of pod 'etl-1-abcde'", 403, "Forbidden")

    def pod_log(pod: str, container: str | None, follow: bool) -> None:
        raise refused

    runs.pod_log = pod_log  # type: ignore[method-assign]
    found = read_log(runs, "etl-1", 95, False, archive=FakeArchive(100))  # type: ignore[arg-type]
    assert [n for n, _ in found.lines] == list(range(95, 100))
    with pytest.raises(UserError, match="permission denied for the log of pod"):
        read_log(runs, "etl-1", 10, False, archive=FakeArchive(100))  # type: ignore[arg-type]


# --- a pod that still runs ---------------------------------------------------------------


class FakeStream:
    """A pod log response as urllib3 hands it over: chunks, then the connection back."""

    def __init__(self, data: bytes, chunk: int = 1024) -> None:
        self.data, self.chunk, self.read = data, chunk, 0

    def stream(self, amount: int, decode_content: bool = True) -> Iterator[bytes]:
        for i in range(0, len(self.data), self.chunk):
            self.read += len(self.data[i : i + self.chunk])
            yield self.data[i : i + self.chunk]

    def release_conn(self) -> None:
        pass


def stamped(second: int, text: bytes) -> bytes:
    return b"2026-01-01T00:00:%02d.000000001Z %s\n" % (second, text)


class LivePodRuns(FakeRuns):
    """A run whose pod runs: its log, as the apiserver serves it with timestamps, from
    `since_time` (whole seconds) on; each read is recorded."""

    def __init__(self, log: list[tuple[int, bytes]], phases: list[str]) -> None:
        super().__init__(0, 0, 0, True)
        self.log, self.phases = log, phases
        self.run["status"] = {"phase": "RUNNING", "podName": "etl-1-abcde"}
        self.reads: list[tuple[bool, str | None]] = []
        self.streams: list[FakeStream] = []

    def get(self, name: str) -> dict[str, Any]:
        if self.reads:  # asked again after a read: the run may have moved on
            self.run["status"]["phase"] = self.phases[min(len(self.reads), len(self.phases)) - 1]
        return self.run

    def pod_log(  # type: ignore[override]
        self, pod: str, container: str | None, follow: bool, since_time: str | None = None
    ) -> FakeStream:
        self.reads.append((follow, since_time))
        since = int(since_time[-3:-1]) if since_time else 0
        stream = FakeStream(b"".join(stamped(s, t) for s, t in self.log if s >= since))
        self.streams.append(stream)
        return stream


def test_a_long_line_without_newline_is_cut_as_the_archive_cuts_it() -> None:
    runs = LivePodRuns([(1, b"x" * (8 * 1024 * 1024))], ["COMPLETE"])
    runs.log.append((2, b"after"))
    found = list(read_log(runs, "etl-1", 0, False).lines)  # type: ignore[arg-type]
    assert [n for n, _ in found] == [0, 1]
    assert len(found[0][1]) == 1024 * 1024  # 1 MiB, as the operator archives it
    assert found[1][1] == "after"


def test_a_followed_log_resumes_where_it_was_not_from_its_first_line() -> None:
    # A follow stream that goes quiet (every few seconds) is asked again: from the time
    # of the last line read, not from line 0, and no line twice.
    runs = LivePodRuns([(s, b"line %d" % s) for s in range(0, 40)], ["RUNNING", "COMPLETE"])
    lines = read_log(runs, "etl-1", 0, True).lines  # type: ignore[arg-type]
    first = [next(lines) for _ in range(40)]
    runs.log += [(40, b"line 40"), (40, b"line 41")]
    rest = list(lines)
    assert [line for _, line in first + rest] == [f"line {i}" for i in range(42)]
    assert [n for n, _ in first + rest] == list(range(42))
    assert runs.reads == [
        (True, None),
        (True, "2026-01-01T00:00:39Z"),  # from the second of the last line read
        (False, "2026-01-01T00:00:40Z"),  # the run has ended: the last read
    ]
    assert sum(s.read for s in runs.streams[1:]) < runs.streams[0].read  # not re-read
