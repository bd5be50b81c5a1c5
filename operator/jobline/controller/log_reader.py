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

With a log archive (`jobline.archive`), a read also writes every line it counts to
the archive, in pieces, before it is done: a run's last read is done once its last
line is archived, and the pod is released only then. The first read of a pod by this
process starts the archive where the store says it ends, so an operator restarted
mid-run leaves no gap and no duplicate. A write the store refuses pauses the archiving
of that pod (the status says why and how far it got) for a backoff of its own; then
the reader goes back to where the archive ends and reads those lines again. The run's
outcome never waits on the store: a pod whose archive still lacks lines after its last
read is kept and read again until it has them all, or ARCHIVE_HOLD_SECONDS pass.
Deleting a run deletes its archived log, on a worker of its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from jobline.archive import RUN_UID, Archive, ArchiveError, PodLog
from jobline.controller.cache import Obj
from jobline.controller.kube import KubeAPI
from jobline.controller.workqueue import WorkQueue, failure_logger
from jobline.core.clock import SYSTEM_CLOCK, Clock
from jobline.core.logtail import LogReader
from jobline.kube.request import FAILED_REQUEST, describe, error_message
from jobline.models import LogArchive, LogTail

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
BUSY_REFRESH_SECONDS = 15.0  # after a read of more than BUSY_BYTES
BUSY_BYTES = 4 * 1024 * 1024
READERS = 2  # reads at once, whatever the number of runs
ARCHIVE_RETRY_SECONDS = 5.0  # after the store refused; doubles with each refusal in a row
ARCHIVE_RETRY_MAX_SECONDS = 300.0
ARCHIVE_HOLD_SECONDS = 600.0  # an ended pod is kept this long for its archive to catch up


@dataclass
class _Follow:
    pod: Obj
    container: str | None  # None: the main one; else the container that failed before it
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
    archive: LogArchive | None = None  # None: not archived (no archive, or opted out)
    archive_resumed: bool = False  # the archive's end was asked of the store
    archive_failures: int = 0  # refusals in a row: the backoff doubles with each
    archive_retry_at: float = 0.0  # after a refusal, when archiving may try again
    archive_deadline: float | None = None  # after the last read: when to give up
    forgotten: bool = False  # the run has ended: dropped once the archive is settled

    @property
    def archive_pending(self) -> bool:
        """The last read is done, and the archive still lacks lines of this pod."""
        return bool(
            self.final and self.archive and self.archive.error and not self.archive.incomplete
        )

    @property
    def pod_uid(self) -> str:
        return str(self.pod["metadata"].get("uid", ""))

    def pod_log(self, run_uid: str) -> PodLog:
        meta = self.pod["metadata"]
        return PodLog(meta["namespace"], run_uid, meta["name"])


