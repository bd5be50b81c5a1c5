"""LogReader: incremental reads of a timestamped log, fed in chunks cut anywhere."""

import datetime as dt
import tracemalloc

import pytest

from jobline.core.logtail import (
    LINE_MAX_BYTES,
    TAIL_MAX_BYTES,
    TRUNCATION_MARK,
    LogReader,
    parse_stamp,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def stamped(lines: list[bytes], start_ns: int = 0, step_ns: int = 1000) -> list[bytes]:
    """Lines as the kubelet serves them with timestamps=true, in one second from 00:00:05."""
    out = []
    for i, line in enumerate(lines):
        ns = start_ns + i * step_ns
        out.append(f"2026-01-01T00:00:{5 + ns // 10**9:02d}.{ns % 10**9:09d}Z ".encode() + line)
    return out


def served(lines: list[bytes], since: str | None) -> bytes:
    """What the kubelet returns for a read from `since` (whole seconds)."""
    kept = [
        line
        for line in lines
        if since is None or line[:19] >= since[:19].encode()  # same second or later
    ]
    return b"".join(line + b"\n" for line in kept)


def read(reader: LogReader, log: list[bytes], chunk: int, final: bool) -> None:
    data = served(log, reader.since())
    reader.begin()
    for i in range(0, len(data), chunk):
        reader.feed(data[i : i + chunk])
    reader.end(final)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
def test_chunks_cut_anywhere_give_the_same_tail(chunk: int) -> None:
    log = stamped([f"line {i} é€".encode() for i in range(300)])
    reader = LogReader(tail_lines=100)
    read(reader, log, chunk, final=True)
    tail = reader.tail(NOW)
    assert tail.lines == [f"line {i} é€" for i in range(200, 300)]
    assert (tail.sequence, tail.total_lines, tail.truncated) == (200, 300, True)


def test_reads_from_the_last_second_count_each_line_once() -> None:
    reader = LogReader(tail_lines=5)
    log = stamped([f"line {i}".encode() for i in range(10)])
    read(reader, log, 4, final=False)  # the last line may be half-written: not counted yet
    assert reader.total == 9
    log += stamped([f"line {i}".encode() for i in range(10, 20)], start_ns=10_000)
    read(reader, log, 5, final=False)  # re-reads the whole second, skips what it counted
    assert reader.total == 19
    read(reader, log, 3, final=True)
    tail = reader.tail(NOW)
    assert (tail.total_lines, tail.sequence) == (20, 15)
    assert tail.lines == [f"line {i}" for i in range(15, 20)]


def test_lines_with_identical_timestamps_are_told_apart_by_count() -> None:
    reader = LogReader(tail_lines=10)
    same = stamped([b"a", b"b", b"c"], step_ns=0)  # three lines at the very same instant
    read(reader, same + stamped([b"d"], start_ns=5), 100, final=False)
    assert reader.total == 3  # "d" is held back
    log = same + stamped([b"d", b"e"], start_ns=5, step_ns=0) + stamped([b"f"], start_ns=9)
    read(reader, log, 2, final=True)
    assert reader.tail(NOW).lines == ["a", "b", "c", "d", "e", "f"]
    assert reader.total == 6


def test_a_half_written_last_line_is_read_again_whole() -> None:
    reader = LogReader(tail_lines=10)
    whole = stamped([b"first", b"second line, long"])
    half = [whole[0], whole[1][:-10]]  # the program is still writing the second line
    read(reader, half, 100, final=False)
    read(reader, whole, 100, final=True)
    assert reader.tail(NOW).lines == ["first", "second line, long"]


def test_long_lines_are_cut_and_the_tail_stays_bounded() -> None:
    reader = LogReader(tail_lines=1000)
    log = stamped([b"x" * 100_000 for _ in range(50)])
    read(reader, log, 4096, final=True)
    tail = reader.tail(NOW)
    assert tail.truncated
    assert all(len(line.encode()) <= LINE_MAX_BYTES for line in tail.lines)
    assert sum(len(line.encode()) + 1 for line in tail.lines) <= TAIL_MAX_BYTES
    assert tail.sequence + len(tail.lines) == tail.total_lines == 50


def test_a_huge_line_is_cut_while_it_streams_never_held_whole() -> None:
    line_bytes, chunk = 64 * 1024 * 1024, b"x" * 4096  # a 64 MiB line, fed 4 KiB at a time
    reader = LogReader(tail_lines=10)
    reader.begin()
    tracemalloc.start()
    try:
        for stamp in stamped([b"", b""]):  # two of them, each "<time> xxx...x\n"
            reader.feed(stamp)
            for _ in range(line_bytes // len(chunk)):
                reader.feed(chunk)
            reader.feed(b"\n")
        reader.end(final=True)
        tail = reader.tail(NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024  # what the reader held at most: bytes of a line's cut, not MiB
    assert (tail.total_lines, tail.truncated) == (2, True)
    assert [len(line.encode()) for line in tail.lines] == [LINE_MAX_BYTES] * 2
    assert all(line.endswith(TRUNCATION_MARK) for line in tail.lines)


def test_invalid_utf8_split_across_chunks_is_replaced() -> None:
    reader = LogReader(tail_lines=10)
    log = stamped([b"ok", b"\xff\xfebad", "café".encode()])
    read(reader, log, 1, final=True)
    assert reader.tail(NOW).lines == ["ok", "\ufffd\ufffdbad", "café"]


def test_a_short_log_read_whole_is_not_truncated() -> None:
    reader = LogReader(tail_lines=100)
    read(reader, stamped([b"a", b"b"]), 100, final=True)
    tail = reader.tail(NOW)
    assert (tail.lines, tail.sequence, tail.total_lines, tail.truncated) == (
        ["a", "b"],
        0,
        2,
        False,
    )
    empty = LogReader(tail_lines=100)
    read(empty, [], 100, final=True)
    assert (empty.tail(NOW).lines, empty.tail(NOW).total_lines) == ([], 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"2026-01-01T00:00:05.000000001Z", (1767225605, 1)),
        (b"2026-01-01T00:00:05.5Z", (1767225605, 500_000_000)),
        (b"2026-01-01T01:00:05+01:00", (1767225605, 0)),
        (b"not-a-time", None),
    ],
)
def test_timestamps(raw: bytes, expected: tuple[int, int] | None) -> None:
    assert parse_stamp(raw) == expected


def test_the_last_line_of_a_quiet_program_is_counted_when_a_second_read_finds_it_unchanged() -> (
    None
):
    reader = LogReader(tail_lines=10)
    log = stamped([b"starting", b"working"])
    read(reader, log, 100, final=False)
    assert reader.tail(NOW).lines == ["starting"]  # "working" may still be being written
    read(reader, log, 100, final=False)
    assert reader.tail(NOW).lines == ["starting", "working"]
    read(reader, log, 100, final=False)
    read(reader, log + stamped([b"done"], start_ns=10**6), 100, final=True)
    assert reader.tail(NOW).lines == ["starting", "working", "done"]
    assert reader.total == 3


def test_a_held_line_is_counted_when_the_last_read_brings_nothing() -> None:
    reader = LogReader(tail_lines=10)
    log = stamped([b"extracting", b"done"])
    read(reader, log, 100, final=False)
    assert reader.tail(NOW).lines == ["extracting"]
    reader.begin()  # the container has ended; its last read is empty
    reader.end(final=True)
    assert reader.tail(NOW).lines == ["extracting", "done"]
    assert reader.total == 2


def archived(reader: LogReader) -> tuple[int, bytes]:
    """Every piece the reader has gathered: the first line's number and the bytes."""
    first, data = None, b""
    while (piece := reader.take_piece()) is not None:
        start, count, chunk = piece
        assert start == (first or start) + data.count(b"\n")  # pieces follow each other
        assert chunk.count(b"\n") == count
        first = start if first is None else first
        data += chunk
    return (first or 0), data


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_the_archive_gets_every_line_once_across_reads_and_whole(chunk: int) -> None:
    long = "x" * (3 * LINE_MAX_BYTES)
    texts = [f"line {i}".encode() for i in range(10)] + [long.encode(), b"bad \xff byte"]
    log = stamped(texts)
    reader = LogReader(tail_lines=3)
    reader.archive_after(0)
    read(reader, log[:6], chunk, final=False)  # the 6th line may be torn: held back
    first, data = archived(reader)
    assert (first, data) == (0, b"".join(b"line %d\n" % i for i in range(5)))
    read(reader, log, chunk, final=True)
    first, data = archived(reader)
    rest = [f"line {i}" for i in range(5, 10)] + [long, "bad \ufffd byte"]
    assert (first, data) == (5, "".join(line + "\n" for line in rest).encode())
    tail = reader.tail(NOW)  # the status tail still cuts long lines
    assert tail.lines[1].endswith(" [truncated]") and len(tail.lines[1]) < LINE_MAX_BYTES + 20


def test_the_archive_starts_where_an_earlier_operator_left_it() -> None:
    log = stamped([f"line {i}".encode() for i in range(100)])
    reader = LogReader(tail_lines=10)  # lines 0-59 archived before a restart
    reader.archive_after(60)
    read(reader, log, 64, final=True)
    assert archived(reader) == (60, b"".join(b"line %d\n" % i for i in range(60, 100)))
    assert reader.tail(NOW).total_lines == 100


def test_without_an_archive_nothing_is_gathered() -> None:
    reader = LogReader(tail_lines=10)
    read(reader, stamped([b"one", b"two"]), 64, final=True)
    assert reader.take_piece() is None


def test_after_a_refusal_nothing_piles_up_and_a_rewind_archives_the_lines_again() -> None:
    log = stamped([f"line {i}".encode() for i in range(100)], step_ns=10**7)  # over 1 s
    reader = LogReader(tail_lines=10)
    reader.archive_after(0)
    read(reader, log[:30], 64, final=False)
    assert archived(reader) == (0, b"".join(b"line %d\n" % i for i in range(29)))
    reader.piece_archived()  # the store has lines 0-28
    read(reader, log[:60], 64, final=False)
    reader.take_piece()  # refused:
    reader.pause_archiving()  # nothing piles up in memory meanwhile
    read(reader, log[:80], 64, final=False)
    assert (reader.total, reader.take_piece()) == (79, None)
    reader.rewind()  # the store is back: read again from where it ends
    assert reader.total == 29
    read(reader, log, 64, final=True)
    assert archived(reader) == (29, b"".join(b"line %d\n" % i for i in range(29, 100)))
    tail = reader.tail(NOW)
    assert (tail.total_lines, tail.lines) == (100, [f"line {i}" for i in range(90, 100)])


def test_a_rewind_before_anything_was_archived_reads_from_the_start() -> None:
    log = stamped([f"line {i}".encode() for i in range(50)])
    reader = LogReader(tail_lines=5)
    read(reader, log[:20], 64, final=False)  # the store could not say where it ends
    reader.archive_after(10)  # it can now: lines 0-9 are in it
    reader.rewind()
    read(reader, log, 64, final=True)
    assert archived(reader) == (10, b"".join(b"line %d\n" % i for i in range(10, 50)))
    assert reader.tail(NOW).total_lines == 50


def test_lines_rotated_away_between_reads_are_marked_missing() -> None:
    log = stamped([f"line {i}".encode() for i in range(100)], step_ns=10**8)  # 10 s
    reader = LogReader(tail_lines=5)
    read(reader, log[:30], 64, final=False)  # lines 0-28 counted (29 held back)
    assert reader.total == 29
    # The kubelet rotated the file after line 50: a read finds lines 51 on only.
    read(reader, log[51:], 64, final=True)
    tail = reader.tail(NOW)
    assert tail.missing_before == [29]  # lines were lost before the 30th counted
    assert (tail.total_lines, tail.lines[-1]) == (78, "line 99")


def test_a_read_that_begins_with_the_last_line_counted_marks_nothing() -> None:
    log = stamped([f"line {i}".encode() for i in range(100)], step_ns=10**8)
    reader = LogReader(tail_lines=5)
    read(reader, log[:30], 64, final=False)
    read(reader, log, 64, final=True)
    assert (reader.tail(NOW).missing_before, reader.total) == ([], 100)


def test_a_file_rotated_away_after_the_last_read_is_marked_missing_at_the_end() -> None:
    log = stamped([f"line {i}".encode() for i in range(100)], step_ns=10**8)
    reader = LogReader(tail_lines=5)
    read(reader, log[:60], 64, final=False)  # lines 0-58 counted, 59 held back
    # The kubelet rotated the file after line 80, and the program printed nothing since:
    # the last read finds an empty file. Line 59 was whole; 60-80 are lost.
    read(reader, [], 64, final=True)
    tail = reader.tail(NOW)
    assert (tail.missing_before, tail.total_lines) == ([60], 60)
