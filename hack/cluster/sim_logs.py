"""Serves the log of every simulated pod that asks for one by annotation.

kwok runs no containers; it serves `GET pods/{name}/log` from CRI-format files
named by a `Logs` object (kwok.x-k8s.io/v1alpha1) of the pod's name. This
helper watches pods, and for each one annotated with

    sim.jobline.dev/log: "line one\\nline two"     (these lines)
    sim.jobline.dev/log-lines: "5000"              (line 0 ... line 4999)
    sim.jobline.dev/log-base64: "<base64>"         (raw bytes, may be invalid UTF-8)

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
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

ANNOTATION_LOG = "sim.jobline.dev/log"
ANNOTATION_LOG_LINES = "sim.jobline.dev/log-lines"
ANNOTATION_LOG_BASE64 = "sim.jobline.dev/log-base64"
MAX_GENERATED_LINES = 1_000_000
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"

log = logging.getLogger("sim-logs")


def log_content(annotations: dict[str, str]) -> bytes | None:
    """The log a pod's annotations ask for, or None when they ask for none."""
    if ANNOTATION_LOG_BASE64 in annotations:
        try:
            return base64.b64decode(annotations[ANNOTATION_LOG_BASE64], validate=True)
        except (binascii.Error, ValueError):
            return b"sim-logs: sim.jobline.dev/log-base64 is not valid base64\n"
    if ANNOTATION_LOG_LINES in annotations:
        try:
            count = min(int(annotations[ANNOTATION_LOG_LINES]), MAX_GENERATED_LINES)
        except ValueError:
            return b"sim-logs: sim.jobline.dev/log-lines is not a number\n"
        return "".join(f"line {i}\n" for i in range(count)).encode()
    if ANNOTATION_LOG in annotations:
        return annotations[ANNOTATION_LOG].encode()
    return None


def cri_format(content: bytes, start: dt.datetime) -> bytes:
    """Content as a CRI log file: one `<RFC3339Nano> stdout F <line>` per line."""
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a trailing newline ends the last line; it does not start another
    out = []
    for i, line in enumerate(lines):
        stamp = (start + dt.timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        out.append(stamp.encode() + b" stdout F " + line + b"\n")
    return b"".join(out)


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
        content = log_content(meta.annotations or {})
        if content is None:
            return
        path = self.file_for(pod)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(cri_format(content, dt.datetime.now(dt.UTC)))
        tmp.replace(path)  # kwok never sees a half-written file
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
        log.info("serving %d bytes of log for %s/%s", len(content), meta.namespace, meta.name)

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
