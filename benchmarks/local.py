"""What the benchmarks share: a cluster to run on, an operator process of their own,
its CPU and memory, the API requests it made (from the apiserver's audit log), and
watches that note when each object first reached each state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import watch

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "hack" / "cluster" / "cluster.sh"
TICKS = os.sysconf("SC_CLK_TCK")
READ_VERBS = {"get", "list", "watch"}
OPERATOR_AGENTS = ("jobline-operator", "kopf")


def kubeconfig() -> str:
    """KUBECONFIG when set, else the local control plane's (started if need be)."""
    return (
        os.environ.get("KUBECONFIG")
        or subprocess.run(
            ["bash", str(CLUSTER_SH), "up"], stdout=subprocess.PIPE, text=True, check=True
        ).stdout.split()[-1]
    )


def audit_log() -> Path | None:
    """The local plane's audit log; None on another cluster (requests are then not counted)."""
    if os.environ.get("KUBECONFIG"):
        return None
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "audit-log"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.strip()
    return Path(out)


def install_crds(config: str) -> None:
    crds = subprocess.run(
        [sys.executable, "-m", "jobline.cli", "crds"], check=True, stdout=subprocess.PIPE
    ).stdout
    subprocess.run(
        [str(REPO / "hack" / "kubectl.sh"), "apply", "--server-side", "-f", "-"],
        input=crds,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "KUBECONFIG": config},
    )


def operator_code() -> str:
    """Where the operator's package is imported from (PYTHONPATH can point at another tree)."""
    return subprocess.run(
        [sys.executable, "-c", "import jobline, os; print(os.path.dirname(jobline.__file__))"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout.strip()


def log_store_env() -> dict[str, str]:
    """The local plane's log store settings (JOBLINE_ARCHIVE_* and its keys), or those
    of this environment when it names a bucket; {} when there is none."""
    if os.environ.get("JOBLINE_ARCHIVE_BUCKET"):
        return {k: v for k, v in os.environ.items() if k.startswith(("JOBLINE_ARCHIVE_", "AWS_"))}
    path = subprocess.run(
        ["bash", str(CLUSTER_SH), "store-env"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.strip()
    if not path or not Path(path).exists():
        return {}
    lines = Path(path).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def start_operator(
    config: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`jobline operator` serving no ports, so it never clashes with another one; `env`
    adds to (or, with "", clears) this process's environment."""
    log = open(os.environ.get("JOBLINE_BENCH_OPERATOR_LOG", os.devnull), "ab")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobline.cli",
            "operator",
            "--metrics-address=",
            "--health-address=",
            *args,
        ],
        env={**os.environ, "KUBECONFIG": config, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def start_server(config: str, port: int, *args: str) -> subprocess.Popen[bytes]:
    """`jobline server` on 127.0.0.1:`port`, its output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "jobline.cli", "--kubeconfig", config, "server",
         "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bytes_read(pid: int) -> int:
    """Bytes the process read through read(2) and friends, sockets included (rchar)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


class Sampler:
    """Samples a process' resident memory until stopped; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every = pid, every
        self.peak = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mib(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


class Audit:
    """The operator's API requests, read from the audit log from a point on. The apiserver
    rotates the log (to audit-<time>.log beside it) at 100 MB: files are followed by inode."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.inode, self.offset = 0, 0
        self.mark()

    def mark(self) -> None:
        if self.path and self.path.exists():
            stat = self.path.stat()
            self.inode, self.offset = stat.st_ino, stat.st_size

    def _files(self) -> list[tuple[Path, int]]:
        """The files written since the mark, oldest first, each with where to start."""
        assert self.path
        files = sorted(self.path.parent.glob("audit*.log"), key=lambda f: f.stat().st_mtime)
        inodes = [f.stat().st_ino for f in files]
        if self.inode not in inodes:
            return [(f, 0) for f in files]
        start = inodes.index(self.inode)
        return [(f, self.offset if i == start else 0) for i, f in enumerate(files) if i >= start]

    def counts(
        self, user: str | None = None, agents: tuple[str, ...] = OPERATOR_AGENTS
    ) -> Counter[str]:
        """Requests by "verb resource[/subresource]", from the mark on: those of programs
        whose User-Agent starts with one of `agents` (the operator's), or with `user`, that
        user's (as the apiserver authenticated it)."""
        counts: Counter[str] = Counter()
        if not self.path:
            return counts
        for path, offset in self._files():
            with path.open("rb") as f:
                f.seek(offset)
                for line in f:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # the line being written
                    if user is not None:
                        if event.get("user", {}).get("username") != user:
                            continue
                    elif not event.get("userAgent", "").startswith(agents):
                        continue
                    if event.get("stage") != "ResponseComplete":
                        continue
                    ref = event.get("objectRef") or {}
                    sub = ref.get("subresource")
                    resource = ref.get("resource", "?") + (f"/{sub}" if sub else "")
                    counts[f"{event['verb']} {resource}"] += 1
        return counts


def split_reads_writes(counts: Counter[str]) -> tuple[int, int, int]:
    """(reads, writes, watches): watches are long-lived and counted apart."""
    watches = sum(n for k, n in counts.items() if k.split()[0] == "watch")
    reads = sum(n for k, n in counts.items() if k.split()[0] in READ_VERBS) - watches
    writes = sum(counts.values()) - reads - watches
    return reads, writes, watches


class Seen:
    """The first time each (kind, name, state) was seen by a watch."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str, str], float] = {}
        self.lock = threading.Lock()

    def mark(self, kind: str, name: str, state: str) -> None:
        with self.lock:
            self.at.setdefault((kind, name, state), time.monotonic())

    def get(self, kind: str, name: str, state: str) -> float | None:
        with self.lock:
            return self.at.get((kind, name, state))

    def wait(self, kind: str, name: str, state: str, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (found := self.get(kind, name, state)) is not None:
                return found
            time.sleep(0.005)
        raise TimeoutError(f"{kind} {name} never reached {state}")

    def count(self, kind: str, state: str) -> int:
        with self.lock:
            return sum(1 for k in self.at if k[0] == kind and k[2] == state)


def watch_forever(
    list_fn: Callable[..., Any], on_event: Callable[[dict[str, Any]], None], **kw: Any
) -> None:
    """Watches from "now" on, resuming after the stream ends; never raises."""
    version = None
    while True:
        try:
            if version is None:
                listed = list_fn(**kw, _preload_content=False)
                body = json.loads(listed.data)
                for item in body["items"]:
                    on_event(item)
                version = body["metadata"]["resourceVersion"]
            for event in watch.Watch().stream(
                list_fn, timeout_seconds=120, resource_version=version, **kw
            ):
                obj = event["raw_object"]
                if event["type"] == "ERROR":
                    version = None
                    break
                version = obj["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    on_event(obj)
        except Exception:
            version = None
            time.sleep(0.1)


def start_watch(
    list_fn: Callable[..., Any], on_event: Callable[[dict[str, Any]], None], **kw: Any
) -> None:
    threading.Thread(target=watch_forever, args=(list_fn, on_event), kwargs=kw, daemon=True).start()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> str:
    cores = os.cpu_count()
    mem = next(
        int(line.split()[1]) / 1024 / 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return f"{cores} cores, {mem:.0f} GiB"
