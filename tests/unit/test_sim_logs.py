"""The local plane's log helper turns pod annotations into CRI log files."""

import base64
import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

HELPER = Path(__file__).resolve().parents[2] / "hack" / "cluster" / "sim_logs.py"


@pytest.fixture(scope="module")
def sim_logs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sim_logs", HELPER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("annotations", "content"),
    [
        ({}, None),
        ({"other": "x"}, None),
        ({"sim.jobline.dev/log": "one\ntwo"}, b"one\ntwo"),
        ({"sim.jobline.dev/log-lines": "3"}, b"line 0\nline 1\nline 2\n"),
        ({"sim.jobline.dev/log-base64": base64.b64encode(b"\xff\n").decode()}, b"\xff\n"),
        (
            {"sim.jobline.dev/log-lines": "many"},
            b"sim-logs: sim.jobline.dev/log-lines is not a number\n",
        ),
    ],
)
def test_log_content(
    sim_logs: ModuleType, annotations: dict[str, str], content: bytes | None
) -> None:
    assert sim_logs.log_content(annotations) == content


def test_cri_format_keeps_lines_in_order(sim_logs: ModuleType) -> None:
    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    out = sim_logs.cri_format(b"a\n\xffb\n", start)
    assert out == (
        b"2026-01-02T03:04:05.000000000Z stdout F a\n"
        b"2026-01-02T03:04:05.000001000Z stdout F \xffb\n"
    )
    assert sim_logs.cri_format(b"", start) == b""
