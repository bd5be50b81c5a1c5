"""The few API calls the reconciler makes, as the API's JSON."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.models import API_GROUP, API_VERSION

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LOG_FETCH_LIMIT = 64 * 1024 * 1024  # never pull more than this of one log into memory


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def create_job(self, body: Any) -> Obj:
        ns = body["metadata"]["namespace"]
        return _json(self.batch.create_namespaced_job(ns, body, _preload_content=False))

    def read_job(self, namespace: str, name: str) -> Obj | None:
        try:
            return _json(self.batch.read_namespaced_job(name, namespace, _preload_content=False))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def delete_job(self, namespace: str, name: str) -> None:
        """Deletes the Job and, before it disappears, its pods (with their grace period)."""
        try:
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        except ApiException as e:
            if e.status != 404:
                raise

    def read_log(self, namespace: str, pod: str, container: str) -> bytes | None:
        """The container's whole log, or None when it cannot be read (yet, or any more)."""
        try:
            resp: Any = self.core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                limit_bytes=LOG_FETCH_LIMIT,
                _preload_content=False,
                _request_timeout=30,
            )
        except ApiException as e:
            if e.status in (400, 404):  # container not started, or pod gone
                return None
            raise
        data: bytes = resp.data
        return data

    def patch_run_status(self, namespace: str, name: str, status: Obj) -> Obj:
        return _json(
            self.custom.patch_namespaced_custom_object_status(
                API_GROUP,
                API_VERSION,
                namespace,
                "pipelinejobs",
                name,
                {"status": status},
                _preload_content=False,
            )
        )

    def create_run(self, namespace: str, body: Obj) -> None:
        self.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, "pipelinejobs", body
        )

    def delete_run(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, "pipelinejobs", name
            )
        except ApiException as e:
            if e.status != 404:
                raise

    def patch_pipeline_status(self, namespace: str, name: str, status: Obj) -> Obj:
        return _json(
            self.custom.patch_namespaced_custom_object_status(
                API_GROUP,
                API_VERSION,
                namespace,
                "pipelines",
                name,
                {"status": status},
                _preload_content=False,
            )
        )

    def add_run_owner(self, namespace: str, name: str, owners: list[Obj]) -> Obj:
        return _json(
            self.custom.patch_namespaced_custom_object(
                API_GROUP,
                API_VERSION,
                namespace,
                "pipelinejobs",
                name,
                {"metadata": {"ownerReferences": owners}},
                _preload_content=False,
            )
        )

    def post_event(
        self, obj: Obj, event_type: str, reason: str, message: str, now: dt.datetime
    ) -> None:
        """Posts a core/v1 Event on the object; a failure here never fails the run."""
        meta = obj["metadata"]
        stamp = now.isoformat().replace("+00:00", "Z")
        body: Any = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": "jobline"},
            "reportingComponent": "jobline.dev/operator",
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], body)
        except ApiException as e:
            log.warning("cannot post event %s on %s: %s", reason, meta["name"], e.reason)


def _json(response: Any) -> Obj:
    """The body of a response requested with _preload_content=False."""
    obj: Obj = json.loads(response.data)
    return obj
