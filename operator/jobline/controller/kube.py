"""The API calls the operator makes, as the API's JSON. Every call has a timeout, so a
half-open connection fails a worker's step (which is retried) instead of hanging it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.controller import metrics
from jobline.core.clock import format_time
from jobline.kube.request import DEFAULT_TIMEOUT, FAILED_REQUEST, call, describe
from jobline.models import API_GROUP, API_VERSION

log = logging.getLogger(__name__)
Obj = dict[str, Any]
TIMEOUT = DEFAULT_TIMEOUT  # seconds to connect, seconds between bytes
LOG_TIMEOUT = (5, 60)
LOG_CHUNK = 64 * 1024
JOBS = "/apis/batch/v1/namespaces/{namespace}/jobs"
JOB = JOBS + "/{name}"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
LEASE = LEASES + "/{name}"
CUSTOM = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{{namespace}}"


class KubeAPI(Protocol):
    """The narrow layer the controllers and the log readers call: what `Kube` does, and
    what the unit tests' fake (tests/unit/fakes.py) is checked against."""

    def create_job(self, body: Obj) -> Obj: ...
    def read_job(self, namespace: str, name: str) -> Obj | None: ...
    def delete_job(self, namespace: str, name: str, uid: str) -> None: ...
    def remove_pod_finalizer(self, namespace: str, name: str, finalizer: str) -> Obj | None: ...
    def remove_scheduling_gate(self, namespace: str, name: str, gate: str) -> None: ...
    def read_pipeline(self, namespace: str, name: str) -> Obj | None: ...
    def stream_log(
        self, namespace: str, pod: str, container: str, since_time: str | None
    ) -> Iterator[bytes] | None: ...
    def patch_run_status(self, namespace: str, name: str, version: str, status: Obj) -> Obj: ...
    def patch_pipeline_status(
        self, namespace: str, name: str, version: str, status: Obj
    ) -> Obj: ...
    def patch_run_metadata(self, namespace: str, name: str, version: str, metadata: Obj) -> Obj: ...
    def create_run(self, namespace: str, body: Obj) -> Obj: ...
    def read_run(self, namespace: str, name: str) -> Obj | None: ...
    def delete_run(self, namespace: str, name: str, uid: str) -> None: ...
    def post_event(
        self, obj: Obj, event_type: str, reason: str, message: str, now: dt.datetime
    ) -> None: ...


class LeaseAPI(Protocol):
    """The Lease calls of leader election (`Kube`'s; tests/unit/test_leader.py fakes them)."""

    def read_lease(self, namespace: str, name: str, timeout: float | None = None) -> Obj | None: ...
    def create_lease(
        self, namespace: str, name: str, spec: Obj, timeout: float | None = None
    ) -> Obj: ...
    def replace_lease(
        self, namespace: str, name: str, lease: Obj, timeout: float | None = None
    ) -> Obj: ...


