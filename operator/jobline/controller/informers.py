"""Label-selected watches of the Jobs and pods Jobline owns, kept in memory.

kopf would stream every pod of the cluster into the operator and filter them
here; these watches ask the apiserver for objects with the
jobline.dev/pipelinejob label only, so unrelated pods cost nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from jobline.models import LABEL_PIPELINEJOB

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[str, Obj], None]  # (event type, object as the API's JSON)


class Informer:
    """Lists then watches one kind by label, keeps a store, and reports every change."""

    def __init__(
        self,
        api: client.ApiClient,
        kind: str,
        namespaces: list[str] | None,
        on_event: Handler = lambda event, obj: None,
    ) -> None:
        self.api = api
        self.kind = kind
        self.namespaces = namespaces
        self.on_event = on_event
        self.store: dict[tuple[str, str], Obj] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self._stopped = threading.Event()
        self._synced_namespaces: set[str | None] = set()

    def _list_fn(self, namespace: str | None) -> Callable[..., Any]:
        if self.kind == "Job":
            batch = client.BatchV1Api(self.api)
            if namespace:
                return lambda **kw: batch.list_namespaced_job(namespace, **kw)
            return batch.list_job_for_all_namespaces
        core = client.CoreV1Api(self.api)
        if namespace:
            return lambda **kw: core.list_namespaced_pod(namespace, **kw)
        return core.list_pod_for_all_namespaces

    def start(self) -> None:
        for namespace in self._scopes():
            threading.Thread(
                target=self._run, args=(namespace,), name=f"watch-{self.kind}", daemon=True
            ).start()

    def stop(self) -> None:
        self._stopped.set()

    def _scopes(self) -> list[str | None]:
        """The namespaces to watch one by one, or [None] for one cluster-wide watch."""
        return list(self.namespaces) if self.namespaces else [None]

    def get(self, namespace: str, name: str) -> Obj | None:
        with self.lock:
            return self.store.get((namespace, name))

    def items(self) -> list[Obj]:
        with self.lock:
            return list(self.store.values())

    def put(self, obj: Obj) -> None:
        """Records an object this process just created, before its watch event arrives."""
        meta = obj["metadata"]
        with self.lock:
            self.store[(meta["namespace"], meta["name"])] = obj

    def _run(self, namespace: str | None) -> None:
        list_fn = self._list_fn(namespace)
        while not self._stopped.is_set():
            try:
                version = self._relist(list_fn, namespace)
                self._synced_namespaces.add(namespace)
                if len(self._synced_namespaces) == len(self._scopes()):
                    self.synced.set()
                self._watch(list_fn, version)
            except ApiException as e:
                if e.status != 410:  # 410: the watch expired; list again
                    log.warning("watching %ss failed (%s); retrying", self.kind, e.reason)
                    time.sleep(2)
            except Exception as e:  # the watch must outlive any one failure
                log.warning("watching %ss failed (%s); retrying", self.kind, e)
                time.sleep(2)

    def _relist(self, list_fn: Callable[..., Any], namespace: str | None) -> str:
        listed = list_fn(label_selector=LABEL_PIPELINEJOB, _preload_content=False)
        body = json.loads(listed.data)
        fresh = {}
        for item in body["items"]:
            item.setdefault("kind", self.kind)
            meta = item["metadata"]
            fresh[(meta["namespace"], meta["name"])] = item
        with self.lock:
            gone = [
                obj
                for key, obj in self.store.items()
                if key not in fresh and (namespace is None or key[0] == namespace)
            ]
            for obj in gone:
                del self.store[(obj["metadata"]["namespace"], obj["metadata"]["name"])]
            self.store.update(fresh)
        for obj in gone:
            self.on_event("DELETED", obj)
        for obj in fresh.values():
            self.on_event("ADDED", obj)
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, list_fn: Callable[..., Any], version: str) -> None:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            list_fn,
            label_selector=LABEL_PIPELINEJOB,
            resource_version=version,
            timeout_seconds=300,
            allow_watch_bookmarks=True,
        )
        for event in stream:
            if self._stopped.is_set():
                return
            kind, obj = event["type"], event["raw_object"]
            if kind == "ERROR":
                raise ApiException(status=obj.get("code"), reason=obj.get("message"))
            if kind == "BOOKMARK":
                continue
            meta = obj["metadata"]
            key = (meta["namespace"], meta["name"])
            with self.lock:
                if kind == "DELETED":
                    self.store.pop(key, None)
                else:
                    self.store[key] = obj
            self.on_event(kind, obj)