class LogTails:
    def __init__(
        self,
        kube: KubeAPI,
        on_read: Callable[[str], None] = lambda run_uid: None,
        clock: Clock = SYSTEM_CLOCK,
        archive: Archive | None = None,
    ) -> None:
        self.kube = kube
        self.on_read = on_read  # told a run's UID when a read of its log is done
        self.clock = clock
        self.archive = archive
        self.queue: WorkQueue[str] = WorkQueue(clock.monotonic)
        self.deletions: WorkQueue[tuple[str, str]] = WorkQueue(clock.monotonic)
        self._lock = threading.Lock()
        self._follows: dict[str, _Follow] = {}  # by run UID

    def start(self, readers: int = READERS) -> None:
        self.queue.run_workers(readers, self.read, failure_logger("PipelineJob log"), "log")
        if self.archive is not None:
            failed = failure_logger("archived log")
            self.deletions.run_workers(1, self.process_deletion, failed, "log-archive")

    def stop(self) -> None:
        self.queue.stop()
        self.deletions.stop()

    def delete_archived(self, namespace: str, run_uid: str) -> None:
        """The run is deleted: so is its archived log (retried with backoff if the store
        refuses)."""
        if self.archive is not None:
            self.deletions.add((namespace, run_uid))

    def delete_orphans(
        self, namespaces: list[str] | None, run_exists: Callable[[str, str], bool]
    ) -> int:
        """Queues the deletion of the archived logs of runs deleted while no operator ran.
        Called with the caches synced: a run is archived only once it is cached, so the
        archive never holds a run the caches have not seen yet. How many are queued.

        Only what this installation provably wrote goes (a shared bucket, a second
        cluster's installation under the same prefix, files that are not run logs stay):
        a folder named by a run UID, in a watched namespace, with no run of that
        namespace and UID, whose pieces carry this installation's tag. A retention of
        deleted runs' logs would add one more condition here."""
        archive = self.archive
        if archive is None or not archive.installation:
            return 0
        queued = 0
        for namespace, run_uid in archive.runs():
            if (
                RUN_UID.fullmatch(run_uid)
                and (namespaces is None or namespace in namespaces)
                and not run_exists(namespace, run_uid)
                and archive.written_by(namespace, run_uid) == archive.installation
            ):
                self.deletions.add((namespace, run_uid))
                queued += 1
        return queued

    def process_deletion(self, key: tuple[str, str]) -> None:
        assert self.archive is not None
        deleted = self.archive.delete_run(*key)
        if deleted:
            log.info("deleted the archived log of run %s (%d pieces)", key[1], deleted)

    def request(
        self,
        run_uid: str,
        pod: Obj,
        tail_lines: int,
        final: bool,
        at_once: bool,
        archive: bool = True,
        container: str | None = None,
    ) -> None:
        """Asks for a read of the pod's log (its main container's, or `container`'s) when
        one is due (or `at_once`): the last read when `final`; its lines archived too when
        `archive` and there is an archive. A new pod (the Job's next attempt) starts
        afresh."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if (
                follow is None
                or follow.pod_uid != pod["metadata"].get("uid", "")
                or follow.container != container
            ):
                follow = _Follow(pod, container, LogReader(tail_lines), self.clock.monotonic())
                if archive and self.archive is not None:
                    where = self.archive.location(follow.pod_log(run_uid))
                    follow.archive = LogArchive(location=where)
                self._follows[run_uid] = follow
            if follow.final:
                return
            follow.pod = pod
            follow.final_wanted = follow.final_wanted or final
            due = final or at_once or self.clock.monotonic() >= self._next_read(follow)
        if due:
            self.queue.add(run_uid)

    def read(self, run_uid: str) -> None:
        """One read, on a reader thread; the run's sync is queued when it is done. After
        the last read, a pod whose log the archive lacks is read again (from where the
        archive ends) with backoff until the archive has it all or ARCHIVE_HOLD_SECONDS
        pass."""
        with self._lock:
            follow = self._follows.get(run_uid)
        if follow is None or (follow.final and not self._catching_up(run_uid, follow)):
            return
        final, meta = follow.final_wanted, follow.pod["metadata"]
        container = follow.container or follow.pod["spec"]["containers"][0]["name"]
        archiving = self._archiving(run_uid, follow)
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
                    if archiving and follow.reader.piece_ready():
                        archiving = self._archive_piece(run_uid, follow)
                follow.reader.end(final)
                if archiving and self._archive_piece(run_uid, follow):
                    self._archive_caught_up(follow)
            elif follow.final:
                self._give_up_archiving(follow, "the pod is gone")
        except FAILED_REQUEST as e:  # refused, reset mid-stream, timed out, ...
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
            if tail is not None and follow.container:
                tail.container = follow.container
            with self._lock:
                follow.last_read, follow.last_bytes = self.clock.monotonic(), size
                follow.final = final
                follow.version += changed
                follow.tail, follow.error, follow.error_time = tail, None, None
        if final:
            self._hold_for_archive(run_uid, follow)
        self.on_read(run_uid)

    # --- the archive ----------------------------------------------------------------

    def _archiving(self, run_uid: str, follow: _Follow) -> bool:
        """Whether this read archives its lines. On the first read of the pod by this
        process, the archive is resumed where the store says it ends; after a refusal,
        once its backoff has passed, the reader goes back to where the archive ends."""
        if self.archive is None or follow.archive is None or follow.archive.incomplete:
            return False
        if follow.archive.error and self.clock.monotonic() < follow.archive_retry_at:
            return False
        if not follow.archive_resumed:
            try:
                pieces = self.archive.pieces(follow.pod_log(run_uid))
            except ArchiveError as e:
                self._archive_failed(follow, str(e))
                return False
            end = pieces[-1].end if pieces else 0
            follow.reader.archive_after(end)
            with self._lock:
                follow.archive.lines, follow.archive.bytes = end, sum(p.size for p in pieces)
            follow.archive_resumed = True
        if follow.archive.error:
            follow.reader.rewind()  # lines counted since the archive's end: read them again
        return True

    def _archive_piece(self, run_uid: str, follow: _Follow) -> bool:
        """Writes the lines the reader has gathered; False when the store refused."""
        assert self.archive is not None and follow.archive is not None
        piece = follow.reader.take_piece()
        if piece is None:
            return True
        first, lines, data = piece
        try:
            self.archive.put(follow.pod_log(run_uid), first, lines, data)
        except ArchiveError as e:
            self._archive_failed(follow, f"{e} (archived up to line {first})")
            return False
        follow.reader.piece_archived()
        with self._lock:
            follow.archive.lines, follow.archive.bytes = (
                first + lines,
                follow.archive.bytes + len(data),
            )
        return True

    def _archive_failed(self, follow: _Follow, why: str) -> None:
        """The store refused: the status says why, and the pod's archiving waits a backoff
        of its own (doubling, up to ARCHIVE_RETRY_MAX_SECONDS) before it tries again."""
        follow.reader.pause_archiving()
        follow.archive_failures += 1
        backoff = ARCHIVE_RETRY_SECONDS * 2 ** min(follow.archive_failures - 1, 10)
        follow.archive_retry_at = self.clock.monotonic() + min(backoff, ARCHIVE_RETRY_MAX_SECONDS)
        assert follow.archive is not None
        news = follow.archive.error != why  # the same refusal again is said once
        if news:
            log.warning("cannot archive the log of pod %s: %s", follow.pod["metadata"]["name"], why)
        with self._lock:
            if news:
                follow.archive.error, follow.version = why, follow.version + 1
            follow.archive.error_time = follow.archive.error_time or self.clock.now()

    def _archive_caught_up(self, follow: _Follow) -> None:
        """The archive holds every line counted: a refusal before is over."""
        assert follow.archive is not None
        follow.archive_failures = 0
        if follow.archive.error:
            log.info("the log of pod %s is archived again", follow.pod["metadata"]["name"])
            with self._lock:
                follow.archive.error = follow.archive.error_time = None
                follow.version += 1

    def _catching_up(self, run_uid: str, follow: _Follow) -> bool:
        """Whether the pod, read for the last time, is read again for its archive; gives
        up once ARCHIVE_HOLD_SECONDS have passed since its last read."""
        if not follow.archive_pending:
            return False
        if follow.archive_deadline is not None and (
            self.clock.monotonic() >= follow.archive_deadline
        ):
            self._give_up_archiving(
                follow, f"not archived {ARCHIVE_HOLD_SECONDS:.0f} s after the pod ended"
            )
            self.on_read(run_uid)
            return False
        return True

    def _hold_for_archive(self, run_uid: str, follow: _Follow) -> None:
        """After the last read: a pod whose lines the archive lacks is kept (its
        finalizer) and read again once its backoff passes, until the deadline."""
        if not follow.archive_pending:
            return
        now = self.clock.monotonic()
        if follow.archive_deadline is None:
            follow.archive_deadline = now + ARCHIVE_HOLD_SECONDS
        due = min(follow.archive_retry_at, follow.archive_deadline)
        self.queue.add_after(run_uid, max(0.0, due - now))

    def _give_up_archiving(self, follow: _Follow, why: str) -> None:
        if not follow.archive_pending:
            return
        assert follow.archive is not None
        lost = f"lines {follow.archive.lines}-{follow.reader.total - 1} are not archived"
        message = f"{lost} ({why}): {follow.archive.error}"
        log.warning(
            "gave up archiving the log of pod %s: %s", follow.pod["metadata"]["name"], message
        )
        with self._lock:
            follow.archive.incomplete = True
            follow.archive.error, follow.version = message, follow.version + 1

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

    def archive_pending_for(self, run_uid: str) -> str | None:
        """The UID of the pod kept for its archive to catch up, if any."""
        with self._lock:
            follow = self._follows.get(run_uid)
            return follow.pod_uid if follow is not None and follow.archive_pending else None

    def unwritten_tail(self, run_uid: str) -> tuple[LogTail, int] | None:
        """The tail and its version, when it holds what the run's status does not yet."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is None or follow.version == follow.written_version:
                return None
            tail = (follow.tail or LogTail()).model_copy()
            tail.read_error, tail.read_error_time = follow.error, follow.error_time
            tail.archive = follow.archive.model_copy() if follow.archive else None
            return tail, follow.version

    def written(self, run_uid: str, version: int) -> None:
        """The run's status now holds the tail of `version` (a read since is still news)."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is not None:
                follow.written_version = max(follow.written_version, version)
                if follow.forgotten and not follow.archive_pending:
                    del self._follows[run_uid]

    def following(self) -> int:
        """How many runs' logs are followed (or kept for their archive to catch up)."""
        with self._lock:
            return len(self._follows)

    def forget(self, run_uid: str, deleted: bool = False) -> None:
        """The run has ended (or is `deleted`): its pod is read no more. One whose archive
        is catching up is kept until that is settled and written."""
        with self._lock:
            follow = self._follows.get(run_uid)
            if follow is None:
                return
            if deleted or not follow.archive_pending:
                del self._follows[run_uid]
            else:
                follow.forgotten = True


def read_error(error: Exception) -> str:
    if isinstance(error, ApiException) and error.status:
        return f"pods/log answered {error.status}: {error_message(error)}"
    return f"the log read failed: {describe(error)}"
