"""Fakes of our own narrow layers, for driving the controllers without a cluster: the API
layer (`jobline.controller.kube.Kube`: the calls the operator makes, not the kubernetes
client) and the clock. As the CronJob controller's tests do with fake job and cronjob
controls: every call is recorded, objects are held in dicts, and a test can make any
call fail as the apiserver would."""

from __future__ import annotations

import copy
import datetime as dt
import http.client
import itertools
import json
from collections.abc import Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError

from jobline.core.clock import Clock

Obj = dict[str, Any]
START = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)


class FakeClock(Clock):
    def __init__(self, start: dt.datetime = START) -> None:
        self.time = start
        self.ticks = 1000.0

    def now(self) -> dt.datetime:
        return self.time

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.time += dt.timedelta(seconds=seconds)
        self.ticks += seconds


def transport_errors() -> list[Exception]:
    """The network's failures as urllib3 and the standard library raise them when the
    apiserver restarts, is unreachable or cuts a response short (none is an ApiException,
    none an OSError but the last)."""
    url = "/apis/coordination.k8s.io/v1/namespaces/default/leases/jobline-operator"
    refused = NewConnectionError(
        None,  # type: ignore[arg-type]
        "Failed to establish a new connection: [Errno 111] Connection refused",
    )
    return [
        MaxRetryError(None, url, refused),  # type: ignore[arg-type]
        ProtocolError("Connection broken: IncompleteRead(0 bytes read, 512 more expected)"),
        ReadTimeoutError(None, url, "Read timed out. (read timeout=30)"),  # type: ignore[arg-type]
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        ConnectionResetError(104, "Connection reset by peer"),
    ]


def api_error(status: int, message: str = "") -> ApiException:
    error = ApiException(status=status, reason=message or f"status {status}")
    error.body = json.dumps({"kind": "Status", "message": message}) if message else None
    return error


class FakeKube:
    """`Kube`'s calls over dicts of objects. `calls` lists (method, namespace/name) in the
    order made; `fail[method]` is raised by the next call of that method (an ApiException,
    or one of the network's errors)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, Exception] = {}
        # Raised by the log stream after its lines: a connection cut mid-stream.
        self.log_cut: dict[str, Exception] = {}  # by pod name
        self.runs: dict[tuple[str, str], Obj] = {}
        self.pipelines: dict[tuple[str, str], Obj] = {}
        self.jobs: dict[tuple[str, str], Obj] = {}
        self.pods: dict[tuple[str, str], Obj] = {}
        self.events: list[tuple[str, str, str]] = []  # (object name, type, reason)
        self.log_lines: dict[str, list[bytes]] = {}  # by pod name
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)

    def _call(self, method: str, namespace: str, name: str) -> None:
        self.calls.append((method, f"{namespace}/{name}"))
        error = self.fail.pop(method, None)
        if error is not None:
            raise error

    def _bump(self, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    def made(self, *methods: str) -> list[str]:
        """The calls of these methods (all, if none given), as "method namespace/name"."""
        return [f"{m} {what}" for m, what in self.calls if not methods or m in methods]

    # --- runs ---------------------------------------------------------------------

    def patch_run_status(self, namespace: str, name: str, version: str, status: Obj) -> Obj:
        self._call("patch_run_status", namespace, name)
        run = self.runs[(namespace, name)]
        if run["metadata"]["resourceVersion"] != version:
            raise api_error(409, "the object has been modified")
        run["status"] = {
            k: v for k, v in {**run.get("status", {}), **status}.items() if v is not None
        }
        return self._bump(run)

    def patch_run_metadata(self, namespace: str, name: str, version: str, metadata: Obj) -> Obj:
        self._call("patch_run_metadata", namespace, name)
        run = self.runs[(namespace, name)]
        for field, value in metadata.items():
            run["metadata"][field] = (
                {**run["metadata"].get(field, {}), **value} if isinstance(value, dict) else value
            )
        return self._bump(run)

    def create_run(self, namespace: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        self._call("create_run", namespace, name)
        if (namespace, name) in self.runs:
            raise api_error(409, "already exists")
        run = copy.deepcopy(body)
        run["metadata"].update(namespace=namespace, uid=f"uid-{next(self._uids)}")
        self.runs[(namespace, name)] = run
        return self._bump(run)

    def read_run(self, namespace: str, name: str) -> Obj | None:
        self._call("read_run", namespace, name)
        return copy.deepcopy(self.runs.get((namespace, name)))

    def delete_run(self, namespace: str, name: str, uid: str) -> None:
        self._call("delete_run", namespace, name)
        self.runs.pop((namespace, name), None)

    def read_pipeline(self, namespace: str, name: str) -> Obj | None:
        self._call("read_pipeline", namespace, name)
        return copy.deepcopy(self.pipelines.get((namespace, name)))

    def patch_pipeline_status(self, namespace: str, name: str, version: str, status: Obj) -> Obj:
        self._call("patch_pipeline_status", namespace, name)
        pipeline = self.pipelines.get((namespace, name))
        if pipeline is None:
            raise api_error(404, f'pipelines.jobline.dev "{name}" not found')
        pipeline["status"] = status
        return self._bump(pipeline)

    # --- Jobs and pods ----------------------------------------------------------------

    def create_job(self, body: Obj) -> Obj:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        self._call("create_job", namespace, name)
        if (namespace, name) in self.jobs:
            raise api_error(409, "already exists")
        job = copy.deepcopy(body)
        job["metadata"].update(
            uid=f"job-uid-{next(self._uids)}",
            creationTimestamp=self.clock.now().isoformat().replace("+00:00", "Z"),
        )
        self.jobs[(namespace, name)] = job
        return self._bump(job)

    def read_job(self, namespace: str, name: str) -> Obj | None:
        self._call("read_job", namespace, name)
        return copy.deepcopy(self.jobs.get((namespace, name)))

    def delete_job(self, namespace: str, name: str, uid: str) -> None:
        self._call("delete_job", namespace, name)

    def remove_pod_finalizer(self, namespace: str, name: str, finalizer: str) -> Obj | None:
        self._call("remove_pod_finalizer", namespace, name)
        pod = self.pods.get((namespace, name))
        if pod is None:
            return None
        pod["metadata"]["finalizers"] = [
            f for f in pod["metadata"].get("finalizers") or [] if f != finalizer
        ]
        return self._bump(pod)

    def remove_scheduling_gate(self, namespace: str, name: str, gate: str) -> None:
        self._call("remove_scheduling_gate", namespace, name)
        pod = self.pods.get((namespace, name))
        if pod is not None:
            gates = pod["spec"].get("schedulingGates") or []
            pod["spec"]["schedulingGates"] = [g for g in gates if g.get("name") != gate]
            self._bump(pod)

    def stream_log(
        self, namespace: str, pod: str, container: str, since_time: str | None
    ) -> Iterator[bytes] | None:
        self._call("stream_log", namespace, pod)
        lines = self.log_lines.get(pod)
        if lines is None:
            return None
        stamped = [b"2026-01-01T00:00:05.%09dZ %s\n" % (i, line) for i, line in enumerate(lines)]
        cut = self.log_cut.pop(pod, None)

        def chunks() -> Iterator[bytes]:
            yield b"".join(stamped)
            if cut is not None:
                raise cut

        return chunks()

    def post_event(
        self, obj: Obj, event_type: str, reason: str, message: str, now: dt.datetime
    ) -> None:
        # As the real one: an Event that cannot be posted never fails the run.
        self.calls.append(
            ("post_event", f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")
        )
        self.events.append((obj["metadata"]["name"], event_type, reason))
