"""The log archive's store goes away, refuses the keys, or has no such bucket: runs end on
time as without an archive; the archive catches up while the pods exist (an ended pod is
kept for it), the status, the LogArchived condition and an Event say what is missing,
and a store that refuses is not hammered."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobline.archive import Archive, PodLog
from jobline.models import POD_FINALIZER
from tests.cluster.jobline_fixtures import Jobline, Operator, events_of
from tests.conftest import LogStore, wait_for
from tests.faults.tcp_proxy import TcpProxy

pytestmark = pytest.mark.usefixtures("sim")
StartOperator = Callable[..., Operator]


@pytest.fixture
def store_proxy(log_store: LogStore) -> Iterator[TcpProxy]:
    proxy = TcpProxy(log_store.env["JOBLINE_ARCHIVE_ENDPOINT"])
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def archiving_operator(
    jl: Jobline, operator: Operator, log_store: LogStore, tmp_path: Path
) -> Iterator[StartOperator]:
    """Starts an operator of the test's namespace with the store's settings changed as
    asked, in place of the session's."""
    operator.stop()
    started: list[Operator] = []

    def start(**env: str) -> Operator:
        replacement = Operator(
            operator.kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            namespaces=(jl.namespace,),
            env={**log_store.env, **env},
        )
        replacement.start()
        started.append(replacement)
        return replacement

    try:
        yield start
    finally:
        for replacement in started:
            replacement.stop()
        operator.start()


def archived_condition(status: dict[str, Any]) -> tuple[str, str, str] | None:
    for condition in status.get("conditions") or []:
        if condition["type"] == "LogArchived":
            return condition["status"], condition["reason"], condition.get("message", "")
    return None


def held_pods(jl: Jobline, run: str) -> list[str]:
    return [p.metadata.name for p in jl.pods(run) if POD_FINALIZER in (p.metadata.finalizers or [])]


def test_a_store_down_while_runs_log_is_caught_up_and_holds_only_the_pod(
    jl: Jobline, log_store: LogStore, store_proxy: TcpProxy, archiving_operator: StartOperator
) -> None:
    archiving_operator(JOBLINE_ARCHIVE_ENDPOINT=store_proxy.url)
    store_proxy.down()
    lines = 20_000
    jl.pipeline("etl", {"sim.jobline.dev/log-lines": str(lines), "sim.jobline.dev/duration": "6s"})
    started = time.monotonic()
    jl.start("etl-1", "etl")
    done = jl.wait_done("etl-1", timeout=60)
    assert time.monotonic() - started < 40  # the run's end does not wait on the store
    assert (done["phase"], done["logs"]["totalLines"]) == ("COMPLETE", lines)
    status, reason, message = archived_condition(done) or ("", "", "")
    assert (status, reason) == ("False", "ArchiveFailing")
    assert "cannot reach the log archive" in message
    assert held_pods(jl, "etl-1") == [done["podName"]]  # kept for the archive to catch up
    warnings = {(e.type, e.reason) for e in events_of(jl, "PipelineJob", "etl-1")}
    assert ("Warning", "ArchiveFailing") in warnings

    store_proxy.back()

    def caught_up_status() -> dict[str, Any] | None:
        now = jl.status("etl-1")
        where = now["logs"]["archive"]["location"]
        return (
            now
            if archived_condition(now) == ("True", "Archived", f"{lines} lines in {where}")
            else None
        )

    caught_up = wait_for("the archive to catch up", caught_up_status, timeout=120)
    wait_for("the pod to be let go", lambda: not held_pods(jl, "etl-1"))
    archive = Archive.from_env(log_store.env)
    assert archive is not None
    pod_log = PodLog(jl.namespace, jl.run("etl-1")["metadata"]["uid"], caught_up["podName"])
    whole = b"".join(line for _, line in archive.read_from(pod_log, 0))
    expected = b"".join(b"line %d\n" % i for i in range(lines))
    assert hashlib.sha256(whole).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert caught_up["logs"]["archive"]["lines"] == lines


def warnings_of(jl: Jobline, run: str, reason: str) -> int:
    return sum(
        1 for e in events_of(jl, "PipelineJob", run) if (e.type, e.reason) == ("Warning", reason)
    )


def test_wrong_keys_are_one_clear_message_and_no_retry_storm(
    jl: Jobline, store_proxy: TcpProxy, archiving_operator: StartOperator
) -> None:
    archiving_operator(
        JOBLINE_ARCHIVE_ENDPOINT=store_proxy.url, AWS_SECRET_ACCESS_KEY="not-the-key"
    )
    jl.pipeline("etl", {"sim.jobline.dev/log-lines": "100", "sim.jobline.dev/duration": "2s"})
    runs = [f"etl-{i}" for i in range(3)]
    for run in runs:
        jl.start(run, "etl")
    failing = []
    for run in runs:
        done = jl.wait_done(run, timeout=60)
        assert (done["phase"], done["logs"]["totalLines"]) == ("COMPLETE", 100)
        error = done["logs"]["archive"]["error"]  # the store's refusal, and what to fix
        assert error and "AWS_SECRET_ACCESS_KEY" in error
        assert done["logs"]["archive"].get("lines", 0) == 0  # nothing got in
        # Not given up: it tries again while the pod is kept.
        assert archived_condition(done) == ("False", "ArchiveFailing", error)
        failing.append(archived_condition(done))
    before = store_proxy.requests
    assert before > 0  # the store was asked, and refused
    time.sleep(30)
    # Each held pod tries again after a backoff of its own that doubles: a few requests
    # in 30 s, not one per read.
    assert store_proxy.requests - before <= 4 * len(runs)
    # Said once per run, however often it is refused again.
    assert [warnings_of(jl, run, "ArchiveFailing") for run in runs] == [1] * len(runs)
    # And the status holds the same: not rewritten at each refusal, not given up on.
    assert [archived_condition(jl.status(run)) for run in runs] == failing


def test_a_bucket_that_does_not_exist_is_said_in_the_status_and_once_as_an_event(
    jl: Jobline, store_proxy: TcpProxy, archiving_operator: StartOperator
) -> None:
    archiving_operator(
        JOBLINE_ARCHIVE_ENDPOINT=store_proxy.url, JOBLINE_ARCHIVE_BUCKET="no-such-bucket"
    )
    jl.pipeline("etl", {"sim.jobline.dev/log": "a\nb"})
    jl.start("etl-1", "etl")
    done = jl.wait_done("etl-1", timeout=60)
    assert (done["phase"], done["logs"]["lines"]) == ("COMPLETE", ["a", "b"])
    error = done["logs"]["archive"]["error"]
    assert error and "no-such-bucket" in error
    assert done["logs"]["archive"]["location"].startswith("s3://no-such-bucket/")
    assert archived_condition(done) == ("False", "ArchiveFailing", error)
    before = store_proxy.requests
    time.sleep(30)
    assert store_proxy.requests - before <= 4  # one held pod, retried with backoff
    assert warnings_of(jl, "etl-1", "ArchiveFailing") == 1
