"""The log tails of running runs, read incrementally on readers of their own.

A run's sync never reads a log itself: its decision asks for a read of the run's
current pod (`request`), and one of `READERS` threads makes it, so that a slow
kubelet holds a reader, never a run worker with status writes behind it. When a
read is done, the run's sync is queued again (`on_read`) and finds the new lines
(`unwritten_tail`) to write with its status.

Each run's latest started pod has a `LogReader`; a read asks only for the lines
since the last one counted. While the pod runs, a read is due every
`REFRESH_SECONDS` (longer after a read that brought a lot, so that a chatty log
is not re-read at its edge too often); when the pod has ended, or the run is
ending, one last read. Memory per run is bounded by the tail kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from jobline.apiclient import error_message
from jobline.controller.cache import Obj
from jobline.controller.kube import Kube
from jobline.controller.workqueue import WorkQueue, failure_logger
from jobline.core.clock import SYSTEM_CLOCK, Clock
from jobline.core.logtail import LogReader
from jobline.models import LogTail

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
BUSY_REFRESH_SECONDS = 15.0  # after a read of more than BUSY_BYTES
BUSY_BYTES = 4 * 1024 * 1024
READERS = 2  # reads at once, whatever the number of runs


@dataclass
class _Follow:
    pod: Obj
    reader: LogReader
    started: float  # when reading this pod began (monotonic)
    last_read: float | None = None
    last_bytes: int = 0
    final_wanted: bool = False  # the next read is the last one
    final: bool = False  # the last read is done: nothing more is read of this pod
    tail: LogTail | None = None  # as of the last read: the reader's own is mid-read
    version: int = 0  # how many reads (or failures) changed the tail
    written_version: int = 0  # the version the run's status holds
    error: str | None = None  # why the last read failed
    error_time: dt.datetime | None = None

    @property
    def pod_uid(self) -> str:
        return str(self.pod["metadata"].get("uid", ""))


class LogTails:
    def __init__(
        self,
        kube: Kube,
        on_read: Callable[[str], None] = lambda run_uid: None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.kube = kube
        self.on_read = on_read  # told a run's UID when a read of its log is done
        self.clock = clock
        self.queue: WorkQueue[str] = WorkQueue(clock.monotonic)
        self._lock = threading.Lock()
        self._follows: dict[str, _Follow] = {}  # by run UID

    def start(self, readers: int = READERS) -> None:
        self.queue.run_workers(readers, self.read, failure_logger("PipelineJob log"), "log")

    def stop(self) -> None:
        self.queue.stop()

    def request(self, run_uid: str, pod: Obj, tail_lines: int, final: bool, at_once: bool) -> None:
        """Asks for a read of the pod's log when one is due (or `at_once`): the last read
        when `final`. A new pod (the Job's next attempt) starts afresh."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is None or follow.pod_uid != pod["metadata"].get("uid", ""):
                follow = _Follow(pod, LogReader(tail_lines), self.clock.monotonic())
                self._follows[run_uid] = follow
            if follow.final:
                return
            follow.pod = pod
            follow.final_wanted = follow.final_wanted or final
            due = final or at_once or self.clock.monotonic() >= self._next_read(follow)
        if due:
            self.queue.add(run_uid)

    def read(self, run_uid: str) -> None:
        """One read, on a reader thread; the run's sync is queued when it is done."""
        with self._lock:
            follow = self._follows.get(run_uid)
        if follow is None or follow.final:
            return
        final, meta = follow.final_wanted, follow.pod["metadata"]
        container = follow.pod["spec"]["containers"][0]["name"]
        try:
            chunks = self.kube.stream_log(
                meta["namespace"], meta["name"], container, follow.reader.since()
            )
            size = 0
            if chunks is not None:  # None: not started, or gone; nothing more to read
                follow.reader.begin()
                for chunk in chunks:
                    follow.reader.feed(chunk)
                    size += len(chunk)
                follow.reader.end(final)
        except (ApiException, OSError) as e:
            # The run's status must not wait on its log: it says why the log is missing,
            # and the next read waits REFRESH_SECONDS rather than hammering an apiserver
            # or kubelet that refused. A last read that fails is the last one all the same.
            why = read_error(e)
            log.warning("cannot read the log of pod %s: %s", meta["name"], why)
            with self._lock:
                follow.last_read, follow.last_bytes = self.clock.monotonic(), 0
                follow.final = final
                if follow.error != why:
                    follow.error, follow.version = why, follow.version + 1
                    follow.error_time = follow.error_time or self.clock.now()
        else:
            changed = size > 0 or final or follow.error is not None
            tail = follow.reader.tail(self.clock.now()) if changed else follow.tail
            with self._lock:
                follow.last_read, follow.last_bytes = self.clock.monotonic(), size
                follow.final = final
                follow.version += changed
                follow.tail, follow.error, follow.error_time = tail, None, None
        self.on_read(run_uid)

    def due_in(self, run_uid: str) -> float | None:
        """Seconds until the next refresh read of a running run's log."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is None or follow.final:
                return REFRESH_SECONDS
            return max(0.0, self._next_read(follow) - self.clock.monotonic())

    def _next_read(self, follow: _Follow) -> float:
        if follow.last_read is None:
            return follow.started + REFRESH_SECONDS
        busy = follow.last_bytes > BUSY_BYTES
        return follow.last_read + (BUSY_REFRESH_SECONDS if busy else REFRESH_SECONDS)

    def done_for(self, run_uid: str) -> str | None:
        """The UID of the pod whose last log read is done, if any."""
        with self._lock:
            follow = self._follows.get(run_uid)
            return follow.pod_uid if follow is not None and follow.final else None

    def unwritten_tail(self, run_uid: str) -> tuple[LogTail, int] | None:
        """The tail and its version, when it holds what the run's status does not yet."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is None or follow.version == follow.written_version:
                return None
            tail = (follow.tail or LogTail()).model_copy()
            tail.read_error, tail.read_error_time = follow.error, follow.error_time
            return tail, follow.version

    def written(self, run_uid: str, version: int) -> None:
        """The run's status now holds the tail of `version` (a read since is still news)."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is not None:
                follow.written_version = max(follow.written_version, version)

    def forget(self, run_uid: str) -> None:
        with self._lock:
            self._follows.pop(run_uid, None)


def read_error(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"pods/log answered {error.status}: {error_message(error)}"
    return f"the log read failed: {error}"
