"""LogTails with a log archive, on fakes of our API layer, clock and archive: every line
counted is archived once, a restarted operator resumes where the archive ends, a refusal
is in the status and never holds the run, and a deleted run's archive goes."""

from __future__ import annotations

from jobline.archive import ArchiveError, Piece, PodLog
from jobline.controller.logs import LogTails
from jobline.core.logtail import LogReader
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

    def location(self, log: PodLog) -> str:
        return f"s3://logs/{log.namespace}/{log.run_uid}/{log.pod}/"

    def pieces(self, log: PodLog) -> list[Piece]:
        return [p for p, _ in self.pieces_of.get(log, [])]

    def put(self, log: PodLog, first: int, lines: int, data: bytes) -> Piece:
        if self.refuse:
            raise ArchiveError(self.refuse)
        piece = Piece(first, lines, len(data), f"{first}-{first + lines}")
        self.pieces_of.setdefault(log, []).append((piece, data))
        return piece

    def delete_run(self, namespace: str, run_uid: str) -> int:
        logs = [k for k in self.pieces_of if (k.namespace, k.run_uid) == (namespace, run_uid)]
        return sum(len(self.pieces_of.pop(k)) for k in logs)

    def runs(self) -> list[tuple[str, str]]:
        return sorted({(k.namespace, k.run_uid) for k in self.pieces_of})

    def text(self, log: PodLog = POD_LOG) -> bytes:
        return b"".join(data for _, data in self.pieces_of.get(log, []))


def tails(archive: FakeArchive) -> tuple[LogTails, FakeKube]:
    clock = FakeClock()
    kube = FakeKube(clock)
    logs = LogTails(kube, lambda uid: None, clock, archive)  # type: ignore[arg-type]
    return logs, kube


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


def test_a_refused_write_is_in_the_status_and_the_run_ends_all_the_same() -> None:
    archive = FakeArchive()
    archive.refuse = "the log archive refused the keys"
    logs, kube = tails(archive)
    kube.log_lines["run-1-abc"] = lines(0, 5)
    logs.request("run-1", POD, 10, final=True, at_once=True)
    logs.read("run-1")
    found = logs.unwritten_tail("run-1")
    assert found is not None and found[0].archive is not None
    assert found[0].archive.error == "the log archive refused the keys (archived up to line 0)"
    assert found[0].archive.error_time == START
    assert found[0].lines == [line.decode() for line in lines(0, 5)]
    assert logs.done_for("run-1") == "pod-1"  # the run's end does not wait on the store


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


def test_after_a_refusal_no_lines_pile_up_for_the_archive() -> None:
    archive = FakeArchive()
    archive.refuse = "cannot reach the log archive"
    logs, kube = tails(archive)
    kube.log_lines["run-1-abc"] = lines(0, 5)
    logs.request("run-1", POD, 10, final=False, at_once=True)
    logs.read("run-1")
    kube.log_lines["run-1-abc"] = lines(0, 5000)  # a long log goes on
    archive.refuse = None
    logs.request("run-1", POD, 10, final=True, at_once=True)
    logs.read("run-1")
    reader: LogReader = logs._follows["run-1"].reader
    assert (reader.total, reader.take_piece()) == (5000, None)
    assert archive.pieces_of == {}  # archiving that pod stopped at the refusal


def test_logs_of_runs_deleted_while_no_operator_ran_are_deleted_at_start() -> None:
    archive = FakeArchive()
    for namespace, run_uid in (("data", "kept"), ("data", "deleted"), ("other", "elsewhere")):
        archive.put(PodLog(namespace, run_uid, "pod"), 0, 1, b"one\n")
    logs, _ = tails(archive)
    existing = {"kept"}
    queued = logs.delete_orphans(["data"], lambda namespace, uid: uid in existing)
    assert queued == 1  # the namespace this operator does not watch is not its business
    logs.process_deletion(logs.deletions.get(block=False))
    assert archive.runs() == [("data", "kept"), ("other", "elsewhere")]
    assert logs.delete_orphans(None, lambda namespace, uid: uid in existing) == 1
