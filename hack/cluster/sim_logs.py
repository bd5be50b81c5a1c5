"""Serves the log of every simulated pod that asks for one by annotation.

kwok runs no containers; it serves `GET pods/{name}/log` from CRI-format files
named by a `Logs` object (kwok.x-k8s.io/v1alpha1) of the pod's name. This
helper watches pods, and for each one annotated with

    sim.jobline.dev/log: "line one\\nline two"     (these lines)
    sim.jobline.dev/log-lines: "5000"              (line 0 ... line 4999)
    sim.jobline.dev/log-base64: "<base64>"         (raw bytes, may be invalid UTF-8)

and, for generated lines only,

    sim.jobline.dev/log-line-bytes: "1024"   (each line padded with "x" to this width)
    sim.jobline.dev/log-over: "20s"          (lines appended as time passes, over 20 s,
                                              each stamped when written: a growing log)

writes the file and creates the Logs object, owned by the pod so that the
garbage collector removes it with the pod. Files of deleted pods are removed.
Every other pod gets the empty log of the cluster-wide ClusterLogs default.

It keeps going through API errors, pods deleted mid-way and watch expiry: a
test helper that stops serving logs would fail unrelated tests much later.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

ANNOTATION_LOG = "sim.jobline.dev/log"
ANNOTATION_LOG_LINES = "sim.jobline.dev/log-lines"
ANNOTATION_LOG_BASE64 = "sim.jobline.dev/log-base64"
ANNOTATION_LINE_BYTES = "sim.jobline.dev/log-line-bytes"
ANNOTATION_LOG_OVER = "sim.jobline.dev/log-over"
MAX_GENERATED_LINES = 100_000_000
MAX_LINE_BYTES = 1024 * 1024
WRITE_BATCH_BYTES = 1024 * 1024  # generated logs are written in batches, never held whole
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"

log = logging.getLogger("sim-logs")


def generated_line(number: int, width: int) -> bytes:
    """Line `number` of a generated log: "line N", padded with "x" to `width` bytes."""
    text = f"line {number}"
    if width > len(text) + 1:
        text += " " + "x" * (width - len(text) - 1)
    return text.encode()


def log_lines(annotations: dict[str, str]) -> Iterator[bytes] | None:
    """The lines (without newlines) a pod's annotations ask for, or None when none."""
    if ANNOTATION_LOG_BASE64 in annotations:
        try:
            raw = base64.b64decode(annotations[ANNOTATION_LOG_BASE64], validate=True)
        except (binascii.Error, ValueError):
            raw = b"sim-logs: sim.jobline.dev/log-base64 is not valid base64\n"
        return iter(split_lines(raw))
    if ANNOTATION_LOG_LINES in annotations:
        try:
            count = min(int(annotations[ANNOTATION_LOG_LINES]), MAX_GENERATED_LINES)
            width = min(int(annotations.get(ANNOTATION_LINE_BYTES, "0")), MAX_LINE_BYTES)
        except ValueError:
            return iter([b"sim-logs: sim.jobline.dev/log-lines or log-line-bytes is not a number"])
        return (generated_line(i, width) for i in range(count))
    if ANNOTATION_LOG in annotations:
        return iter(split_lines(annotations[ANNOTATION_LOG].encode()))
    return None


def log_content(annotations: dict[str, str]) -> bytes | None:
    """The whole log a pod's annotations ask for (small logs and tests), or None."""
    lines = log_lines(annotations)
    return None if lines is None else b"".join(line + b"\n" for line in lines)


def split_lines(content: bytes) -> list[bytes]:
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a trailing newline ends the last line; it does not start another
    return lines


def spread_seconds(annotations: dict[str, str]) -> float:
    """How long a generated log takes to be written (sim.jobline.dev/log-over), 0 for at once."""
    value = annotations.get(ANNOTATION_LOG_OVER, "0").strip().removesuffix("s")
    try:
        return max(0.0, float(value)) if ANNOTATION_LOG_LINES in annotations else 0.0
    except ValueError:
        return 0.0


def cri_line(stamp: dt.datetime, line: bytes) -> bytes:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode() + b" stdout F " + line + b"\n"


def cri_format(content: bytes, start: dt.datetime) -> bytes:
    """Content as a CRI log file: one `<RFC3339Nano> stdout F <line>` per line."""
    return b"".join(
        cri_line(start + dt.timedelta(microseconds=i), line)
        for i, line in enumerate(split_lines(content))
    )


def write_at_once(path: Path, lines: Iterator[bytes], start: dt.datetime) -> int:
    """Writes the whole log before kwok can see it; returns its size in bytes."""
    tmp = path.with_suffix(".tmp")
    size = 0
    with tmp.open("wb") as out:
        batch: list[bytes] = []
        batch_bytes = 0
        for i, line in enumerate(lines):
            batch.append(cri_line(start + dt.timedelta(microseconds=i), line))
            batch_bytes += len(line)
            if batch_bytes >= WRITE_BATCH_BYTES:
                out.write(b"".join(batch))
                size, batch, batch_bytes = size + batch_bytes, [], 0
        out.write(b"".join(batch))
        size += batch_bytes
    tmp.replace(path)  # kwok never sees a half-written file
    return size


def write_over_time(path: Path, lines: Iterator[bytes], seconds: float, count: int) -> None:
    """Appends the lines as time passes, each stamped with the time it is written, as a
    running program's log grows: line i is written about i/count * seconds after the start.
    Each write holds whole lines only."""
    begin = time.monotonic()
    last = dt.datetime.now(dt.UTC)
    written = 0
    with path.open("ab") as out:
        while written < count:
            due = min(count, int(count * (time.monotonic() - begin) / seconds) + 1)
            batch: list[bytes] = []
            for line in itertools.islice(lines, due - written):
                now = max(dt.datetime.now(dt.UTC), last + dt.timedelta(microseconds=1))
                batch.append(cri_line(now, line))
                last = now
            if batch:
                out.write(b"".join(batch))
                out.flush()
            written = due
            time.sleep(0.05)


class LogServer:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()
        self.served: dict[str, Path] = {}  # pod uid -> its log file

    def file_for(self, pod: Any) -> Path:
        meta = pod.metadata
        return self.log_dir / f"{meta.namespace}_{meta.name}_{meta.uid}.log"

    def serve(self, pod: Any) -> None:
        meta = pod.metadata
        if meta.uid in self.served or meta.deletion_timestamp:
            return
        annotations = meta.annotations or {}
        lines = log_lines(annotations)
        if lines is None:
            return
        path = self.file_for(pod)
        spread = spread_seconds(annotations)
        if spread:
            path.write_bytes(b"")  # kwok serves what is there so far
            count = min(int(annotations[ANNOTATION_LOG_LINES]), MAX_GENERATED_LINES)
            threading.Thread(
                target=write_over_time, args=(path, lines, spread, count), daemon=True
            ).start()
            size_note = f"{count} lines over {spread:g} s"
        else:
            size_note = f"{write_at_once(path, lines, dt.datetime.now(dt.UTC))} bytes"
        main_container = pod.spec.containers[0].name
        body = {
            "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
            "kind": "Logs",
            "metadata": {
                "name": meta.name,
                "namespace": meta.namespace,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Pod", "name": meta.name, "uid": meta.uid}
                ],
            },
            "spec": {"logs": [{"containers": [main_container], "logsFile": str(path)}]},
        }
        try:
            self.custom.create_namespaced_custom_object(
                KWOK_GROUP, KWOK_VERSION, meta.namespace, "logs", body
            )
        except ApiException as e:
            if e.status == 409:  # left by an earlier pod of the same name: take it over
                self.custom.replace_namespaced_custom_object(
                    KWOK_GROUP,
                    KWOK_VERSION,
                    meta.namespace,
                    "logs",
                    meta.name,
                    self._with_resource_version(meta.namespace, meta.name, body),
                )
            elif e.status in (403, 404):  # pod or namespace already gone (or terminating)
                path.unlink(missing_ok=True)
                return
            else:
                raise
        self.served[meta.uid] = path
        log.info("serving %s of log for %s/%s", size_note, meta.namespace, meta.name)

    def _with_resource_version(self, namespace: str, name: str, body: dict[str, Any]) -> Any:
        current = self.custom.get_namespaced_custom_object(
            KWOK_GROUP, KWOK_VERSION, namespace, "logs", name
        )
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return body

    def forget(self, uid: str) -> None:
        path = self.served.pop(uid, None)
        if path:
            path.unlink(missing_ok=True)

    def resync(self) -> str:
        """Serves every current pod, drops files of vanished ones; returns the list's version."""
        pods = self.core.list_pod_for_all_namespaces()
        alive = {p.metadata.uid for p in pods.items}
        for uid in list(self.served):
            if uid not in alive:
                self.forget(uid)
        for stale in self.log_dir.glob("*.log"):
            if stale.stem.rsplit("_", 1)[-1] not in alive:
                stale.unlink(missing_ok=True)
        for pod in pods.items:
            self.serve_safely(pod)
        return str(pods.metadata.resource_version)

    def serve_safely(self, pod: Any) -> None:
        try:
            self.serve(pod)
        except Exception:  # one pod's failure must not stop the others
            log.exception(
                "cannot serve the log of %s/%s", pod.metadata.namespace, pod.metadata.name
            )

    def run(self) -> None:
        while True:
            try:
                version = self.resync()
                for event in watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=version,
                    timeout_seconds=300,
                ):
                    pod = event["object"]
                    if event["type"] == "DELETED":
                        self.forget(pod.metadata.uid)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self.serve_safely(pod)
            except ApiException as e:
                if e.status != 410:  # 410: the watch expired, a resync starts a new one
                    log.warning("pod watch failed (%s); retrying in 1 s", e.reason)
                    time.sleep(1)
            except Exception as e:
                log.warning("pod watch failed (%s); retrying in 1 s", e)
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument(
        "--log-dir", required=True, type=Path, help="a folder of its own: it deletes stray files"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config.load_kube_config(config_file=args.kubeconfig)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.log_dir)
    LogServer(args.log_dir).run()


if __name__ == "__main__":
    main()
