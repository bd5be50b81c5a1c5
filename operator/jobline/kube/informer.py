"""Watches of Jobline's kinds, and of the Jobs and pods it owns, feeding indexed stores
(the operator's caches, and the server's index of runs).

The Job and pod watches ask the apiserver for objects with the
jobline.dev/pipelinejob label only, so unrelated pods cost nothing. Every kind
is watched here rather than by kopf's `@kopf.on.event`: measured with the same
selectors on a 1000-run burst, kopf's watching cost 2.41 times the CPU per run,
and after a 410 it never reports what was deleted meanwhile (docs/architecture.md,
the decision record).

As client-go's reflector: list once (in pages), then watch from the list's
resourceVersion; when a watch ends, watch again from the last version seen
(bookmarks keep it fresh); list again only when the apiserver answers 410
Gone. A re-list reports what vanished meanwhile as DELETED, and only what
changed as ADDED or MODIFIED. Watch events are parsed as plain JSON, never
into the client's model classes, with orjson.

Every failure is retried with backoff (0.5 s doubling to 10 s), whatever raised it:
the apiserver's answers and the network's errors alike; the watch's thread never ends
but by `stop`. A handler that raises does not lose its event: the store is put back as
it was before the event, and the watch resumes from the version before it, so the same
event comes again after the backoff. `on_recovered` is told when a watch works again
after failing (the apiserver is back): work that failed meanwhile may be retried now.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.kube.request import call, describe
from jobline.kube.store import Obj, Store, key_of, same_version
from jobline.models import API_GROUP, API_VERSION, KUEUE_GROUP, KUEUE_VERSION, LABEL_PIPELINEJOB

log = logging.getLogger(__name__)

# (event type, object as stored, its previous version or None)
Handler = Callable[[str, Obj, Obj | None], None]
PAGE_SIZE = 500
BACKOFF_MAX = 10.0  # seconds between tries of a failing watch, at most
WATCH_SECONDS = 300  # the apiserver ends each watch after about this long
READ_TIMEOUT = WATCH_SECONDS + 30  # a silent connection longer than this is dead
JOB_FAILED_CREATE = "involvedObject.kind=Job,reason=FailedCreate"


def pod_events(reason: str) -> str:
    """The field selector of a pod's Events of one reason (FailedMount, ...)."""
    return f"involvedObject.kind=Pod,reason={reason}"


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class HandlerFailed(Exception):
    """A handler raised on an event; the store is as it was before the event."""

    def __init__(self, kind: str, error: Exception) -> None:
        super().__init__(f"handling a {kind} event failed: {error!r}")
        self.error = error


