"""kopf registrations: the only module that knows kopf. kopf runs the operator's
lifecycle (startup, cleanup, peering, the liveness probe) and delivers Pipeline
events; runs, Jobs and pods come from our own informers (see informers.py). The
controllers do the work on their own threads.

Only `on.event` handlers are used: kopf then puts no finalizers and writes no
progress annotations on our objects; deletion is left to the garbage collector
(a Job is owned by its PipelineJob, a PipelineJob by its Pipeline).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes import client, config

from jobline import __version__
from jobline.controller.informers import Informer
from jobline.controller.kube import Kube
from jobline.controller.metrics import register_run_gauges
from jobline.controller.pipeline_controller import PipelineController
from jobline.controller.run_controller import Admissions, Cache, RunController
from jobline.models import API_GROUP, API_VERSION

log = logging.getLogger(__name__)
RUN_WORKERS = 8  # API calls dominate a sync: threads wait on the network, not the GIL
PIPELINE_WORKERS = 2


def kube_api_client() -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    # One pooled connection per thread that makes requests (workers, watches, log reads):
    # beyond the pool's size, every request would pay a new TLS handshake.
    configuration.connection_pool_maxsize = RUN_WORKERS + PIPELINE_WORKERS + 8
    api = client.ApiClient(configuration)
    api.user_agent = f"jobline-operator/{__version__}"  # tells its requests apart in audit logs
    return api


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False  # the controllers post their own, meaningful Events
    # Serve exactly our two resources: no listing of CRDs or namespaces, so the
    # operator needs no permission on them.
    settings.scanning.disabled = True
    # Every request has a timeout; kopf's watches resume from their last version (with
    # bookmarks) and are renewed every 10 minutes.
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    api = kube_api_client()
    namespaces = memo.get("namespaces") or None
    kube = Kube(api)
    cache = Cache()
    admissions = Admissions()
    informers = [
        Informer(api, "PipelineJob", namespaces, cache.runs),
        Informer(api, "Job", namespaces, cache.jobs),
        Informer(api, "Pod", namespaces, cache.pods),
    ]
    runs = RunController(kube, cache, admissions, lambda: all(i.synced.is_set() for i in informers))
    pipelines = PipelineController(kube, cache, admissions, runs, runs.clock)
    for informer, handler in zip(informers, (runs.on_run, runs.on_job, runs.on_pod), strict=True):
        informer.on_event = handler
        informer.start()
    runs.start(RUN_WORKERS)
    pipelines.start(PIPELINE_WORKERS)
    register_run_gauges(cache.runs.items)
    memo["runs"] = runs
    memo["pipelines"] = pipelines
    memo["informers"] = informers
    log.info("Jobline operator started (namespaces: %s)", ", ".join(namespaces or ["all"]))


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for informer in memo.get("informers", []):
        informer.stop()
    for controller in (memo.get("runs"), memo.get("pipelines")):
        if controller:
            controller.queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "pipelines")
def pipeline_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["pipelines"].on_pipeline(event["type"], dict(event["object"]))
