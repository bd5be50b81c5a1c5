"""A run's log from any line, for the CLI and the Jobs API: from its pod while the pod
exists (followed until the run ends, if asked); once the pod is gone, from the log
archive (when there is one) and the tail kept in the run's status.

Who may read an archived log is who may read the pod's: the archive is read with the
reader's own store settings, but only after the apiserver says the caller may get
pods/log in the run's namespace (a SelfSubjectAccessReview made as the caller)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from jobline.archive import Archive, ArchiveError, PodLog
from jobline.client.runs import Runs, UserError
from jobline.core.logtail import (
    ARCHIVE_LINE_MAX_BYTES,
    LineSplitter,
    Stamp,
    line_text,
    parse_stamp,
    since_time,
)
from jobline.models import TERMINAL_PHASES

LOG_READY = frozenset({"RUNNING", *TERMINAL_PHASES})  # phases whose log can be followed
STOP_CHECK_SECONDS = 5  # how soon a followed log notices that its reader has gone
_STAMP_BYTES = 40  # a line's RFC 3339 time and the space after it


def log_line_json(number: int, line: str) -> str:
    """One line of a log as NDJSON: {"sequence": N, "line": "..."}."""
    return json.dumps({"sequence": number, "line": line}, ensure_ascii=False)


@dataclass
class RunLog:
    """A run's log from line `sequence` on, as numbered lines. `gone` is set when the
    lines from `gone[0]` up to before `gone[1]` are gone with the pod (neither archived
    nor in the tail); `archived_at` when those lines are in a log archive this reader
    has no settings for."""

    lines: Iterator[tuple[int, str]]
    gone: tuple[int, int] | None = None
    archived_at: str | None = None
    total: int | None = None  # lines of the log the operator has read, when known


def read_log(
    runs: Runs,
    name: str,
    sequence: int,
    follow: bool,
    stop: threading.Event | None = None,
    archive: Archive | None = None,
) -> RunLog:
    """Opens the log (raising UserError for an unknown run, or for an archived log the
    caller may not read). With `follow`, the lines stream until the run ends, once its
    pod runs; setting `stop` (the reader has gone) ends them within seconds."""
    run = runs.get(name)
    status = run.get("status") or {}
    log = _read_log(runs, run, sequence, follow, stop, archive)
    log.total = (status.get("logs") or {}).get("totalLines")
    return log


def _read_log(
    runs: Runs,
    run: dict[str, Any],
    sequence: int,
    follow: bool,
    stop: threading.Event | None,
    archive: Archive | None,
) -> RunLog:
    name, status = run["metadata"]["name"], run.get("status") or {}
    if follow and status.get("phase") not in LOG_READY:
        return RunLog(_once_running(runs, name, sequence, stop, archive))
    pod = status.get("podName")
    # Recorded once its Job exists; for a run from before it was, the apiserver reads the
    # pod's only (or default) container. A run whose main container never ran shows the
    # log of the container that failed before it (an init container, a sidecar).
    container = (status.get("logs") or {}).get("container") or status.get("mainContainer")
    try:
        stream = runs.pod_log(pod, container, follow) if pod else None
    except UserError as e:
        # Lines kept in the run's status are anyone's who may read the run; the rest
        # are for who may read the pod's log.
        tail = status.get("logs") or {}
        if e.status != 403 or follow or sequence < tail.get("sequence", 0):
            raise
        return _kept(runs, run, sequence, None)
    if stream is None:
        return _kept(runs, run, sequence, archive)
    return RunLog(_from_pod(runs, name, str(pod), container, stream, sequence, follow, stop))


def _kept(runs: Runs, run: dict[str, Any], sequence: int, archive: Archive | None) -> RunLog:
    """The log of a run whose pod is gone: its archived lines, then its status tail's."""
    status = run.get("status") or {}
    tail = status.get("logs") or {}
    first, kept = tail.get("sequence", 0), tail.get("lines", [])
    archived = (tail.get("archive") or {}).get("lines", 0)
    from_tail = [(first + i, line) for i, line in enumerate(kept) if first + i >= sequence]
    if sequence >= first or not archived or sequence >= archived:
        gone = (sequence, first) if sequence < first and kept else None
        return RunLog(iter(from_tail), gone)
    gone = (archived, first) if archived < first and kept else None
    if archive is None:
        return RunLog(iter(from_tail), (sequence, first), tail["archive"].get("location"))
    name = run["metadata"]["name"]
    if not runs.may("get", "pods", group="", subresource="log"):
        raise UserError(
            f"the pod of run {name!r} is gone and its log is archived: reading it needs "
            f"permission to get pods/log in namespace {runs.namespace!r}",
            403,
            "Forbidden",
        )
    pod_log = PodLog(runs.namespace, run["metadata"]["uid"], str(status.get("podName")))
    return RunLog(_archived(archive, pod_log, sequence, from_tail), gone)


