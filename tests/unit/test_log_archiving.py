"""LogTails with a log archive, on fakes of our API layer, clock and archive: every line
counted is archived once, a restarted operator resumes where the archive ends, a store
that refuses is retried with a backoff of the run's own and caught up while the pod
exists (an ended pod is kept for it, up to a deadline), the run's end never waits on
it, and a deleted run's archive goes."""

from __future__ import annotations

from jobline.archive import ArchiveError, Piece, PodLog
from jobline.controller.log_reader import ARCHIVE_HOLD_SECONDS, LogTails
from tests.unit.fakes import START, FakeClock, FakeKube

POD = {
    "metadata": {"uid": "pod-1", "name": "run-1-abc", "namespace": "data"},
    "spec": {"containers": [{"name": "main"}]},
}
POD_LOG = PodLog("data", "run-1", "run-1-abc")


class FakeArchive:
    """`Archive`'s calls over a dict of pieces; `refuse` makes every write fail."""

    def __init__(self) -> None:
        self.pieces_of: dict[PodLog, list[tuple[Piece, bytes]]] = {}
        self.refuse: str | None = None
        self.writes = 0  # attempted
        self.installation: str | None = "this-cluster"  # what `put` tags pieces with
        self.writers: dict[tuple[str, str], str | None] = {}  # by (namespace, run UID)

    def location(self, log: PodLog) -> str:
        return f"s3://logs/{log.namespace}/{log.run_uid}/{log.pod}/"

    def pieces(self, log: PodLog) -> list[Piece]:
        return [p for p, _ in self.pieces_of.get(log, [])]

    def put(self, log: PodLog, first: int, lines: int, data: bytes) -> Piece:
        self.writes += 1
        if self.refuse:
            raise ArchiveError(self.refuse)
        piece = Piece(first, lines, len(data), f"{first}-{first + lines}")
        self.pieces_of.setdefault(log, []).append((piece, data))
        self.writers.setdefault((log.namespace, log.run_uid), self.installation)
        return piece

    def written_by(self, namespace: str, run_uid: str) -> str | None:
        return self.writers.get((namespace, run_uid))

    def delete_run(self, namespace: str, run_uid: str) -> int:
        logs = [k for k in self.pieces_of if (k.namespace, k.run_uid) == (namespace, run_uid)]
        return sum(len(self.pieces_of.pop(k)) for k in logs)

    def runs(self) -> list[tuple[str, str]]:
        return sorted({(k.namespace, k.run_uid) for k in self.pieces_of})

    def text(self, log: PodLog = POD_LOG) -> bytes:
        return b"".join(data for _, data in self.pieces_of.get(log, []))


def tails(archive: FakeArchive, clock: FakeClock | None = None) -> tuple[LogTails, FakeKube]:
    clock = clock or FakeClock()
    kube = FakeKube(clock)
    logs = LogTails(kube, lambda uid: None, clock, archive)  # type: ignore[arg-type]
    return logs, kube


def whole(first: int, end: int) -> bytes:
    return b"".join(line + b"\n" for line in lines(first, end))


def read_now(logs: LogTails, final: bool = False) -> None:
    logs.request("run-1", POD, 10, final=final, at_once=True)
    logs.read("run-1")


def archive_state(logs: LogTails) -> tuple[int, str | None, bool]:
    found = logs.unwritten_tail("run-1")
    assert found is not None and found[0].archive is not None
    archived = found[0].archive
    return archived.lines, archived.error, archived.incomplete


def lines(first: int, end: int) -> list[bytes]:
    return [b"line %d" % i for i in range(first, end)]


def test_every_line_is_archived_once_and_the_status_says_how_much() -> None:
    archive = FakeArchive()
    logs, kube = tails(archive)
    kube.log_lines["run-1-abc"] = lines(0, 50)
    logs.request("run-1", POD, 10, final=True, at_once=True)
    logs.read("run-1")
    assert archive.text() == b"".join(line + b"\n" for line in lines(0, 50))
    found = logs.unwritten_tail("run-1")
    assert found is not None and found[0].archive is not None
    where = "s3://logs/data/run-1/run-1-abc/"
    assert (found[0].archive.location, found[0].archive.lines) == (where, 50)
    assert logs.done_for("run-1") == "pod-1"


