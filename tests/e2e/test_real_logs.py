"""Logs as a real kubelet serves them: CRI files rotated under a long log, follow
streams that end with the container."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kubernetes import client

from jobline.archive import Archive, PodLog
from tests.conftest import Cluster, wait_for
from tests.e2e.conftest import RELEASE, RealJobline, Release

# 200,000 numbered lines over about 20 s, so that the kubelet (containerLogMaxSize 1Mi,
# checked every 10 s on the local plane) rotates the file while the run goes on.
NUMBERED = (
    "b=0; while [ $b -lt 20 ]; do "
    "seq $((b*10000)) $((b*10000+9999)) | sed 's/^/line /'; b=$((b+1)); sleep 1; done"
)


def test_a_rotated_log_ends_with_exactly_its_last_lines(jl: RealJobline) -> None:
    jl.real_pipeline("numbers", NUMBERED, logs={"tailLines": 100})
    jl.start("numbers-1", "numbers")
    status = jl.wait_done("numbers-1", timeout=180)
    assert (status["phase"], status["exitCode"]) == ("COMPLETE", 0)
    logs = status["logs"]
    # totalLines counts the lines read; lines of a file rotated away before they were
    # read are not among them (docs/architecture.md), so it may fall short of 200,000,
    # and missingBefore says where lines are missing (a rotation between the last two
    # reads, as the container ends, loses its last lines: missingBefore ends with
    # totalLines). Elsewhere the kept lines follow each other.
    total, missing = logs["totalLines"], logs.get("missingBefore", [])
    assert logs["sequence"] + len(logs["lines"]) == total <= 200_000
    numbers = [int(line.split()[1]) for line in logs["lines"]]
    for i in range(1, len(numbers)):
        assert numbers[i] == numbers[i - 1] + 1 or logs["sequence"] + i in missing
    assert numbers[-1] == 199_999 or total in missing
    assert logs["truncated"] is True


def test_a_rotated_log_is_archived_as_read_and_served_once_the_pod_is_gone(
    cluster: Cluster, jl: RealJobline, release: Release
) -> None:
    """The operator in its pod archives the real container's log while the kubelet
    rotates it: the archive holds every line read, in order, each once; numbers jump
    only where the status says lines were rotated away unread (missingBefore). Once the
    pod is gone, `jobline logs --from` reads the archive."""
    if release.archive is None:
        pytest.skip("no log store: set JOBLINE_ARCHIVE_BUCKET (and keys) for this cluster")
    jl.real_pipeline("kept", NUMBERED, logs={"tailLines": 100})
    jl.start("kept-1", "kept")
    status = jl.wait_done("kept-1", timeout=180)
    logs = status["logs"]
    assert (status["phase"], logs["archive"].get("error")) == ("COMPLETE", None)
    total, missing = logs["totalLines"], logs.get("missingBefore", [])
    assert logs["archive"]["lines"] == total
    archive = Archive.from_env(release.archive.env)
    assert archive is not None
    pod_log = PodLog(jl.namespace, jl.run("kept-1")["metadata"]["uid"], status["podName"])
    numbers = [int(line.split()[1]) for _, line in archive.read_from(pod_log, 0)]
    assert len(numbers) == total
    assert numbers[-1] == 199_999 or total in missing  # lost at the end, and said
    jumps = [i for i in range(1, total) if numbers[i] != numbers[i - 1] + 1]
    assert set(jumps) <= set(missing)  # each line once, in order; gaps only where said
    # Lines rotated away before the first read leave no trace to compare with: the
    # archive may then begin after line 0 (CI saw it begin at 50,000), unmarked.
    if not missing:
        assert numbers == list(range(200_000))

    jl.batch.delete_namespaced_job("kept-1", jl.namespace, propagation_policy="Foreground")
    wait_for("the pod to go", lambda: not jl.pods("kept-1"), timeout=120)
    read = subprocess.run(
        [sys.executable, "-m", "jobline.cli", "--kubeconfig", cluster.kubeconfig,
         "--namespace", jl.namespace, "logs", "kept-1", "--from", str(total - 5)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **release.archive.env},
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == [f"line {n}" for n in numbers[-5:]]


def test_jobline_logs_follow_ends_with_the_container(cluster: Cluster, jl: RealJobline) -> None:
    jl.real_pipeline("counting", "for i in 1 2 3 4 5 6; do echo count $i; sleep 1; done")
    jl.start("counting-1", "counting")
    jl.wait_phase("counting-1", "RUNNING", timeout=120)
    follower = subprocess.Popen(
        [sys.executable, "-m", "jobline.cli", "--kubeconfig", cluster.kubeconfig,
         "--namespace", jl.namespace, "logs", "counting-1", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = follower.communicate(timeout=90)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert out.splitlines() == [f"count {i}" for i in range(1, 7)]
    assert jl.status("counting-1")["phase"] == "COMPLETE"


def test_a_log_that_cannot_be_read_says_why(cluster: Cluster, jl: RealJobline) -> None:
    """The operator's ClusterRole loses `get pods/log` while a run logs: the run's status
    says why its log is missing, and the log comes back once the permission does."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    role = rbac.read_cluster_role(RELEASE)
    kept = [r for r in role.rules if "pods/log" not in (r.resources or [])]
    assert len(kept) == len(role.rules) - 1
    jl.real_pipeline("unread", "echo first; sleep 20; echo last")
    jl.start("unread-1", "unread")
    jl.wait_phase("unread-1", "RUNNING", timeout=120)
    rbac.patch_cluster_role(RELEASE, {"rules": [rbac.api_client.sanitize_for_serialization(r)
                                                for r in kept]})  # fmt: skip
    try:
        logs = wait_for(
            "the status to say why the log is missing",
            lambda: (lg := jl.status("unread-1").get("logs") or {}).get("readError") and lg,
            timeout=60,
        )
        assert "pods/log answered 403" in logs["readError"]
        assert "pods/log" in logs["readError"].split("403", 1)[1]  # the apiserver's words
        assert logs["readErrorTime"]
    finally:
        restored = rbac.read_cluster_role(RELEASE)
        restored.rules = role.rules
        rbac.replace_cluster_role(RELEASE, restored)
    status = jl.wait_done("unread-1", timeout=120)
    assert status["phase"] == "COMPLETE"
    assert status["logs"]["lines"] == ["first", "last"]
    assert "readError" not in status["logs"]


