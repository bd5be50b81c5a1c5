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
        ({"sim.jobline.dev/log": "one\ntwo"}, b"one\ntwo\n"),
        ({"sim.jobline.dev/log-lines": "3"}, b"line 0\nline 1\nline 2\n"),
        (
            {"sim.jobline.dev/log-lines": "2", "sim.jobline.dev/log-line-bytes": "9"},
            b"line 0 xx\nline 1 xx\n",
        ),
        ({"sim.jobline.dev/log-base64": base64.b64encode(b"\xff\n").decode()}, b"\xff\n"),
        (
            {"sim.jobline.dev/log-lines": "many"},
            b"sim-logs: sim.jobline.dev/log-lines or log-line-bytes is not a number\n",
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


def test_generated_logs_are_written_in_batches_with_their_exact_lines(
    sim_logs: ModuleType, tmp_path: Path
) -> None:
    annotations = {"sim.jobline.dev/log-lines": "3000", "sim.jobline.dev/log-line-bytes": "1000"}
    path = tmp_path / "pod.log"
    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    size = sim_logs.write_at_once(path, sim_logs.log_lines(annotations), start)
    assert size == 3000 * 1000
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3000
    assert lines[-1].split(b" stdout F ", 1)[1] == b"line 2999 " + b"x" * 990


def test_a_growing_log_is_appended_in_whole_lines_with_rising_timestamps(
    sim_logs: ModuleType, tmp_path: Path
) -> None:
    annotations = {"sim.jobline.dev/log-lines": "500", "sim.jobline.dev/log-over": "0.3s"}
    assert sim_logs.spread_seconds(annotations) == 0.3
    path = tmp_path / "pod.log"
    sim_logs.write_over_time(path, sim_logs.log_lines(annotations), 0.3, 500)
    lines = path.read_bytes().splitlines()
    assert [line.split(b" stdout F ", 1)[1] for line in lines] == [
        f"line {i}".encode() for i in range(500)
    ]
    stamps = [line.split(b" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 500