class Kube:
    """The operator's calls, on the shared raw request layer (`jobline.kube.request`)."""

    def __init__(self, api: client.ApiClient, may_write: Callable[[], bool] = lambda: True) -> None:
        self.api = api
        self.may_write = may_write  # false while this replica must not act (leader election)

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        if method != "GET" and not self.may_write():
            raise ApiException(status=0, reason="not the leader: this replica must not write")
        return call(self.api, method, path, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def _json(self, method: str, path: str, **kw: Any) -> Obj:
        obj: Obj = orjson.loads(self._request(method, path, **kw))
        return obj

    def create_job(self, body: Obj) -> Obj:
        ns = body["metadata"]["namespace"]
        return self._json("POST", JOBS, params={"namespace": ns}, body=body)

    def _read(
        self, path: str, namespace: str, name: str, timeout: float | None = None
    ) -> Obj | None:
        """The named object at `path`, or None when it does not exist."""
        try:
            return self._json(
                "GET",
                path,
                params={"namespace": namespace, "name": name},
                timeout=timeout or TIMEOUT,
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def read_job(self, namespace: str, name: str) -> Obj | None:
        return self._read(JOB, namespace, name)

    def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Deletes the Job (only that very Job: its UID is a precondition) and, before it
        disappears, its pods, with their grace period."""
        body = {"propagationPolicy": "Foreground", "preconditions": {"uid": uid}}
        try:
            self._request("DELETE", JOB, params={"namespace": namespace, "name": name}, body=body)
        except ApiException as e:
            if e.status not in (404, 409):  # gone, or another Job of that name now
                raise

    def remove_pod_finalizer(self, namespace: str, name: str, finalizer: str) -> Obj | None:
        """The pod without `finalizer`; None when it is gone."""
        return self._patch_pod(
            namespace, name, {"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}}
        )

    def remove_scheduling_gate(self, namespace: str, name: str, gate: str) -> None:
        """Lets the scheduler place the pod: `gate` removed from its schedulingGates."""
        self._patch_pod(
            namespace, name, {"spec": {"schedulingGates": [{"name": gate, "$patch": "delete"}]}}
        )

    def _patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj | None:
        """A strategic-merge patch of the pod; None when it is gone."""
        try:
            return self._json(
                "PATCH",
                "/api/v1/namespaces/{namespace}/pods/{name}",
                params={"namespace": namespace, "name": name},
                body=patch,
                content_type="application/strategic-merge-patch+json",
            )
        except ApiException as e:
            if e.status != 404:
                raise
            return None

    def read_lease(self, namespace: str, name: str, timeout: float | None = None) -> Obj | None:
        """`timeout`: seconds the whole request may take (the election's renew deadline)."""
        return self._read(LEASE, namespace, name, timeout)

    def create_lease(
        self, namespace: str, name: str, spec: Obj, timeout: float | None = None
    ) -> Obj:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        return self._json(
            "POST", LEASES, params={"namespace": namespace}, body=body, timeout=timeout or TIMEOUT
        )

    def replace_lease(
        self, namespace: str, name: str, lease: Obj, timeout: float | None = None
    ) -> Obj:
        """Writes the Lease back; 409 Conflict when it changed since it was read."""
        return self._json(
            "PUT",
            LEASE,
            params={"namespace": namespace, "name": name},
            body=lease,
            timeout=timeout or TIMEOUT,
        )

    def read_pipeline(self, namespace: str, name: str) -> Obj | None:
        return self._read(f"{CUSTOM}/pipelines/{{name}}", namespace, name)

    def stream_log(
        self, namespace: str, pod: str, container: str, since_time: str | None
    ) -> Iterator[bytes] | None:
        """The container's log from `since_time` (whole seconds) on, each line prefixed by
        its time, as chunks of bytes; None when it cannot be read (yet, or any more)."""
        query = [("container", container), ("timestamps", "true")]
        if since_time:
            query.append(("sinceTime", since_time))
        try:
            response = self._request(
                "GET",
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                params={"namespace": namespace, "name": pod},
                query=query,
                timeout=LOG_TIMEOUT,
                stream=True,
            )
        except ApiException as e:
            if e.status in (400, 404):  # container not started, or pod gone
                return None
            raise
        return _chunks(response)

    def patch_run_status(self, namespace: str, name: str, version: str, status: Obj) -> Obj:
        """Writes the status if the run is still at `version` (409 Conflict if not)."""
        return self._patch("pipelinejobs", namespace, name + "/status", version, {"status": status})

    def patch_pipeline_status(self, namespace: str, name: str, version: str, status: Obj) -> Obj:
        return self._patch("pipelines", namespace, name + "/status", version, {"status": status})

    def patch_run_metadata(self, namespace: str, name: str, version: str, metadata: Obj) -> Obj:
        return self._patch("pipelinejobs", namespace, name, version, {"metadata": metadata})

    def _patch(self, plural: str, namespace: str, path: str, version: str, patch: Obj) -> Obj:
        patch = {**patch, "metadata": {**patch.get("metadata", {}), "resourceVersion": version}}
        return self._json(
            "PATCH",
            f"{CUSTOM}/{plural}/{path}",
            params={"namespace": namespace},
            body=patch,
            content_type="application/merge-patch+json",
        )

    def create_run(self, namespace: str, body: Obj) -> Obj:
        return self._json(
            "POST", f"{CUSTOM}/pipelinejobs", params={"namespace": namespace}, body=body
        )

    def read_run(self, namespace: str, name: str) -> Obj | None:
        return self._read(f"{CUSTOM}/pipelinejobs/{{name}}", namespace, name)

    def delete_run(self, namespace: str, name: str, uid: str) -> None:
        try:
            self._request(
                "DELETE",
                f"{CUSTOM}/pipelinejobs/{{name}}",
                params={"namespace": namespace, "name": name},
                body={"preconditions": {"uid": uid}},
            )
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    def post_event(
        self, obj: Obj, event_type: str, reason: str, message: str, now: dt.datetime
    ) -> None:
        """Posts a core/v1 Event on the object; a failure here never fails the run."""
        meta = obj["metadata"]
        stamp = format_time(now)
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", f"{API_GROUP}/{API_VERSION}"),
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
            self._request(
                "POST",
                "/api/v1/namespaces/{namespace}/events",
                params={"namespace": meta["namespace"]},
                body=body,
            )
        except FAILED_REQUEST as e:
            log.warning("cannot post event %s on %s: %s", reason, meta["name"], describe(e))


def _chunks(response: Any) -> Iterator[bytes]:
    try:
        for chunk in response.stream(LOG_CHUNK, decode_content=True):
            metrics.LOG_BYTES_READ.inc(len(chunk))
            yield chunk
    finally:
        response.release_conn()