def test_fifty_quick_containers_keep_every_line(jl: RealJobline, release: Release) -> None:
    """A container that prints 10,000 lines and exits at once: the runtime must hand the
    kubelet its last output (containerd 1.6 lost the end in 5 runs of 7), and the
    operator must read and archive all of it, in all 50 runs."""
    runs = 50
    jl.real_pipeline(
        "quick", "seq 1 10000; echo end", concurrencyPolicy="Allow", logs={"tailLines": 3},
        history={"successfulRuns": runs, "failedRuns": runs},
    )  # fmt: skip
    names = [f"quick-{i}" for i in range(runs)]
    for name in names:
        jl.start(name, "quick")
    archive = Archive.from_env(release.archive.env) if release.archive else None
    short = []
    for name in names:
        status = jl.wait_done(name, timeout=300)
        logs = status["logs"]
        if (status["phase"], logs["totalLines"], logs["lines"][-1]) != ("COMPLETE", 10_001, "end"):
            short.append((name, status["phase"], logs["totalLines"], logs["lines"][-1:]))
            continue
        assert logs["lines"] == ["9999", "10000", "end"]
        if archive is not None:
            assert (logs["archive"]["lines"], logs["archive"].get("error")) == (10_001, None)
            pod_log = PodLog(jl.namespace, jl.run(name)["metadata"]["uid"], status["podName"])
            kept = [line.decode().rstrip("\n") for _, line in archive.read_from(pod_log, 0)]
            assert kept == [*(str(n) for n in range(1, 10_001)), "end"], name
    assert not short, f"{len(short)} of {runs} runs lost lines: {short}"
