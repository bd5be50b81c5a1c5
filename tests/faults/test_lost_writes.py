"""A run's final status write fails once: the retry still carries its exit code and its
last log line (the tail is final only once the write that carries it succeeded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.jobline_fixtures import Jobline, Operator
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.usefixtures("sim")


def test_a_failed_final_status_write_loses_neither_exit_code_nor_last_line(
    jl: Jobline, operator: Operator, tmp_path: Path
) -> None:
    proxy = FaultProxy(jl.cluster.kubeconfig)
    operator.stop()  # the session's operator, replaced by one behind the proxy
    behind = Operator(proxy.kubeconfig(tmp_path / "proxy.kubeconfig"), tmp_path / "op.log")
    behind.start()
    try:
        lines = "\n".join(f"line {i}" for i in range(50))
        jl.pipeline(
            "fragile",
            {
                "sim.jobline.dev/duration": "3s",
                "sim.jobline.dev/log": lines,
                "sim.jobline.dev/exit-code": "7",
            },
        )
        proxy.fail_once(
            lambda method, path, body: (
                method == "PATCH"
                and "/pipelinejobs/fragile-1/status" in path
                and b'"ERROR"' in body
            )
        )
        jl.start("fragile-1", "fragile")
        done = jl.wait_done("fragile-1", timeout=60)
    finally:
        behind.stop()
        proxy.close()
        operator.start()
    assert proxy.failed, "the final status write was never attempted through the proxy"
    assert (done["phase"], done["exitCode"]) == ("ERROR", 7)
    assert done["logs"]["lines"][-1] == "line 49"
    assert done["logs"]["totalLines"] == 50
