"""hack/cluster/build.sh on a fresh machine: the real node's Debian packages (gcc,
pkg-config, libseccomp-dev for runc) are installed before runc is built, so that the
first `make run` starts the real node. Run with stand-ins for apt-get, dpkg, pkg-config
and go on PATH (a machine without those packages; the Go build itself is not the
point) and every other binary already cached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack" / "cluster"

STUBS = {
    # Installs what it is asked for: dpkg and pkg-config then find it.
    "apt-get": 'echo "apt-get $*" >>"$STUB_LOG"\n'
    'if [ "$1" = install ] || [ "$3" = install ] || echo "$*" | grep -q install; then '
    'touch "$STUB_DIR/installed"; fi',
    "dpkg": '[ -f "$STUB_DIR/installed" ]',
    "pkg-config": '[ -f "$STUB_DIR/installed" ]',
    "id": "echo 0",
    # `go build -o FILE` makes FILE; `go list` names one package.
    "go": 'echo "go $*" >>"$STUB_LOG"\n'
    'case "$1" in list) echo example.com/p ;; build)\n'
    '  out=; prev=; for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done\n'
    '  if [ -n "$out" ] && [ "$out" != /dev/null ]; then : >"$out"; chmod +x "$out"; fi ;;\n'
    "esac",
}


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "=" in line:
            name, value = line.split("=", 1)
            found[name] = value.replace("$CONTAINERD_VERSION", found.get("CONTAINERD_VERSION", ""))
            for key, known in found.items():
                found[name] = found[name].replace(f"${key}", known)
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="the real node is Linux only")
def test_a_fresh_machine_gets_the_nodes_packages_before_runc_is_built(tmp_path: Path) -> None:
    stubs, cache, log = tmp_path / "stubs", tmp_path / "cache", tmp_path / "calls.log"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    v = versions()
    cached = {
        v["CLUSTER_CACHE_KEY"]: ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                 "kubectl", "kubelet", "kube-proxy", "etcd", "kwok", "kwokctl"],
        f"helm-{v['HELM_VERSION']}": ["helm"],
        f"versitygw-{v['STORE_VERSION']}": ["versitygw"],
        f"kueue-{v['KUEUE_VERSION']}": ["kueue"],
        v["RUNTIME_CACHE_KEY"]: ["containerd", "containerd-shim-runc-v2", "ctr"],
    }  # fmt: skip
    for key, names in cached.items():
        (cache / key / "bin").mkdir(parents=True)
        for name in names:
            (cache / key / "bin" / name).write_text("")
            (cache / key / "bin" / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "JOBLINE_CACHE": str(cache),
        "STUB_LOG": str(log),
        "STUB_DIR": str(stubs),
    }
    env.pop("JOBLINE_REAL_NODE", None)
    done = subprocess.run(
        ["bash", str(HACK / "build.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (cache / v["RUNTIME_CACHE_KEY"] / "bin" / "runc").exists(), done.stdout
    calls = log.read_text().splitlines()
    installed = next(i for i, c in enumerate(calls) if c.startswith("apt-get") and "install" in c)
    runc_built = next(i for i, c in enumerate(calls) if "opencontainers/runc" in c)
    assert installed < runc_built
    assert "libseccomp-dev" in calls[installed]
