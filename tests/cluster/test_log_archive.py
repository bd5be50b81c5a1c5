"""The log archive's store client (`jobline.archive`) against a real S3-compatible
store: the Versity S3 gateway the local plane starts, or the store one names."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest

from jobline.archive import Archive, ArchiveError, ArchiveSettings
from tests.cluster.jobline_fixtures import Jobline
from tests.conftest import LogStore, wait_for

pytestmark = pytest.mark.cluster


def archive_of(store: LogStore, **changes: str) -> Archive:
    settings = ArchiveSettings.from_env({**store.env, **changes})
    assert settings is not None
    return Archive(settings, {**store.env, **changes})


def numbered(first: int, end: int) -> bytes:
    return b"".join(b"line %d\n" % i for i in range(first, end))


def test_pieces_read_back_from_any_line_and_go_with_their_run(log_store: LogStore) -> None:
    archive = archive_of(log_store, JOBLINE_ARCHIVE_PREFIX=f"test-{uuid.uuid4().hex[:8]}")
    archive.check()
    run, other = str(uuid.uuid4()), str(uuid.uuid4())
    # Pieces of uneven size, written out of order: the names keep line order.
    spans = [(0, 1000), (2500, 2501), (1000, 2500), (2501, 20000)]
    for first, end in spans:
        archive.put("data", run, first, end - first, numbered(first, end))
    archive.put("data", other, 0, 1, b"another run\n")
    pieces = archive.pieces("data", run)
    assert [(p.first, p.end) for p in pieces] == sorted(spans)
    assert sum(p.size for p in pieces) == len(numbered(0, 20000))

    whole = b"".join(archive.read_from("data", run, 0))
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(numbered(0, 20000)).hexdigest()
    assert b"".join(archive.read_from("data", run, 15000)) == numbered(15000, 20000)
    assert b"".join(archive.read_from("data", run, 2500)) == numbered(2500, 20000)
    assert list(archive.read_from("data", run, 20000)) == []
    assert sorted(archive.runs()) == sorted([("data", run), ("data", other)])

    assert archive.delete_run("data", run) == len(spans)
    assert archive.pieces("data", run) == []
    assert list(archive.runs()) == [("data", other)]
    archive.delete_run("data", other)


def test_wrong_keys_and_a_missing_bucket_say_what_to_fix(log_store: LogStore) -> None:
    with pytest.raises(ArchiveError, match=r"refused the keys.*AWS_SECRET_ACCESS_KEY"):
        archive_of(log_store, AWS_SECRET_ACCESS_KEY="wrong").check()
    with pytest.raises(ArchiveError, match="bucket 'no-such-bucket' does not exist"):
        archive_of(log_store, JOBLINE_ARCHIVE_BUCKET="no-such-bucket").check()


def test_a_store_that_is_not_there_is_named_in_the_error(log_store: LogStore) -> None:
    with pytest.raises(
        ArchiveError, match=re.escape("cannot reach the log archive at http://127.0.0.1:9")
    ):
        archive_of(log_store, JOBLINE_ARCHIVE_ENDPOINT="http://127.0.0.1:9").check()
    with pytest.raises(ArchiveError, match="must be an http"):
        archive_of(log_store, JOBLINE_ARCHIVE_ENDPOINT="s3.example:9000")


def test_a_runs_whole_log_is_archived_exactly_and_goes_with_the_run(
    jl: Jobline, log_store: LogStore
) -> None:
    # 200,000 numbered lines (1.3 MiB), more than a piece holds at a time in some reads.
    # The pod runs a few seconds: the local plane's helper writes its log meanwhile.
    jl.pipeline("long", {"sim.jobline.dev/log-lines": "200000", "sim.jobline.dev/duration": "8s"})
    jl.pipeline(
        "opted-out", {"sim.jobline.dev/log": "kept in the status only"}, logs={"archive": False}
    )
    jl.start("long-1", "long")
    jl.start("short-1", "opted-out")
    done = jl.wait_done("long-1", timeout=120)
    assert (done["phase"], done["logs"]["totalLines"]) == ("COMPLETE", 200_000)
    uid = jl.run("long-1")["metadata"]["uid"]
    archive = archive_of(log_store)
    expected = b"".join(b"line %d\n" % i for i in range(200_000))
    assert done["logs"]["archive"] == {
        "location": archive.location(jl.namespace, uid),
        "lines": 200_000,
        "bytes": len(expected),
    }
    whole = b"".join(archive.read_from(jl.namespace, uid, 0))
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert next(archive.read_from(jl.namespace, uid, 150_000)) == b"line 150000\n"

    short = jl.wait_done("short-1")
    assert "archive" not in short["logs"]
    assert archive.pieces(jl.namespace, jl.run("short-1")["metadata"]["uid"]) == []

    jl.delete("long-1")
    wait_for("the deleted run's archived log to go", lambda: not archive.pieces(jl.namespace, uid))
