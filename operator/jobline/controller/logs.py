"""The log tails of running runs, read incrementally under a global budget.

Each running run's latest started pod has a `LogReader`; a read asks only for
the lines since the last one counted. While the pod runs, a read is due every
`REFRESH_SECONDS` (longer after a read that brought a lot, so that a chatty
log is not re-read at its edge too often); when the pod has ended, or the run
is being stopped, one last read. At most `MAX_CONCURRENT_READS` reads run at
once, whatever the number of runs. Memory per run is bounded by the tail kept.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobline.controller.cache import Obj
from jobline.controller.kube import Kube
from jobline.core.logtail import LogReader
from jobline.models import LogTail

REFRESH_SECONDS = 5.0
BUSY_REFRESH_SECONDS = 15.0  # after a read of more than BUSY_BYTES
BUSY_BYTES = 4 * 1024 * 1024
MAX_CONCURRENT_READS = 2


@dataclass
class _Follow:
    pod_uid: str
    reader: LogReader
    started: float  # when reading this pod began (monotonic)
    last_read: float | None = None
    last_bytes: int = 0
    final: bool = False
    unwritten: bool = False  # read lines (or a read error) not yet in the run's status
    error: str | None = None  # why the last read failed
    error_time: dt.datetime | None = None


class LogTails:
    def __init__(self, kube: Kube, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.clock = clock
        self._lock = threading.Lock()
        self._follows: dict[str, _Follow] = {}  # by run UID
        self._reads = threading.BoundedSemaphore(MAX_CONCURRENT_READS)

    def _follow(self, run_uid: str, pod: Obj, tail_lines: int) -> _Follow:
        pod_uid = pod["metadata"]["uid"]
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is None or follow.pod_uid != pod_uid:  # a new attempt starts afresh
                follow = _Follow(pod_uid, LogReader(tail_lines), self.clock())
                self._follows[run_uid] = follow
            return follow

    def due_in(self, run_uid: str) -> float | None:
        """Seconds until the next refresh read of a running run's log."""
        with self._lock:
            follow = self._follows.get(run_uid)
        if follow is None or follow.final:
            return REFRESH_SECONDS
        return max(0.0, self._next_read(follow) - self.clock())

    def _next_read(self, follow: _Follow) -> float:
        if follow.last_read is None:
            return follow.started + REFRESH_SECONDS
        busy = follow.last_bytes > BUSY_BYTES
        return follow.last_read + (BUSY_REFRESH_SECONDS if busy else REFRESH_SECONDS)

    def read(self, run_uid: str, pod: Obj, tail_lines: int, final: bool, now: bool = False) -> None:
        """Reads what is new of the pod's main container's log, when a read is due (or `now`):
        the last read when `final` (the container ended)."""
        follow = self._follow(run_uid, pod, tail_lines)
        if follow.final or (not final and not now and self.clock() < self._next_read(follow)):
            return
        meta = pod["metadata"]
        container = pod["spec"]["containers"][0]["name"]
        with self._reads:
            chunks = self.kube.stream_log(
                meta["namespace"], meta["name"], container, follow.reader.since()
            )
            if chunks is None:
                return
            size = 0
            follow.reader.begin()
            for chunk in chunks:
                follow.reader.feed(chunk)
                size += len(chunk)
            follow.reader.end(final)
        follow.last_read, follow.last_bytes = self.clock(), size
        follow.final = final
        follow.unwritten = follow.unwritten or size > 0 or final or follow.error is not None
        follow.error = follow.error_time = None

    def failed(self, run_uid: str, pod: Obj, tail_lines: int, why: str, now: dt.datetime) -> None:
        """Records that a read failed: the status says so and why, and the next read waits
        `REFRESH_SECONDS` rather than hammering an apiserver or kubelet that refused."""
        follow = self._follow(run_uid, pod, tail_lines)
        follow.last_read, follow.last_bytes = self.clock(), 0
        if follow.error != why:
            follow.error, follow.unwritten = why, True
            follow.error_time = follow.error_time or now

    def unwritten_tail(self, run_uid: str, now: dt.datetime) -> LogTail | None:
        """The tail, when it holds lines the run's status does not have yet."""
        with self._lock:
            follow = self._follows.get(run_uid)
        if follow is None or not follow.unwritten:
            return None
        tail = follow.reader.tail(now)
        tail.read_error, tail.read_error_time = follow.error, follow.error_time
        return tail

    def written(self, run_uid: str) -> None:
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is not None:
                follow.unwritten = False

    def forget(self, run_uid: str) -> None:
        with self._lock:
            self._follows.pop(run_uid, None)
