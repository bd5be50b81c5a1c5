"""What the benchmarks share: a cluster to run on and an operator process of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "hack" / "cluster" / "cluster.sh"


def kubeconfig() -> str:
    """KUBECONFIG when set, else the local control plane's (started if need be)."""
    return (
        os.environ.get("KUBECONFIG")
        or subprocess.run(
            ["bash", str(CLUSTER_SH), "up"], stdout=subprocess.PIPE, text=True, check=True
        ).stdout.split()[-1]
    )


def start_operator(config: str) -> subprocess.Popen[bytes]:
    """`jobline operator` serving no ports, so it never clashes with another one."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobline.cli",
            "operator",
            "--metrics-address=",
            "--health-address=",
        ],
        env={**os.environ, "KUBECONFIG": config},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