class Informer:
    def __init__(
        self,
        api: client.ApiClient,
        kind: str,
        namespaces: list[str] | None,
        store: Store,
        on_event: Handler = lambda event, obj, old: None,
        on_recovered: Callable[[], None] = lambda: None,
        field_selector: str = JOB_FAILED_CREATE,
    ) -> None:
        self.api = api
        self.kind = kind
        # Runs and Pipelines are all ours; Jobs and pods only those with our label; Events
        # only those of one reason (the Job controller's FailedCreate: why a Job has no pod;
        # the kubelet's FailedMount of a pod), filtered by the apiserver: Events carry no
        # labels of ours.
        self.label_selector = LABEL_PIPELINEJOB if kind in ("Job", "Pod") else None
        self.field_selector = field_selector if kind == "Event" else None
        self.namespaces = namespaces
        self.store = store
        self.on_event = on_event
        self.on_recovered = on_recovered
        self.synced = threading.Event()
        self.relists = 0  # how often a full list was needed (only at start, and after a 410)
        self.resumes = 0  # how often a watch that ended was resumed from its last version
        self._stopped = threading.Event()
        # The namespaces (None: all) whose first list is done.
        self.synced_scopes: set[str | None] = set()
        # When each namespace's watch (None: the cluster-wide one) last heard from the
        # apiserver (a list, an event, a bookmark, a new watch): for the liveness probe.
        self._heard: dict[str | None, float] = {}
        self._threads: list[threading.Thread] = []

    def synced_for(self, namespace: str) -> bool:
        """Whether the objects of `namespace` are all in the store (first list done)."""
        scopes = self.synced_scopes
        return None in scopes or namespace in scopes

    def silent_for(self) -> float:
        """Seconds since the quietest watch last heard from the apiserver."""
        now = time.monotonic()
        return max((now - self._heard.get(scope, now) for scope in self._scopes()), default=0.0)

    def _path(self, namespace: str | None) -> str:
        group = {
            "Pipeline": f"/apis/{API_GROUP}/{API_VERSION}",
            "PipelineJob": f"/apis/{API_GROUP}/{API_VERSION}",
            "Job": "/apis/batch/v1",
            "Workload": f"/apis/{KUEUE_GROUP}/{KUEUE_VERSION}",
        }.get(self.kind, "/api/v1")
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"{group}{scope}/{self.kind.lower()}s"

    def _query(self, **extra: str) -> list[tuple[str, str]]:
        query = [(k, v) for k, v in extra.items() if v]
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        if self.field_selector:
            query.append(("fieldSelector", self.field_selector))
        return query

    def start(self) -> None:
        for namespace in self._scopes():
            thread = threading.Thread(
                target=self._run, args=(namespace,), name=f"watch-{self.kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def dead(self) -> int:
        """How many of its watch threads have ended without `stop` (never, by design)."""
        if self._stopped.is_set():
            return 0
        return sum(1 for thread in self._threads if not thread.is_alive())

    def stop(self) -> None:
        self._stopped.set()

    def _scopes(self) -> list[str | None]:
        """The namespaces to watch one by one, or [None] for one cluster-wide watch."""
        return list(self.namespaces) if self.namespaces else [None]

    def _run(self, namespace: str | None) -> None:
        path = self._path(namespace)
        resume = _Resume()
        self._heard[namespace] = time.monotonic()
        while not self._stopped.is_set():
            try:
                if resume.version is None:
                    resume.version = self._relist(path, namespace)
                    self._reached(resume)
                    self.synced_scopes.add(namespace)
                    if len(self.synced_scopes) == len(self._scopes()):
                        self.synced.set()
                self._watch(path, resume, namespace)
                self.resumes += 1
                resume.failures = 0
            except Exception as e:  # the watch must outlive any one failure
                if isinstance(e, Gone) or (isinstance(e, ApiException) and e.status == 410):
                    log.info("the %s watch's version expired (410 Gone): listing again", self.kind)
                    resume.version = None
                    continue
                if isinstance(e, ApiException) and e.status:
                    # An answer (say, 403 for a namespace it may not read) is not a hang:
                    # restarting the operator would not help it.
                    self._heard[namespace] = time.monotonic()
                resume.failures += 1
                delay = min(BACKOFF_MAX, 0.5 * 2 ** (resume.failures - 1))
                delay *= random.uniform(0.8, 1.2)
                if isinstance(e, HandlerFailed):
                    log.error("%s; again in %.1f s", e, delay, exc_info=e.error)
                else:
                    status = e.status if isinstance(e, ApiException) else None
                    if not status or status >= 500 or status == 429:  # not a real answer
                        resume.unreachable = True
                    log.warning(
                        "watching %ss failed (%s); again in %.1f s", self.kind, describe(e), delay
                    )
                self._stopped.wait(delay)

    def _reached(self, resume: _Resume) -> None:
        """A list or watch reached the apiserver: if it could not before, say so."""
        if resume.unreachable:
            resume.unreachable = False
            self.on_recovered()

    def _relist(self, path: str, namespace: str | None) -> str:
        self.relists += 1
        items: list[Obj] = []
        token = ""
        while True:
            query = self._query(limit=str(PAGE_SIZE), **{"continue": token})
            page = orjson.loads(call(self.api, "GET", path, query=query, timeout=(10, 60)))
            for item in page["items"]:
                item.setdefault("kind", self.kind)
            # Stripped page by page: a list of 5,000 runs with their log tails held whole
            # took 155 MiB at its peak for 16 MiB kept.
            items += [self.store.strip(item) for item in page["items"]]
            del page["items"]
            token = page["metadata"].get("continue") or ""
            if not token:
                break
        self._heard[namespace] = time.monotonic()
        version = str(page["metadata"]["resourceVersion"])
        vanished, changed = self.store.replace(items, namespace, version)
        failed: Exception | None = None
        for obj in vanished:
            try:
                self.on_event("DELETED", obj, obj)
            except Exception as e:
                self.store.restore(key_of(obj), obj)  # the next list reports it again
                failed = failed or e
        for obj, old in changed:
            try:
                self.on_event("ADDED" if old is None else "MODIFIED", obj, old)
            except Exception as e:
                self.store.restore(key_of(obj), old)
                failed = failed or e
        if failed is not None:
            raise HandlerFailed(self.kind, failed)  # listed again after the backoff
        return version

    def _watch(self, path: str, resume: _Resume, namespace: str | None) -> None:
        """Watches from `resume.version` until the apiserver ends the watch, moving
        `resume.version` past each event once it is handled."""
        query = self._query(
            watch="true",
            resourceVersion=resume.version or "",
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_SECONDS),  # read at each call: tests shorten it
        )
        response = call(self.api, "GET", path, query=query, timeout=(10, READ_TIMEOUT), stream=True)
        self._heard[namespace] = time.monotonic()
        self._reached(resume)
        try:
            for line in _lines(response):
                self._heard[namespace] = time.monotonic()
                if self._stopped.is_set():
                    break
                if not line:
                    continue
                event = orjson.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                version = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    obj.setdefault("kind", self.kind)
                    self._handle(kind, obj)
                    resume.failures = 0
                resume.version = version
        finally:
            response.release_conn()

    def _handle(self, kind: str, obj: Obj) -> None:
        """Stores the event's object and tells the handler; when the handler raises, the
        store is put back as it was (so the event, seen again, is news again)."""
        key = key_of(obj)
        if kind == "DELETED":
            old = self.store.delete(key)
            stored: Obj = obj
        else:
            stored, old = self.store.put(obj)
            if same_version(stored, old):
                return
        try:
            self.on_event(kind, stored, old)
        except Exception as e:
            self.store.restore(key, old)
            raise HandlerFailed(self.kind, e) from e


class _Resume:
    """Where a watch resumes: the version after the last event handled (None: list
    first); failures in a row (the backoff); whether the last one was the network's."""

    version: str | None = None
    failures: int = 0
    unreachable: bool = False


def _lines(response: Any) -> Iterator[bytes]:
    """The watch stream's lines (one event each), as the apiserver's chunks arrive."""
    pending = b""
    for chunk in response.stream(None, decode_content=True):
        if b"\n" not in chunk:
            pending += chunk
            continue
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending
