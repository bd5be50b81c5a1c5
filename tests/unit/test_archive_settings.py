"""The log archive's settings and line splitting, without a store (the store calls are
tested against a real one in tests/cluster/test_log_archive.py)."""

from __future__ import annotations

from jobline.archive import Archive, ArchiveSettings, PodLog, _lines


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


def test_lines_split_across_chunks_keep_their_newlines() -> None:
    chunks = [b"one\ntw", b"o\n", b"", b"three\nfour"]
    assert list(_lines(iter(chunks))) == [b"one\n", b"two\n", b"three\n", b"four"]
