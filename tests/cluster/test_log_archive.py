"""The log archive against a real S3-compatible store (the Versity S3 gateway the local
plane starts, or the store one names): its client (`jobline.archive`), the operator
writing every line of a run's log to it, and the Jobs API and the CLI reading it once the
pod is gone, for callers who may read pods' logs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobline.archive import Archive, ArchiveError, ArchiveSettings, PodLog
from jobline.models import API_GROUP, API_VERSION
from tests.cluster.jobline_fixtures import Jobline, Operator, eventually_gone
from tests.cluster.server_fixtures import READ_RUNS, Server, caller_token
from tests.conftest import LogStore, wait_for

LINES = 200_000

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
    first_try, second_try = PodLog("data", run, "r-1-aaaaa"), PodLog("data", run, "r-1-bbbbb")
    # Pieces of uneven size, written out of order: the names keep line order.
    spans = [(0, 1000), (2500, 2501), (1000, 2500), (2501, 20000)]
    for first, end in spans:
        archive.put(second_try, first, end - first, numbered(first, end))
    archive.put(first_try, 0, 1, b"the first attempt\n")
    archive.put(PodLog("data", other, "o-1-ccccc"), 0, 1, b"another run\n")
    pieces = archive.pieces(second_try)
    assert [(p.first, p.end) for p in pieces] == sorted(spans)
    assert sum(p.size for p in pieces) == len(numbered(0, 20000))

    whole = b"".join(line for _, line in archive.read_from(second_try, 0))
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(numbered(0, 20000)).hexdigest()
    assert next(archive.read_from(second_try, 15000)) == (15000, b"line 15000\n")
    assert b"".join(line for _, line in archive.read_from(second_try, 2500)) == numbered(
        2500, 20000
    )
    assert list(archive.read_from(second_try, 20000)) == []
    assert list(archive.read_from(first_try, 0)) == [(0, b"the first attempt\n")]
    assert sorted(archive.runs()) == sorted([("data", run), ("data", other)])

    assert archive.delete_run("data", run) == len(spans) + 1  # both attempts
    assert archive.pieces(second_try) == archive.pieces(first_try) == []
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


def long_log(jl: Jobline) -> bytes:
    """A Pipeline `long` whose runs print 200,000 numbered lines (1.3 MiB) over a few
    seconds (the local plane's helper writes the pod's log meanwhile), so that the
    operator reads them in several reads; the lines it prints."""
    jl.pipeline("long", {"sim.jobline.dev/log-lines": str(LINES), "sim.jobline.dev/duration": "8s"})
    return b"".join(b"line %d\n" % i for i in range(LINES))


def archived_run(jl: Jobline, archive: Archive, run: str, expected: bytes) -> PodLog:
    """Waits for the run to end and checks that its archive holds exactly `expected`."""
    done = jl.wait_done(run, timeout=120)
    assert (done["phase"], done["logs"]["totalLines"]) == ("COMPLETE", LINES)
    pod_log = PodLog(jl.namespace, jl.run(run)["metadata"]["uid"], done["podName"])
    assert done["logs"]["archive"] == {
        "location": archive.location(pod_log),
        "lines": LINES,
        "bytes": len(expected),
        "incomplete": False,
    }
    whole = b"".join(line for _, line in archive.read_from(pod_log, 0))
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(expected).hexdigest()
    return pod_log


def delete_pods(jl: Jobline, run: str) -> None:
    jl.batch.delete_namespaced_job(run, jl.namespace, propagation_policy="Foreground")
    eventually_gone("the run's pods", lambda: jl.pods(run))


def cli_logs(jl: Jobline, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "jobline"), "--kubeconfig", jl.cluster.kubeconfig,
         "-n", jl.namespace, "logs", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip


def test_a_whole_log_is_served_from_any_line_once_the_pod_is_gone(
    jl: Jobline, log_store: LogStore, server: Server, local_server: Server
) -> None:
    expected = long_log(jl)
    jl.pipeline(
        "opted-out", {"sim.jobline.dev/log": "kept in the status only"}, logs={"archive": False}
    )
    jl.start("long-1", "long")
    jl.start("short-1", "opted-out")
    archive = archive_of(log_store)
    pod_log = archived_run(jl, archive, "long-1", expected)
    delete_pods(jl, "long-1")

    reader = caller_token(jl.cluster, jl.namespace, "reader", READ_RUNS)
    logs = f"/namespaces/{jl.namespace}/jobs/long-1/logs"
    text = server.call("GET", logs, reader, params={"sequence": 150_000})
    assert text.status_code == 200, text.text
    assert "Jobline-Lines-Gone" not in text.headers
    from_150000 = expected[expected.index(b"line 150000\n") :]
    assert hashlib.sha256(text.content).hexdigest() == hashlib.sha256(from_150000).hexdigest()
    as_ndjson = {"Accept": "application/x-ndjson"}
    ndjson = server.call("GET", logs, reader, params={"sequence": 150_000}, headers=as_ndjson)
    numbered = [json.loads(line) for line in ndjson.text.splitlines()]
    assert numbered == [{"sequence": i, "line": f"line {i}"} for i in range(150_000, LINES)]

    # Who may read the run but not its pods' logs: the archive is refused, naming the
    # permission; the tail kept in the run's status stays readable.
    no_logs = [rule for rule in READ_RUNS if rule["apiGroups"] != [""]]
    runs_only = caller_token(jl.cluster, jl.namespace, "runs-only", no_logs)
    refused = server.call("GET", logs, runs_only, params={"sequence": 150_000})
    assert refused.status_code == 403, refused.text
    assert "pods/log" in refused.json()["message"]
    tail = server.call("GET", logs, runs_only, params={"sequence": LINES - 3})
    assert tail.text.splitlines() == [f"line {i}" for i in range(LINES - 3, LINES)]

    # The CLI reads the archive with the same settings as the operator; without them it
    # says where the lines are.
    found = cli_logs(jl, log_store.env, "long-1", "--from", "199997")
    assert (found.returncode, found.stdout.splitlines()) == (
        0,
        ["line 199997", "line 199998", "line 199999"],
    ), found.stderr
    no_settings = {k: "" for k in log_store.env}
    found = cli_logs(jl, no_settings, "long-1", "--from", "100")
    assert found.returncode == 0, found.stderr
    assert f"are in the log archive at {archive.location(pod_log)}" in found.stderr
    # Without the store's keys, through the Jobs API server (as `make run` starts it).
    through = cli_logs(jl, {**no_settings, "JOBLINE_SERVER": local_server.url},
                       "long-1", "--from", "199990")  # fmt: skip
    assert through.returncode == 0, through.stderr
    assert through.stdout.splitlines() == [f"line {i}" for i in range(199_990, LINES)]
    past = cli_logs(jl, log_store.env, "long-1", "--from", str(LINES + 5))
    assert (past.returncode, past.stdout) == (0, "")
    assert f"has {LINES} lines (lines 0-{LINES - 1}): none from line {LINES + 5}" in past.stderr

    short = jl.wait_done("short-1")
    assert "archive" not in short["logs"]
    short_uid = jl.run("short-1")["metadata"]["uid"]
    assert archive.pieces(PodLog(jl.namespace, short_uid, short["podName"])) == []

    jl.delete("long-1")
    wait_for("the deleted run's archived log to go", lambda: not archive.pieces(pod_log))


def test_an_operator_killed_mid_run_leaves_no_gap_and_no_duplicate(
    jl: Jobline, log_store: LogStore, operator: Operator
) -> None:
    expected = long_log(jl)
    archive = archive_of(log_store)
    jl.start("long-2", "long")
    uid = jl.run("long-2")["metadata"]["uid"]

    def some_archived() -> bool:
        pod = jl.status("long-2").get("podName")
        return bool(pod and archive.pieces(PodLog(jl.namespace, uid, pod)))

    try:
        wait_for("a first piece of the log in the archive", some_archived, interval=0.1)
        operator.kill()
        operator.start()
        pod_log = archived_run(jl, archive, "long-2", expected)
    finally:
        if operator.process is None:
            operator.start()
    assert len(archive.pieces(pod_log)) > 1  # archived by both operators


def test_pruned_deleted_and_orphaned_runs_leave_nothing_in_the_bucket(
    jl: Jobline, log_store: LogStore, operator: Operator
) -> None:
    archive = archive_of(log_store)
    jl.pipeline("pruned", {"sim.jobline.dev/log-lines": "10"}, history={"successfulRuns": 1})
    jl.pipeline("deleted", {"sim.jobline.dev/log-lines": "10"})
    for run, pipeline in [("pruned-0", "pruned"), ("pruned-1", "pruned"), ("pruned-2", "pruned"),
                          ("deleted-1", "deleted"), ("deleted-2", "deleted")]:  # fmt: skip
        jl.start(run, pipeline)
        jl.wait_done(run)
    uids = {run: jl.run(run)["metadata"]["uid"] for run in ("pruned-2", "deleted-1", "deleted-2")}

    def in_bucket() -> set[str]:
        return {uid for namespace, uid in archive.runs() if namespace == jl.namespace}

    # History pruning deleted pruned-0 and pruned-1: their logs went with them.
    wait_for("the pruned runs' logs to go", lambda: in_bucket() == set(uids.values()))

    operator.stop()  # deleted while no operator runs: cleaned up when one starts
    try:
        jl.delete("deleted-1")
        eventually_gone("the run", lambda: jl.run("deleted-1"))
        assert uids["deleted-1"] in in_bucket()
    finally:
        operator.start()
    wait_for("the orphaned log to go", lambda: uids["deleted-1"] not in in_bucket())

    # The Pipeline's deletion deletes its runs (they are its dependents), and their logs.
    jl.custom.delete_namespaced_custom_object(
        API_GROUP, API_VERSION, jl.namespace, "pipelines", "deleted"
    )
    wait_for("the deleted Pipeline's run logs to go", lambda: in_bucket() == {uids["pruned-2"]})


def test_a_deleted_namespace_leaves_nothing_in_the_bucket(jl: Jobline, log_store: LogStore) -> None:
    archive = archive_of(log_store)
    name = f"{jl.namespace}-deleted"
    jl.core.create_namespace({"metadata": {"name": name}})
    try:
        other = Jobline(jl.cluster, name)
        other.pipeline("etl", {"sim.jobline.dev/log-lines": "10"})
        other.start("etl-1", "etl")
        assert other.wait_done("etl-1")["logs"]["archive"]["lines"] == 10
    finally:
        jl.core.delete_namespace(name)
    wait_for(
        "the namespace's run logs to go",
        lambda: all(namespace != name for namespace, _ in archive.runs()),
        timeout=120,
    )
