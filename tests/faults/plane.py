"""Faults injected into the local control plane's own processes (started by kwokctl for
this machine's user): freeze one, or kill one and start it again as it was."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _cache

CLUSTER = _cache() / "cluster" / "kwok" / "clusters" / "jobline"


def require_local_plane() -> None:
    if not (CLUSTER / "pids").is_dir():
        pytest.skip("needs the local control plane (it kills and freezes its processes)")


def pid_of(component: str) -> int:
    return int((CLUSTER / "pids" / f"{component}.pid").read_text().strip())


@contextlib.contextmanager
def frozen(component: str) -> Iterator[None]:
    """SIGSTOP for the block's duration: the process holds its connections, answers
    nothing and acts on nothing, as a process stuck on a dead disk or a paused VM."""
    pid = pid_of(component)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def kill(component: str) -> tuple[list[str], str]:
    """SIGKILLs the component; returns how to start it again (command line, directory)."""
    pid = pid_of(component)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    cwd = os.readlink(f"/proc/{pid}/cwd")
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    return [a.decode() for a in argv], cwd


def start(component: str, how: tuple[list[str], str]) -> None:
    """Starts the component again with its command line, as kwokctl did (detached, its
    log appended to kwokctl's), and records its pid where kwokctl looks for it."""
    argv, cwd = how
    with (CLUSTER / "logs" / f"{component}.log").open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (CLUSTER / "pids" / f"{component}.pid").write_text(str(process.pid))


def etcd_client_url() -> str:
    argv = Path(f"/proc/{pid_of('etcd')}/cmdline").read_bytes().split(b"\0")
    for arg in argv:
        if arg.startswith(b"--advertise-client-urls="):
            return arg.split(b"=", 1)[1].decode().split(",")[0]
    raise RuntimeError("etcd's client URL not found")


def compact_etcd() -> None:
    """Compacts etcd to its current revision: every older resourceVersion is gone, so a
    watch resumed from one gets 410 Gone and must list again."""
    url = etcd_client_url()

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    revision = post("/v3/kv/range", {"key": "AA=="})["header"]["revision"]
    post("/v3/kv/compaction", {"revision": revision, "physical": True})
