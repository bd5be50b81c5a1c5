"""The log archive: every line of a run's log, kept in an S3-compatible bucket so that it
outlives the run's pod.

The log of a run's pod is a series of objects, one per piece the operator read, each
named by the number of its first line in the pod's whole log (the `sequence` of the
status and the Jobs API):

    <prefix><namespace>/<run UID>/<pod>/<first line>-<line after its last>.log

with both numbers in 12 digits, so that the names sort in line order and a listing
alone says which piece holds line N. An object is written once and never appended to
(S3 has no append). Each attempt (pod) of a run has its own log, numbered from 0 as
the status numbers it; all of a run's live under one prefix, so deleting a run's
archive is one listing and one batch delete.

The operator and the server read the same settings (`ArchiveSettings.from_env`); the
keys come from the environment (a Secret the chart maps) or from the cloud's own
identity (an IAM role for the pod), never from the settings themselves.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.credentials.providers import IamAwsProvider, Provider, StaticProvider
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

_KEYS_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "XAdminUserNotFound",
}
TIMEOUT = urllib3.Timeout(connect=5, read=30)
# What a call to the store raises when it refuses or cannot be reached.
_STORE_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)
_PIECE = re.compile(r"(\d{12})-(\d{12})\.log")
# The user metadata every piece carries: which installation wrote it (the UID of the
# operator's namespace, or JOBLINE_INSTALLATION). Only pieces of its own are ever swept.
INSTALLATION_METADATA = "jobline-installation"
# A run's folder is named by its UID: anything else under the prefix is not a run's.
RUN_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ArchiveError(Exception):
    """The store refused or could not be reached; the message says what to fix."""


@dataclass(frozen=True)
class ArchiveSettings:
    endpoint: str  # https://s3.eu-west-1.amazonaws.com, http://127.0.0.1:9000
    bucket: str
    prefix: str = ""
    region: str | None = None
    ca_file: str | None = None  # a CA bundle for a store with a private certificate

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ArchiveSettings | None:
        """The archive's settings, or None when no archive is configured (no bucket)."""
        bucket = env.get("JOBLINE_ARCHIVE_BUCKET", "")
        if not bucket:
            return None
        prefix = env.get("JOBLINE_ARCHIVE_PREFIX", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(
            endpoint=env.get("JOBLINE_ARCHIVE_ENDPOINT") or "https://s3.amazonaws.com",
            bucket=bucket,
            prefix=prefix,
            region=env.get("JOBLINE_ARCHIVE_REGION") or None,
            ca_file=env.get("JOBLINE_ARCHIVE_CA_FILE") or None,
        )


@dataclass(frozen=True)
class PodLog:
    """Which log: that of one pod of a run."""

    namespace: str
    run_uid: str
    pod: str


@dataclass(frozen=True)
class Piece:
    first: int  # the number of its first line in the whole log (0-based)
    lines: int
    size: int
    key: str

    @property
    def end(self) -> int:
        """The number of the line after its last."""
        return self.first + self.lines


class Archive:
    def __init__(self, settings: ArchiveSettings, env: Mapping[str, str] = os.environ) -> None:
        url = urlsplit(settings.endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ArchiveError(
                f"JOBLINE_ARCHIVE_ENDPOINT must be an http(s) URL, not {settings.endpoint!r}"
            )
        self.settings = settings
        # Who writes: tagged on every piece (see INSTALLATION_METADATA); None until the
        # operator knows, and then nothing it writes may ever be swept.
        self.installation: str | None = None
        # One quick retry at most: a store that refuses is retried by the caller's own
        # backoff, per run, not by a storm of immediate retries here.
        http = urllib3.PoolManager(
            timeout=TIMEOUT,
            maxsize=4,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.ca_file or certifi.where(),
            retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[503]),
        )
        self._client = Minio(
            url.netloc,
            secure=url.scheme == "https",
            region=settings.region,
            http_client=http,
            credentials=_credentials(env),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Archive | None:
        """The archive the environment configures; None without one (no bucket)."""
        settings = ArchiveSettings.from_env(env)
        return cls(settings, env) if settings is not None else None

    def where(self) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.prefix} at {self.settings.endpoint}"

    def location(self, log: PodLog) -> str:
        """Where a pod's pieces are, as a person would look for them."""
        return f"s3://{self.settings.bucket}/{self._log_prefix(log)}"

    def _run_prefix(self, namespace: str, run_uid: str) -> str:
        return f"{self.settings.prefix}{namespace}/{run_uid}/"

    def _log_prefix(self, log: PodLog) -> str:
        return f"{self._run_prefix(log.namespace, log.run_uid)}{log.pod}/"

    def key(self, log: PodLog, first: int, end: int) -> str:
        return f"{self._log_prefix(log)}{first:012d}-{end:012d}.log"

    def check(self) -> None:
        """Raises ArchiveError unless the bucket exists and the keys may use it."""
        try:
            exists = self._client.bucket_exists(self.settings.bucket)
        except _STORE_ERRORS as e:
            raise self._error(e) from None
        if not exists:
            raise ArchiveError(
                f"the log archive's bucket {self.settings.bucket!r} does not exist at "
                f"{self.settings.endpoint}: create it, or set JOBLINE_ARCHIVE_BUCKET "
                "(the chart's logArchive.bucket) to one that does"
            )

    def put(self, log: PodLog, first: int, lines: int, data: bytes) -> Piece:
        """Writes one piece: `lines` lines starting at line `first`, each ending in \\n."""
        key = self.key(log, first, first + lines)
        try:
            self._client.put_object(
                self.settings.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type="text/plain; charset=utf-8",
                metadata={INSTALLATION_METADATA: self.installation} if self.installation else None,
            )
        except _STORE_ERRORS as e:
            raise self._error(e) from None
        return Piece(first, lines, len(data), key)

    def pieces(self, log: PodLog) -> list[Piece]:
        """The log's pieces in line order."""
        found = []
        try:
            prefix = self._log_prefix(log)
            for obj in self._client.list_objects(self.settings.bucket, prefix=prefix):
                key = obj.object_name or ""
                span = _PIECE.fullmatch(key.rsplit("/", 1)[-1])
                if span is not None:  # anything else under the prefix is not ours
                    first, end = int(span[1]), int(span[2])
                    found.append(Piece(first, end - first, obj.size or 0, key))
        except _STORE_ERRORS as e:
            raise self._error(e) from None
        found.sort(key=lambda p: p.first)
        return found

    def read_from(self, log: PodLog, line: int) -> Iterator[tuple[int, bytes]]:
        """The archived lines from number `line` on, numbered, each with its \\n, read
        piece by piece (never a whole log in memory). Lines no piece holds (the kubelet
        rotated them away unread) are skipped: the numbers say where."""
        for piece in self.pieces(log):
            if piece.end <= line:
                continue
            number = piece.first
            try:
                response = self._client.get_object(self.settings.bucket, piece.key)
            except _STORE_ERRORS as e:
                raise self._error(e) from None
            try:
                for raw in _lines(response.stream(64 * 1024)):
                    if number >= line:
                        yield number, raw
                    number += 1
            except _STORE_ERRORS as e:
                raise self._error(e) from None
            finally:
                response.close()
                response.release_conn()

    def delete_run(self, namespace: str, run_uid: str) -> int:
        """Deletes the pieces of all the run's pods; how many there were."""
        try:
            keys = [
                DeleteObject(o.object_name or "")
                for o in self._client.list_objects(
                    self.settings.bucket,
                    prefix=self._run_prefix(namespace, run_uid),
                    recursive=True,
                )
            ]
            errors = list(self._client.remove_objects(self.settings.bucket, keys))
        except _STORE_ERRORS as e:
            raise self._error(e) from None
        if errors:
            raise ArchiveError(f"cannot delete {errors[0].name}: {errors[0].message}")
        return len(keys)

    def written_by(self, namespace: str, run_uid: str) -> str | None:
        """The installation that wrote the run's first piece, as its metadata says; None
        when it says none (written before pieces were tagged, or not by Jobline)."""
        try:
            for obj in self._client.list_objects(
                self.settings.bucket, prefix=self._run_prefix(namespace, run_uid), recursive=True
            ):
                key = obj.object_name or ""
                if _PIECE.fullmatch(key.rsplit("/", 1)[-1]):
                    found = self._client.stat_object(self.settings.bucket, key)
                    meta = found.metadata or {}
                    writer = meta.get(f"x-amz-meta-{INSTALLATION_METADATA}")
                    return str(writer) if writer else None
        except _STORE_ERRORS as e:
            raise self._error(e) from None
        return None

    def runs(self) -> Iterator[tuple[str, str]]:
        """The (namespace, run UID) of every run with an archived log."""
        try:
            for ns in self._client.list_objects(self.settings.bucket, prefix=self.settings.prefix):
                if not ns.is_dir:
                    continue
                for run in self._client.list_objects(self.settings.bucket, prefix=ns.object_name):
                    if run.is_dir:
                        parts = (run.object_name or "").rstrip("/").rsplit("/", 2)
                        yield parts[-2], parts[-1]
        except _STORE_ERRORS as e:
            raise self._error(e) from None

    def _error(self, error: Exception) -> ArchiveError:
        if isinstance(error, S3Error):
            if error.code in _KEYS_REFUSED:
                return ArchiveError(
                    f"the log archive ({self.where()}) refused the keys: {error.code}: "
                    f"{error.message}; check the Secret holding AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY"
                )
            if error.code == "NoSuchBucket":
                return ArchiveError(
                    f"the log archive's bucket {self.settings.bucket!r} does not exist at "
                    f"{self.settings.endpoint}"
                )
            return ArchiveError(f"the log archive ({self.where()}): {error.code}: {error.message}")
        return ArchiveError(f"cannot reach the log archive at {self.settings.endpoint}: {error}")


def _credentials(env: Mapping[str, str]) -> Provider:
    """Keys from the environment (the chart maps them from a Secret); else the pod's
    cloud identity (an IAM role for its ServiceAccount, or the node's)."""
    if env.get("AWS_ACCESS_KEY_ID"):
        return StaticProvider(
            env["AWS_ACCESS_KEY_ID"],
            env.get("AWS_SECRET_ACCESS_KEY", ""),
            env.get("AWS_SESSION_TOKEN") or None,
        )
    return IamAwsProvider()


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield part + b"\n"
    if rest:
        yield rest
