"""The bounded tail of a run's log kept in its status."""

from __future__ import annotations

import datetime as dt

from jobline.models import LogTail

LINE_MAX_BYTES = 2048
TAIL_MAX_BYTES = 32 * 1024
TRUNCATION_MARK = " [truncated]"


def make_tail(raw: bytes, tail_lines: int, now: dt.datetime) -> LogTail:
    """The last `tail_lines` lines of `raw`, each cut at 2 KiB, at most 32 KiB in all.

    Lines are numbered from 0 over the whole log; `sequence` is the number of
    the first line kept. Invalid UTF-8 is replaced, never an error.
    """
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline ending the last line does not start another one
    total = len(lines)
    kept = lines[-tail_lines:] if tail_lines else []
    truncated = False
    texts = []
    for line in kept:
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        if len(text.encode()) > LINE_MAX_BYTES:
            text = _cut(text, LINE_MAX_BYTES - len(TRUNCATION_MARK)) + TRUNCATION_MARK
            truncated = True
        texts.append(text)
    # Drop the oldest kept lines until the whole tail fits.
    size = sum(len(t.encode()) + 1 for t in texts)
    while texts and size > TAIL_MAX_BYTES:
        size -= len(texts.pop(0).encode()) + 1
        truncated = True
    return LogTail(
        sequence=total - len(texts),
        lines=texts,
        total_lines=total,
        truncated=truncated,
        update_time=now,
    )


def _cut(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode("utf-8", errors="ignore")
