"""The bounded tail of a run's log, read incrementally.

The reconciler reads a container's log with `timestamps=true` (each line is
`<RFC 3339 time> <text>`) and, after the first read, from `sinceTime` on. The
apiserver passes `sinceTime` to the kubelet in whole seconds, so every read
starts again at the second of the last line already counted: `LogReader` skips
those lines (by time, and by how many lines it counted at exactly that time), so
that every line is counted once. It keeps only the last `tail_lines` lines, each
cut at 2 KiB, and never holds more than one line beyond them, whatever the log's size.

What `totalLines` counts: the lines of the pod's log that the operator read. The
kubelet serves only the current file of a container's log; when it rotates the
file (by default at 10 MiB) between two reads, the lines in the rotated file that
were not read yet are never counted, and `sequence` numbers continue from the
lines that were.

Told `archive_after(N)`, the reader also gathers every counted line from that
number on, whole (up to `ARCHIVE_LINE_MAX_BYTES`) and with the tail's UTF-8
replacement, into pieces of about `PIECE_BYTES` for the log archive
(`take_piece`); it never holds more than a piece and two lines of them. When the
store refuses a piece, the reader stops gathering (`pause_archiving`) and counts on
for the tail; `rewind` later takes it back to where the archive ends, so that the
next read reads those lines again from the pod and archives them.

A read that does not begin with the last lines counted (their second is served, but
not them, or nothing at all) finds the file rotated away since the last read: the
lines printed between are lost. Where (before which line number) is kept in
`missing_before`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from dataclasses import dataclass

from jobline.models import LogTail

LINE_MAX_BYTES = 2048
TAIL_MAX_BYTES = 32 * 1024
TRUNCATION_MARK = " [truncated]"
PIECE_BYTES = 4 * 1024 * 1024  # an archived piece: bounded memory, few objects
ARCHIVE_LINE_MAX_BYTES = 1024 * 1024  # longer lines are cut in the archive too
_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
# A line's timestamp and the space after it; more than this before a space is not one.
_STAMP_MAX = 40
MISSING_MAX = 20  # places where lines were lost that the status lists

Stamp = tuple[int, int]  # (seconds since the epoch, nanoseconds)


@dataclass(frozen=True)
class _Position:
    """Where the reader is: lines counted, and the time of the last (how many at it)."""

    total: int = 0
    last_stamp: Stamp | None = None
    last_raw_stamp: bytes = b""
    at_last_stamp: int = 0


def parse_stamp(raw: bytes) -> Stamp | None:
    match = _STAMP.fullmatch(raw)
    if match is None:
        return None
    zone = "+00:00" if match[3] == b"Z" else match[3].decode()
    seconds = dt.datetime.fromisoformat(match[1].decode() + zone).timestamp()
    nanos = int((match[2] or b"0").decode().ljust(9, "0"))
    return int(seconds), nanos


def since_time(stamp: Stamp) -> str:
    """The `sinceTime` that reads again from the start of the stamp's second."""
    return dt.datetime.fromtimestamp(stamp[0], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LogReader:
    """One container's log: fed the bytes of successive reads, keeps the counted tail."""

    def __init__(self, tail_lines: int) -> None:
        self.tail_lines = tail_lines
        self.total = 0
        self.missing_before: list[int] = []  # lines were lost before these numbers
        # The archive: lines from `archive_from` on are gathered into the piece, while
        # `gathering`. The position after the last archived line is where `rewind` goes.
        self.archive_from: int | None = None  # None: no archive
        self.gathering = False
        self._piece = bytearray()
        self._piece_first = 0
        self._piece_lines = 0
        self._piece_position = _Position()
        self._archived_position = _Position()
        self._line_max = LINE_MAX_BYTES
        self._kept: deque[tuple[bytes, bool]] = deque()  # (line, was cut)
        self._kept_bytes = 0
        self.last_stamp: Stamp | None = None  # of the last line counted
        self._last_raw_stamp = b""
        self._at_last_stamp = 0  # lines counted with exactly that time
        # State of the current read.
        self._skip = 0
        self._caught_up = True
        self._buffer = bytearray()
        self._overflow = False
        self._pending: tuple[bytes, bytes, bool] | None = None
        self._held: tuple[bytes, bytes, bool] | None = None  # last line held back by a read
        self._fed = False  # the current read brought a line not counted before

    def since(self) -> str | None:
        """Where the next read starts (None: at the beginning)."""
        return since_time(self.last_stamp) if self.last_stamp else None

    def begin(self) -> None:
        """Starts a read from `since()`."""
        self._skip = self._at_last_stamp
        self._caught_up = self.last_stamp is None
        self._buffer.clear()
        self._overflow = False
        self._pending = None
        self._fed = False

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._hold(chunk[start:])
                return
            piece = chunk[start:end]
            if self._buffer:
                self._hold(piece)
                line, cut = bytes(self._buffer), self._overflow
                self._buffer.clear()
                self._overflow = False
            else:
                line, cut = piece, len(piece) > self._line_max + _STAMP_MAX
                line = line[: self._line_max + _STAMP_MAX]
            self._line(line, cut)
            start = end + 1

    def end(self, final: bool) -> None:
        """Ends a read. Unless the container has ended (`final`), its last line may be one
        the program is still writing (a kubelet that reads a log file mid-write serves
        the torn line with a newline): it is held back and read again. A line that the
        next read finds unchanged is complete: it is counted then, so a program that
        went quiet after a line shows it."""
        if self._buffer and final:
            self._line(bytes(self._buffer), self._overflow)
        self._buffer.clear()
        # Not even the last lines counted were served: the file was rotated away since
        # (lines printed after them and before the rotation are lost).
        rotated = not self._caught_up and self._skip > 0
        if self._pending and (final or self._pending == self._held):
            self._count(*self._pending)
            self._pending = None
        elif final and self._held and not self._fed:
            # The container has ended and the last read brought nothing: the line held
            # back earlier was whole.
            self._count(*self._held)
        if rotated:
            self._missing_here()
        self._held, self._pending = self._pending, None

    def tail(self, now: dt.datetime) -> LogTail:
        texts, cut = [], False
        for raw, was_cut in self._kept:
            text = line_text(raw)
            if was_cut or len(text.encode()) > LINE_MAX_BYTES:
                text = _cut(text, LINE_MAX_BYTES - len(TRUNCATION_MARK)) + TRUNCATION_MARK
                cut = True
            texts.append(text)
        size = sum(len(t.encode()) + 1 for t in texts)
        while texts and size > TAIL_MAX_BYTES:  # replacement characters can grow a line
            size -= len(texts.pop(0).encode()) + 1
        sequence = self.total - len(texts)
        return LogTail(
            sequence=sequence,
            lines=texts,
            total_lines=self.total,
            truncated=cut or sequence > 0,
            update_time=now,
            missing_before=list(self.missing_before),
        )

    # --- one line ---------------------------------------------------------------

    def _hold(self, piece: bytes) -> None:
        """Buffers the start of a line, never more than a cut line needs."""
        room = self._line_max + _STAMP_MAX - len(self._buffer)
        if len(piece) > room:
            self._overflow = True
            piece = piece[: max(0, room)]
        self._buffer += piece

    def _line(self, line: bytes, cut: bool) -> None:
        raw_stamp, _, text = line.partition(b" ")
        if not self._caught_up:
            # Lines at or before the last counted one were counted by an earlier read.
            stamp = parse_stamp(raw_stamp)
            assert self.last_stamp is not None
            if stamp is not None and stamp < self.last_stamp:
                return
            if stamp == self.last_stamp and self._skip > 0:
                self._skip -= 1
                return
            if self._skip > 0 and stamp is not None:
                self._missing_here()  # rotated away since the last read
            self._caught_up = True
        self._fed = True  # a held line comes again with the lines after it
        if self._pending:
            self._count(*self._pending)
        self._pending = (raw_stamp, text[: self._line_max], cut or len(text) > self._line_max)

    def _missing_here(self) -> None:
        """Lines are missing before the next line counted."""
        if len(self.missing_before) < MISSING_MAX and self.total not in self.missing_before:
            self.missing_before.append(self.total)

    def _count(self, raw_stamp: bytes, text: bytes, cut: bool) -> None:
        if self.gathering and self.total >= (self.archive_from or 0):
            self._archive(text)
        if len(text) > LINE_MAX_BYTES:
            text, cut = text[:LINE_MAX_BYTES], True
        self.total += 1
        if raw_stamp == self._last_raw_stamp:
            self._at_last_stamp += 1
        else:
            stamp = parse_stamp(raw_stamp)
            if stamp is not None:
                self.last_stamp, self._last_raw_stamp, self._at_last_stamp = stamp, raw_stamp, 1
        self._kept.append((text, cut))
        self._kept_bytes += len(text) + 1
        while self._kept and (
            len(self._kept) > self.tail_lines or self._kept_bytes > TAIL_MAX_BYTES
        ):
            dropped, _ = self._kept.popleft()
            self._kept_bytes -= len(dropped) + 1

    # --- the archive ----------------------------------------------------------------

    def _archive(self, text: bytes) -> None:
        self._piece += line_text(text).encode()
        self._piece += b"\n"
        self._piece_lines += 1

    def archive_after(self, line: int) -> None:
        """Gathers lines for the archive from number `line` on (those before it are
        archived already). Before the first read only."""
        self.archive_from = self._piece_first = line
        self.gathering = True
        self._line_max = ARCHIVE_LINE_MAX_BYTES

    def pause_archiving(self) -> None:
        """Gathers no more lines for the archive, and drops those gathered: the store
        refused them, and a long log must not pile up in memory meanwhile."""
        self.gathering = False
        self._piece.clear()
        self._piece_lines = 0

    def rewind(self) -> None:
        """Goes back to where the archive ends (or to the start of the log, for a reader
        that has archived nothing yet), forgetting the lines counted since: the next
        read counts them again and gathers them for the archive."""
        position, counted = self._archived_position, self.total
        self.total = position.total
        self.last_stamp, self._last_raw_stamp = position.last_stamp, position.last_raw_stamp
        self._at_last_stamp = position.at_last_stamp
        for _ in range(min(counted - position.total, len(self._kept))):
            dropped, _ = self._kept.pop()
            self._kept_bytes -= len(dropped) + 1
        self.missing_before = [n for n in self.missing_before if n <= position.total]
        self.pause_archiving()
        self._piece_first = self.archive_from or 0
        self.gathering = True

    def piece_ready(self) -> bool:
        return len(self._piece) >= PIECE_BYTES

    def take_piece(self) -> tuple[int, int, bytes] | None:
        """The lines gathered for the archive since the last piece, as (number of the
        first, how many, their bytes); None when there are none. `piece_archived` says
        the store has it."""
        if not self._piece_lines:
            return None
        piece = (self._piece_first, self._piece_lines, bytes(self._piece))
        self._piece_first += self._piece_lines
        self._piece.clear()
        self._piece_lines = 0
        self._piece_position = self._position()
        return piece

    def piece_archived(self) -> None:
        """The piece last taken is in the store: the archive ends after it."""
        self._archived_position = self._piece_position
        self.archive_from = self._piece_position.total

    def _position(self) -> _Position:
        return _Position(self.total, self.last_stamp, self._last_raw_stamp, self._at_last_stamp)


class LineSplitter:
    """Cuts a stream's bytes into lines, looking only at the bytes each chunk brings: a
    line longer than `max_bytes` is cut there and the rest of it dropped (a log without
    newlines costs its length once, and never more memory than one line)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        lines, start = [], 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._hold(chunk, start, end)
            lines.append(bytes(self._buffer))
            self._buffer.clear()
            start = end + 1
        self._hold(chunk, start, len(chunk))
        return lines

    def rest(self) -> bytes:
        """The unfinished last line (empty if none), which the splitter then forgets."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def _hold(self, chunk: bytes, start: int, end: int) -> None:
        room = self.max_bytes - len(self._buffer)
        if room > 0:
            self._buffer += chunk[start : min(end, start + room)]


def line_text(raw: bytes) -> str:
    """A line as the status and the archive keep it: bad UTF-8 replaced, no \\r."""
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def _cut(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode("utf-8", errors="ignore")