def test_a_restarted_operator_archives_from_where_the_archive_ends() -> None:
    archive = FakeArchive()
    archive.put(POD_LOG, 0, 30, b"".join(line + b"\n" for line in lines(0, 30)))
    logs, kube = tails(archive)  # a new process: it reads the log from the start
    kube.log_lines["run-1-abc"] = lines(0, 50)
    logs.request("run-1", POD, 10, final=True, at_once=True)
    logs.read("run-1")
    assert archive.text() == b"".join(line + b"\n" for line in lines(0, 50))
    assert [(p.first, p.end) for p in archive.pieces(POD_LOG)] == [(0, 30), (30, 50)]


def test_a_store_down_mid_run_is_caught_up_while_the_pod_exists() -> None:
    clock = FakeClock()
    archive = FakeArchive()
    logs, kube = tails(archive, clock)
    kube.log_lines["run-1-abc"] = lines(0, 5)
    read_now(logs)  # lines 0-3 archived; the 5th may be torn: held back
    archive.refuse = "cannot reach the log archive at http://s3.example"
    kube.log_lines["run-1-abc"] = lines(0, 500)
    read_now(logs)
    assert archive_state(logs) == (
        4,
        "cannot reach the log archive at http://s3.example (archived up to line 4)",
        False,
    )
    archive.refuse = None
    clock.advance(5)  # the backoff after one refusal
    kube.log_lines["run-1-abc"] = lines(0, 1000)
    read_now(logs, final=True)
    assert archive.text() == whole(0, 1000)  # no gap, no line twice
    assert archive_state(logs) == (1000, None, False)


def test_refused_keys_are_retried_with_a_backoff_of_the_runs_own() -> None:
    clock = FakeClock()
    archive = FakeArchive()
    archive.refuse = "the log archive refused the keys"
    logs, kube = tails(archive, clock)
    kube.log_lines["run-1-abc"] = lines(0, 5)
    for _ in range(120):  # a read every 5 s for 10 minutes
        read_now(logs)
        clock.advance(5)
    assert archive.writes <= 8  # 5 s, 10 s, 20 s ... up to 5 minutes between tries
    found = logs.unwritten_tail("run-1")
    assert found is not None and found[0].archive is not None
    assert found[0].archive.error == "the log archive refused the keys (archived up to line 0)"
    assert found[0].archive.error_time == START  # when it first failed
    assert found[0].lines == [line.decode() for line in lines(0, 5)]  # the tail goes on


def ended_while_the_store_is_down() -> tuple[LogTails, FakeArchive, FakeClock]:
    """A pod that printed 50 lines and ended, read for the last time with the store down."""
    clock = FakeClock()
    archive = FakeArchive()
    archive.refuse = "cannot reach the log archive"
    logs, kube = tails(archive, clock)
    kube.log_lines["run-1-abc"] = lines(0, 50)
    read_now(logs, final=True)
    return logs, archive, clock


def test_an_ended_pod_is_kept_until_its_archive_catches_up() -> None:
    logs, archive, clock = ended_while_the_store_is_down()
    assert logs.done_for("run-1") == "pod-1"  # the run's end does not wait on the store
    assert logs.archive_pending_for("run-1") == "pod-1"  # its pod does
    logs.forget("run-1")  # the run has ended: what it follows stays until settled
    archive.refuse = None
    clock.advance(5)
    logs.read(logs.queue.get(block=False) or "")  # the retry the last read queued
    assert archive.text() == whole(0, 50)
    assert logs.archive_pending_for("run-1") is None
    assert archive_state(logs) == (50, None, False)
    found = logs.unwritten_tail("run-1")
    assert found is not None
    logs.written("run-1", found[1])  # the status says it: nothing more is kept
    assert logs.unwritten_tail("run-1") is None and logs.done_for("run-1") is None


