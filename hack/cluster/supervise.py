"""Restarts the local plane's kube-controller-manager and kube-scheduler when they exit,
as a kubelet restarts the static pods of a real control plane.

Both exit when they cannot renew their leader Leases (the apiserver gone for more than
about ten seconds), as Go controllers do, and kwokctl's binary runtime starts them only
once. Each is started again with the command line and directory it had, its output
appended to its log and its pid written where kwokctl (and the fault tests) look for it,
after a backoff that doubles from 1 s to 30 s while it keeps exiting, as the kubelet's
does (from 10 s to 5 min there; shorter here, for tests).

    supervise.py CLUSTER_DIR COMPONENT...    (CLUSTER_DIR holds pids/ and logs/)

Standard library only; ends on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BACKOFF_START, BACKOFF_MAX = 1.0, 30.0
HEALTHY_AFTER = 60.0  # running this long resets the backoff


class Component:
    def __init__(self, cluster: Path, name: str) -> None:
        self.name = name
        self.pid_file = cluster / "pids" / f"{name}.pid"
        self.log_file = cluster / "logs" / f"{name}.log"
        pid = self.pid()
        self.argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        self.cwd = os.readlink(f"/proc/{pid}/cwd")
        self.child: subprocess.Popen[bytes] | None = None
        self.started = time.monotonic()
        self.backoff = BACKOFF_START
        self.restart_at: float | None = None

    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def alive(self) -> bool:
        if self.child is not None:
            return self.child.poll() is None  # reaps it once it has exited
        try:
            state = Path(f"/proc/{self.pid()}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return False
        return state not in ("Z", "X")

    def check(self, now: float) -> None:
        if self.alive():
            if now - self.started > HEALTHY_AFTER:
                self.backoff = BACKOFF_START
            return
        if self.restart_at is None:
            self.restart_at = now + self.backoff
            say(f"{self.name} exited; starting it again in {self.backoff:.0f} s")
            self.backoff = min(BACKOFF_MAX, self.backoff * 2)
        if now >= self.restart_at:
            with self.log_file.open("ab") as log:
                self.child = subprocess.Popen(
                    self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            self.pid_file.write_text(str(self.child.pid))
            self.started, self.restart_at = now, None
            say(f"{self.name} started again (pid {self.child.pid})")


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def main() -> None:
    cluster, names = Path(sys.argv[1]), sys.argv[2:]
    components = [Component(cluster, name) for name in names]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    say(f"supervising {', '.join(names)}")
    while True:
        now = time.monotonic()
        for component in components:
            component.check(now)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
