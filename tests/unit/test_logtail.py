import datetime as dt

from jobline.core.logtail import LINE_MAX_BYTES, TAIL_MAX_BYTES, make_tail

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def numbered(count: int) -> bytes:
    return "".join(f"line {i}\n" for i in range(count)).encode()


def test_keeps_the_last_lines_with_their_sequence() -> None:
    tail = make_tail(numbered(5000), 100, NOW)
    assert tail.total_lines == 5000
    assert tail.sequence == 4900
    assert tail.lines == [f"line {i}" for i in range(4900, 5000)]
    assert not tail.truncated


def test_short_and_empty_logs() -> None:
    assert make_tail(b"a\nb", 100, NOW).lines == ["a", "b"]
    empty = make_tail(b"", 100, NOW)
    assert (empty.lines, empty.total_lines, empty.sequence) == ([], 0, 0)


def test_invalid_utf8_is_replaced() -> None:
    assert make_tail(b"ok\n\xff\xfebad\n", 10, NOW).lines == ["ok", "\ufffd\ufffdbad"]


def test_long_lines_are_cut_and_the_whole_tail_is_bounded() -> None:
    raw = b"".join(b"x" * 100_000 + b"\n" for _ in range(50))
    tail = make_tail(raw, 1000, NOW)
    assert tail.truncated
    assert all(len(line.encode()) <= LINE_MAX_BYTES for line in tail.lines)
    assert sum(len(line.encode()) + 1 for line in tail.lines) <= TAIL_MAX_BYTES
    assert tail.sequence + len(tail.lines) == tail.total_lines == 50
