"""The log archive's settings, piece names and reads, without a real store: reads go to a
small S3 double over HTTP that serves each object in chunks cut anywhere (the store calls
are tested against a real one in tests/cluster/test_log_archive.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from jobline.archive import Archive, ArchiveSettings, Piece, PodLog

KEYS = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}


def test_no_bucket_means_no_archive() -> None:
    assert ArchiveSettings.from_env({"JOBLINE_ARCHIVE_ENDPOINT": "http://127.0.0.1:1"}) is None


def test_settings_from_the_environment() -> None:
    settings = ArchiveSettings.from_env(
        {
            "JOBLINE_ARCHIVE_BUCKET": "logs",
            "JOBLINE_ARCHIVE_PREFIX": "prod",
            "JOBLINE_ARCHIVE_REGION": "eu-west-1",
        }
    )
    assert settings == ArchiveSettings(
        endpoint="https://s3.amazonaws.com", bucket="logs", prefix="prod/", region="eu-west-1"
    )


def test_piece_names_sort_in_line_order_and_say_their_lines() -> None:
    archive = Archive(ArchiveSettings("http://127.0.0.1:1", "logs", "p/"), {})
    log = PodLog("ns", "uid", "pod")
    names = [archive.key(log, first, end) for first, end in ((999, 1000), (0, 999))]
    assert names == [
        "p/ns/uid/pod/000000000999-000000001000.log",
        "p/ns/uid/pod/000000000000-000000000999.log",
    ]
    assert sorted(names)[0].endswith("000000000000-000000000999.log")


class FakeStore(ThreadingHTTPServer):
    """One bucket, "logs": ListObjectsV2 and GetObject, each object's body sent as the
    HTTP chunks given; `fetched` are the keys read."""

    def __init__(self, objects: dict[str, list[bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), StoreHandler)
        self.objects = objects
        self.fetched: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class StoreHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked bodies
    server: FakeStore

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        bucket, _, key = url.path.lstrip("/").partition("/")
        if bucket != "logs":
            self.answer(404, b"")
        elif not key:
            self.answer(200, self.listing(parse_qs(url.query).get("prefix", [""])[0]))
        elif unquote(key) in self.server.objects:
            self.server.fetched.append(unquote(key))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in self.server.objects[unquote(key)]:
                if chunk:  # an empty chunk would end the body
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.answer(404, b"")

    def listing(self, prefix: str) -> bytes:
        contents = "".join(
            f"<Contents><Key>{key}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
            f'<ETag>"e"</ETag><Size>{sum(map(len, chunks))}</Size>'
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for key, chunks in sorted(self.server.objects.items())
            if key.startswith(prefix)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>logs</Name><Prefix>{prefix}</Prefix><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
        ).encode()

    def answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


LOG = PodLog("ns", "uid", "pod")
FIRST = "p/ns/uid/pod/000000000000-000000000003.log"
SECOND = "p/ns/uid/pod/000000000005-000000000007.log"  # lines 3-4 never archived


@pytest.fixture
def store() -> Iterator[FakeStore]:
    server = FakeStore(
        {
            FIRST: [b"one\ntw", b"o\n", b"", b"thr", b"ee\n"],
            SECOND: [b"fi", b"ve\nsix"],  # its last line without its newline
            "p/ns/uid/pod/notes.txt": [b"not a piece\n"],
            "p/ns/uid/other-pod/000000000000-000000000001.log": [b"another pod's\n"],
        }
    )
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def archive_of(store: FakeStore) -> Archive:
    return Archive(ArchiveSettings(store.url, "logs", "p/", region="us-east-1"), KEYS)


def test_pieces_are_the_logs_own_in_line_order(store: FakeStore) -> None:
    assert archive_of(store).pieces(LOG) == [Piece(0, 3, 14, FIRST), Piece(5, 2, 8, SECOND)]


@pytest.mark.parametrize(
    ("line", "lines", "fetched"),
    [
        (
            0,
            [(0, b"one\n"), (1, b"two\n"), (2, b"three\n"), (5, b"five\n"), (6, b"six")],
            [FIRST, SECOND],
        ),
        (2, [(2, b"three\n"), (5, b"five\n"), (6, b"six")], [FIRST, SECOND]),
        (3, [(5, b"five\n"), (6, b"six")], [SECOND]),  # lines no piece holds: skipped
        (6, [(6, b"six")], [SECOND]),
        (7, [], []),
    ],
)
def test_reads_number_the_lines_from_any_line_and_keep_their_newlines(
    store: FakeStore, line: int, lines: list[tuple[int, bytes]], fetched: list[str]
) -> None:
    assert list(archive_of(store).read_from(LOG, line)) == lines
    assert store.fetched == fetched  # pieces before the line are not read at all