def through_server(server: str, runs: Runs, name: str, sequence: int) -> Iterator[tuple[int, str]]:
    """The run's log from `sequence` as the Jobs API server serves it (archived lines
    included, for a caller who may get pods/log), asked with the kubeconfig's token if
    it has one: for a reader who has no settings of the log store."""
    url = f"{server.rstrip('/')}/api/v1/namespaces/{runs.namespace}/jobs/{name}/logs"
    headers = {"Accept": "application/x-ndjson"}
    token = runs.api.configuration.api_key.get("authorization") or ""
    if token:
        headers["Authorization"] = token if " " in token else f"Bearer {token}"
    try:
        answer = urllib3.request(
            "GET", url, fields={"sequence": str(sequence)}, headers=headers,
            preload_content=False, timeout=urllib3.Timeout(connect=5, read=60), retries=False,
        )  # fmt: skip
    except urllib3.exceptions.HTTPError as e:
        raise UserError(f"cannot reach the Jobs API server at {server}: {e}", 503) from None
    if answer.status == 204:
        return
    if answer.status != 200:
        try:
            said = json.loads(answer.data).get("message") or answer.reason
        except ValueError:
            said = answer.reason
        raise UserError(f"the Jobs API server at {server} answered {answer.status}: {said}")
    buffer = b""
    for chunk in answer.stream(64 * 1024):
        *whole, buffer = (buffer + chunk).split(b"\n")
        for line in whole:
            if line.strip():
                found = json.loads(line)
                yield int(found["sequence"]), str(found["line"])


def _archived(
    archive: Archive, pod_log: PodLog, sequence: int, from_tail: list[tuple[int, str]]
) -> Iterator[tuple[int, str]]:
    """The archived lines from `sequence`, then the tail's lines after them."""
    last = sequence - 1
    try:
        for number, raw in archive.read_from(pod_log, sequence):
            yield number, raw.rstrip(b"\n").decode("utf-8", errors="replace")
            last = number
    except ArchiveError as e:
        raise UserError(str(e), 503, "ServiceUnavailable") from None
    yield from ((n, line) for n, line in from_tail if n > last)


def _once_running(
    runs: Runs, name: str, sequence: int, stop: threading.Event | None, archive: Archive | None
) -> Iterator[tuple[int, str]]:
    """The followed log of a run whose pod does not run yet: nothing until it runs (or the
    run ends), then its lines. Ends at once if the run is deleted meanwhile."""
    while not (stop and stop.is_set()):
        seen = False
        for run in runs.watch_run(name, timeout=STOP_CHECK_SECONDS):
            seen = True
            if (run.get("status") or {}).get("phase") in LOG_READY:
                yield from read_log(runs, name, sequence, True, stop, archive).lines
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
    """The pod's lines from `sequence` on. A followed stream that goes quiet is asked
    again from the time of the last line read (`sinceTime`), not from the first line."""
    where = _Position()
    while True:
        yield from ((n, line) for n, line in _numbered(stream, where) if n >= sequence)
        if not follow or (stop and stop.is_set()):
            return
        # The stream ended or went quiet: the run may be over (kwok never ends a follow
        # stream on its own), else read on from where we were.
        if (runs.get(name).get("status") or {}).get("phase") in TERMINAL_PHASES:
            final = runs.pod_log(pod, container, follow=False, since_time=where.since())
            if final is not None:
                yield from ((n, line) for n, line in _numbered(final, where) if n >= sequence)
            return
        stream = runs.pod_log(pod, container, follow=True, since_time=where.since())
        if stream is None:
            return


class _Position:
    """How far a reader of a pod's log is: lines counted, the time of the last one, and
    how many lines had that very time (a read from its second gives them again)."""

    def __init__(self) -> None:
        self.total = 0
        self.last_stamp: Stamp | None = None
        self.at_last_stamp = 0
        self._skip = 0

    def since(self) -> str | None:
        self._skip = self.at_last_stamp
        return since_time(self.last_stamp) if self.last_stamp else None

    def count(self, raw: bytes) -> str | None:
        """The line's text if it is new, else None (given by an earlier read)."""
        raw_stamp, _, text = raw.partition(b" ")
        stamp = parse_stamp(raw_stamp)
        if stamp is not None and self.last_stamp is not None:
            if stamp < self.last_stamp:
                return None
            if stamp == self.last_stamp and self._skip > 0:
                self._skip -= 1
                return None
        self._skip = 0
        if stamp is None:  # not stamped: counted, but no place to resume from
            text = raw
        elif stamp == self.last_stamp:
            self.at_last_stamp += 1
        else:
            self.last_stamp, self.at_last_stamp = stamp, 1
        self.total += 1
        return line_text(text[:ARCHIVE_LINE_MAX_BYTES])


def _numbered(stream: Any, where: _Position) -> Iterator[tuple[int, str]]:
    """The stream's new lines, numbered from where the reader was; the last one even
    without a newline. A stream that goes quiet ends without its unfinished line, which
    the next read of the log gives in full. Lines are cut as the log archive cuts them."""
    splitter = LineSplitter(_STAMP_BYTES + ARCHIVE_LINE_MAX_BYTES)
    try:
        for chunk in stream.stream(64 * 1024, decode_content=True):
            for raw in splitter.feed(chunk):
                text = where.count(raw)
                if text is not None:
                    yield where.total - 1, text
    except (ReadTimeoutError, ProtocolError):
        splitter.rest()
    finally:
        stream.release_conn()
    rest = splitter.rest()
    if rest and (text := where.count(rest)) is not None:
        yield where.total - 1, text
