"""A run's log from any line, for the CLI and the Jobs API: from its pod while the pod
exists (followed until the run ends, if asked), else from the tail kept in the run's
status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import ProtocolError, ReadTimeoutError

from jobline.models import TERMINAL_PHASES
from jobline.runs_api import Runs

LOG_READY = frozenset({"RUNNING", *TERMINAL_PHASES})  # phases whose log can be followed
STOP_CHECK_SECONDS = 5  # how soon a followed log notices that its reader has gone


def log_line_json(number: int, line: str) -> str:
    """One line of a log as NDJSON: {"sequence": N, "line": "..."}."""
    return json.dumps({"sequence": number, "line": line}, ensure_ascii=False)


@dataclass
class RunLog:
    """A run's log from line `sequence` on, as numbered lines: from its pod while the pod
    exists, else from the tail kept in the run's status. `gone_before` is set when lines
    from `sequence` up to it are gone with the pod (the tail starts there)."""

    lines: Iterator[tuple[int, str]]
    gone_before: int | None


def read_log(
    runs: Runs, name: str, sequence: int, follow: bool, stop: threading.Event | None = None
) -> RunLog:
    """Opens the log (raising UserError for an unknown run). With `follow`, the lines
    stream until the run ends, once its pod runs; setting `stop` (the reader has gone)
    ends them within seconds."""
    run = runs.get(name)
    status = run.get("status") or {}
    if follow and status.get("phase") not in LOG_READY:
        return RunLog(_once_running(runs, name, sequence, stop), None)
    pod = status.get("podName")
    # Recorded once its Job exists; for a run from before it was, the apiserver reads the
    # pod's only (or default) container.
    container = status.get("mainContainer")
    stream = runs.pod_log(pod, container, follow) if pod else None
    if stream is None:
        tail = status.get("logs") or {}
        first, kept = tail.get("sequence", 0), tail.get("lines", [])
        numbered = [(first + i, line) for i, line in enumerate(kept) if first + i >= sequence]
        gone = first if sequence < first and kept else None
        return RunLog(iter(numbered), gone)
    lines = _from_pod(runs, name, str(pod), container, stream, sequence, follow, stop)
    return RunLog(lines, None)


def _once_running(
    runs: Runs, name: str, sequence: int, stop: threading.Event | None
) -> Iterator[tuple[int, str]]:
    """The followed log of a run whose pod does not run yet: nothing until it runs (or the
    run ends), then its lines. Ends at once if the run is deleted meanwhile."""
    while not (stop and stop.is_set()):
        seen = False
        for run in runs.watch_run(name, timeout=STOP_CHECK_SECONDS):
            seen = True
            if (run.get("status") or {}).get("phase") in LOG_READY:
                yield from read_log(runs, name, sequence, True, stop).lines
                return
        if not seen:
            return


def _from_pod(
    runs: Runs,
    name: str,
    pod: str,
    container: str | None,
    stream: Any,
    sequence: int,
    follow: bool,
    stop: threading.Event | None,
) -> Iterator[tuple[int, str]]:
    seen = 0  # lines of the pod's log already read (given or skipped)
    while True:
        read = 0
        for number, line in enumerate(_lines(stream)):
            read = number + 1
            if number >= max(seen, sequence):
                yield number, line
        seen = max(seen, read)
        if not follow or (stop and stop.is_set()):
            return
        # The stream ended or went quiet: the run may be over (kwok never ends a follow
        # stream on its own), else read on from where we were.
        if (runs.get(name).get("status") or {}).get("phase") in TERMINAL_PHASES:
            final = runs.pod_log(pod, container, follow=False)
            for number, line in enumerate(_lines(final) if final else ()):
                if number >= max(seen, sequence):
                    yield number, line
            return
        stream = runs.pod_log(pod, container, follow=True)
        if stream is None:
            return


def _lines(stream: Any) -> Iterator[str]:
    """The stream's lines, the last one even without a newline. A stream that goes quiet
    ends without its unfinished line, which the next read of the log gives in full."""
    buffer = b""
    try:
        for chunk in stream.stream(1024, decode_content=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                yield raw.decode("utf-8", errors="replace")
    except (ReadTimeoutError, ProtocolError):
        buffer = b""
    finally:
        stream.release_conn()
    if buffer:
        yield buffer.decode("utf-8", errors="replace")