def test_an_archive_that_cannot_catch_up_gives_up_at_the_deadline() -> None:
    logs, archive, clock = ended_while_the_store_is_down()
    while logs.archive_pending_for("run-1"):
        clock.advance(30)
        key = logs.queue.get(block=False)
        if key is not None:
            logs.read(key)
            logs.queue.done(key)
        assert clock.ticks < 1000 + ARCHIVE_HOLD_SECONDS + 400
    assert archive_state(logs) == (
        0,
        "lines 0-49 are not archived (not archived 600 s after the pod ended): "
        "cannot reach the log archive (archived up to line 0)",
        True,
    )
    assert archive.writes <= 9


def test_a_pipeline_that_opted_out_archives_nothing() -> None:
    archive = FakeArchive()
    logs, kube = tails(archive)
    kube.log_lines["run-1-abc"] = lines(0, 5)
    logs.request("run-1", POD, 10, final=True, at_once=True, archive=False)
    logs.read("run-1")
    found = logs.unwritten_tail("run-1")
    assert found is not None and found[0].archive is None
    assert archive.pieces_of == {}


def test_a_deleted_runs_archive_is_deleted_on_its_own_queue() -> None:
    archive = FakeArchive()
    archive.put(POD_LOG, 0, 1, b"one\n")
    logs, _ = tails(archive)
    logs.delete_archived("data", "run-1")
    key = logs.deletions.get(block=False)
    assert key == ("data", "run-1")
    logs.process_deletion(key)
    assert archive.pieces_of == {}


def uid(n: int) -> str:
    return f"5f0c7e42-0000-4000-8000-{n:012d}"


def test_logs_of_runs_deleted_while_no_operator_ran_are_deleted_at_start() -> None:
    archive = FakeArchive()
    kept, deleted, elsewhere = uid(1), uid(2), uid(3)
    for namespace, run_uid in (("data", kept), ("data", deleted), ("other", elsewhere)):
        archive.put(PodLog(namespace, run_uid, "pod"), 0, 1, b"one\n")
    logs, _ = tails(archive)
    existing = {("data", kept), ("other", elsewhere)}
    queued = logs.delete_orphans(["data"], lambda namespace, uid: (namespace, uid) in existing)
    assert queued == 1  # the namespace this operator does not watch is not its business
    logs.process_deletion(logs.deletions.get(block=False))
    assert archive.runs() == [("data", kept), ("other", elsewhere)]
    existing.remove(("other", elsewhere))
    assert logs.delete_orphans(None, lambda namespace, uid: (namespace, uid) in existing) == 1


def test_the_sweep_deletes_only_what_this_installation_provably_wrote() -> None:
    # A shared bucket (the chart's default prefix is empty): another cluster's runs, files
    # that are not run logs, and logs written before pieces were tagged are not ours.
    archive = FakeArchive()
    cases = {
        ("data", uid(1)): "this-cluster",  # ours, its run deleted: swept
        ("data", uid(2)): "another-cluster",  # a second installation's
        ("data", uid(3)): None,  # written by an older Jobline, or not Jobline at all
        ("data", "backups"): "this-cluster",  # not a run's folder
        ("data", uid(4)): "this-cluster",  # its run exists
        ("data", uid(5)): "this-cluster",  # a run of that UID exists, in another namespace
    }
    for (namespace, run_uid), writer in cases.items():
        archive.installation = writer
        archive.put(PodLog(namespace, run_uid, "pod"), 0, 1, b"one\n")
    archive.installation = "this-cluster"
    logs, _ = tails(archive)
    existing = {("data", uid(4)), ("other", uid(5))}
    logs.delete_orphans(["data"], lambda namespace, uid: (namespace, uid) in existing)
    queued = []
    while (key := logs.deletions.get(block=False)) is not None:
        queued.append(key)
        logs.deletions.done(key)
    assert sorted(queued) == [("data", uid(1)), ("data", uid(5))]
    # An installation that cannot tell who it is sweeps nothing.
    archive.installation = None
    assert logs.delete_orphans(["data"], lambda namespace, uid: False) == 0
