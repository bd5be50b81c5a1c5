"""The operator's parts, wired together: informers feeding indexed caches, the run and
Pipeline controllers, and what the health endpoints report about them.

`start` begins watching and acting; with leader election it is called only once this
replica leads, so a standby holds no cache and makes no request but its Lease's.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from kubernetes import client

from jobline.archive import Archive, ArchiveError
from jobline.controller.cache import Cache
from jobline.controller.kube import Kube
from jobline.controller.metrics import register_run_gauges, register_tracked_runs
from jobline.controller.pipeline_controller import PipelineController
from jobline.controller.run_controller import RunController
from jobline.controller.workqueue import WorkQueue
from jobline.core.admission import Admissions
from jobline.kube.informer import JOB_FAILED_CREATE, READ_TIMEOUT, Handler, Informer, pod_events
from jobline.kube.request import FAILED_REQUEST, call, describe
from jobline.kube.store import Store, key_of
from jobline.models import KUEUE_GROUP, KUEUE_VERSION

RUN_WORKERS = 8  # API calls dominate a sync: threads wait on the network, not the GIL
PIPELINE_WORKERS = 2
# The liveness probe fails when keys have waited this long while no worker finished one,
# or when a watch has heard nothing (not even a bookmark or a new watch) for longer than
# its read timeout allows.
WORKERS_STALLED_AFTER = 120.0
WATCH_SILENT_AFTER = READ_TIMEOUT + 60.0
# How often the operator asks whether Kueue's Workloads are served, until they are, while
# a Pipeline names a Kueue LocalQueue: Kueue may be installed after the operator started.
KUEUE_LOOK_EVERY = 10.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watch:
    """One kind the operator watches: into which store, to which handler, and (Events) the
    field selector the apiserver filters them by."""

    kind: str
    store: Store
    handler: Handler
    field_selector: str = ""


class Manager:
    def __init__(
        self,
        api: client.ApiClient,
        namespaces: list[str] | None,
        may_write: Callable[[], bool] = lambda: True,
        archive: Archive | None = None,
        installation_namespace: str = "default",
    ) -> None:
        self.namespaces = namespaces
        self.archive = archive
        self.installation_namespace = installation_namespace  # the operator's own
        self._stopping = threading.Event()
        kube = Kube(api, may_write)
        self.cache = Cache()
        admissions = Admissions()
        # Kueue's Workloads are watched once the apiserver serves them (asked at start and
        # every KUEUE_LOOK_EVERY s until then); runs wait for the first answer.
        self.api = api
        self._kueue_looked = threading.Event()
        self._kueue_served = threading.Event()
        # The two controllers tell each other through these functions only: a run changed
        # (its Pipeline's admission and status may too), a verdict or a Pipeline changed
        # (runs act on it).
        self.runs = RunController(
            kube,
            self.cache,
            admissions,
            self.synced,
            pipeline_changed=lambda ns, name, urgent: self.pipelines.run_changed(ns, name, urgent),
            archive=archive,
            kueue_installed=self._kueue_served.is_set,
        )
        self.pipelines = PipelineController(
            kube,
            self.cache,
            admissions,
            self.synced,
            wake_run=self.runs.queue.add,
            wake_runs_of=self.runs.on_pipeline,
        )
        # What is watched, each kind into its store and to its handler, in one list
        # (Informer filters Jobs and pods by our label, Events by their field selector).
        watches: list[Watch] = [
            Watch("Pipeline", self.cache.pipelines, self.pipelines.on_pipeline),
            Watch("PipelineJob", self.cache.runs, self.runs.on_run),
            Watch("Job", self.cache.jobs, self.runs.on_job),
            Watch("Pod", self.cache.pods, self.runs.on_pod),
            Watch("Event", self.cache.job_events, self.runs.on_job_event, JOB_FAILED_CREATE),
            *(
                Watch("Event", store, self.runs.on_pod_event, pod_events(reason))
                for reason, store in self.cache.pod_events.items()
            ),
        ]
        self.informers = [self._informer(watch) for watch in watches]
        # Started only once the apiserver serves Workloads (see above).
        self.workloads = self._informer(
            Watch("Workload", self.cache.workloads, self.runs.on_workload)
        )
        self.started = False

    def _informer(self, watch: Watch) -> Informer:
        return Informer(
            self.api,
            watch.kind,
            self.namespaces,
            watch.store,
            on_event=watch.handler,
            on_recovered=self._apiserver_back,
            field_selector=watch.field_selector,
        )

    def _queues(self) -> list[tuple[str, WorkQueue[Any]]]:
        return [
            ("run", self.runs.queue),
            ("Pipeline", self.pipelines.queue),
            ("log reader", self.runs.logs.queue),
        ]

    def _apiserver_back(self) -> None:
        """A watch reaches the apiserver again after failing: what failed meanwhile is
        tried now rather than after its backoff (which an outage of a minute grows to a
        minute or more)."""
        retried = sum(queue.retry_now() for _, queue in self._queues())
        if retried:
            log.info("the apiserver answers again: retrying %d keys now", retried)

    def synced(self, namespace: str) -> bool:
        """Whether every kind of `namespace` is cached: decisions about its runs need the
        whole picture. Namespaces are synced one by one, so one whose watch fails (say,
        forbidden) holds up only itself."""
        return self._kueue_looked.is_set() and all(
            informer.synced_for(namespace) for informer in self.informers
        )

    def start(self) -> None:
        for informer in self.informers:
            informer.start()
        self.runs.start(RUN_WORKERS)
        self.pipelines.start(PIPELINE_WORKERS)
        register_run_gauges(self.cache.runs.items)
        register_tracked_runs(self.runs.tracked)
        threading.Thread(target=self._look_for_kueue, name="kueue", daemon=True).start()
        if self.archive is not None:
            # Before any piece is written: each carries who wrote it.
            self.archive.installation = self._installation()
            threading.Thread(target=self._delete_orphans, name="orphans", daemon=True).start()
        self.started = True

    def _installation(self) -> str | None:
        """Who this installation is, for the log archive: JOBLINE_INSTALLATION, else the
        UID of the operator's namespace (unique per cluster, stable across restarts and
        upgrades); None when neither can be had."""
        configured = os.environ.get("JOBLINE_INSTALLATION")
        if configured:
            return configured
        path = f"/api/v1/namespaces/{self.installation_namespace}"
        try:
            found = orjson.loads(call(self.api, "GET", path, timeout=(5, 10)))
        except FAILED_REQUEST as e:
            log.warning("cannot read namespace %s: %s", self.installation_namespace, describe(e))
            return None
        return str(found["metadata"]["uid"])

    def kueue_served(self) -> bool:
        """Whether the apiserver serves Kueue's Workloads (kueue.x-k8s.io/v1beta2)."""
        try:
            found = call(self.api, "GET", f"/apis/{KUEUE_GROUP}/{KUEUE_VERSION}", timeout=(5, 10))
        except FAILED_REQUEST as e:
            if getattr(e, "status", None) != 404:
                log.warning("cannot tell whether Kueue is installed: %s", describe(e))
                raise
            return False
        return b'"workloads"' in found

    def _look_for_kueue(self) -> None:
        """Asks at start, and then every KUEUE_LOOK_EVERY s while a Pipeline names a Kueue
        LocalQueue, until Kueue's Workloads are served; then watches them (with the other
        watches: the namespace's runs wait for its first list). Without Kueue and without
        Pipelines that name it, one request at start is all it costs."""
        asked = False
        while not self._stopping.is_set():
            served: bool | None = False
            if not asked or self._kueue_wanted():
                try:
                    served = self.kueue_served()
                    asked = True
                except FAILED_REQUEST:
                    served = None  # not known: ask again soon, and let runs wait meanwhile
            if served:
                self.informers.append(self.workloads)
                self.workloads.start()
                self._kueue_served.set()
                log.info("Kueue is installed: watching its Workloads")
                for run in self.cache.runs.items():  # those that said it is not
                    self.runs.queue.add(key_of(run))
            if served is not None:
                self._kueue_looked.set()
            if served or self._stopping.wait(KUEUE_LOOK_EVERY if served is False else 5.0):
                return

    def _kueue_wanted(self) -> bool:
        return any((p.get("spec") or {}).get("kueue") for p in self.cache.pipelines.items())

    def _delete_orphans(self) -> None:
        """Once every watch has listed: the archived logs of runs deleted while no operator
        ran go too (those this installation wrote: `LogTails.delete_orphans`)."""
        while not self.ready():
            if self._stopping.wait(1.0):
                return
        if self.archive is not None and not self.archive.installation:
            log.warning(
                "the archived logs of runs deleted while no operator ran are kept: this "
                "installation cannot tell who it is (set JOBLINE_INSTALLATION, or let it "
                "get its own namespace, %s)", self.installation_namespace,
            )  # fmt: skip
            return
        try:
            queued = self.runs.logs.delete_orphans(
                self.namespaces,
                lambda namespace, uid: any(
                    r["metadata"]["namespace"] == namespace for r in self.cache.runs.by("uid", uid)
                ),
            )
        except ArchiveError as e:
            log.warning("cannot look for the archived logs of deleted runs: %s", e)
            return
        if queued:
            log.info("deleting the archived logs of %d runs deleted meanwhile", queued)

    def stop(self) -> None:
        self._stopping.set()
        for informer in self.informers:
            informer.stop()
        self.runs.stop()
        self.pipelines.queue.stop()

    def ready(self) -> bool:
        """Every watch has listed at least once."""
        return self.started and all(i.synced.is_set() for i in self.informers)

    def problems(self) -> list[str]:
        """Why the operator is not making progress, if it is not: for the liveness probe.
        A thread it needs that has died (none should) is a problem at once."""
        if not self.started:
            return []
        found = []
        for name, queue in self._queues():
            # A log read may stream for minutes: only the syncs' queues can stall.
            stalled = queue.stalled_for() if name != "log reader" else 0.0
            if stalled > WORKERS_STALLED_AFTER:
                found.append(f"{name} workers have finished nothing for {stalled:.0f} s")
            if dead := queue.dead_workers():
                found.append(f"{dead} {name} worker thread(s) have died")
        for informer in self.informers:
            silent = informer.silent_for()
            if silent > WATCH_SILENT_AFTER:
                found.append(f"the {informer.kind} watch has heard nothing for {silent:.0f} s")
            if dead := informer.dead():
                found.append(f"{dead} {informer.kind} watch thread(s) have died")
        return found
