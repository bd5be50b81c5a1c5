"""kopf registrations: the only module that knows kopf. Each handler hands the
object to the reconciler, which does the work on its own threads.

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
from jobline.controller.pipelines import PipelineReconciler
from jobline.controller.reconciler import Reconciler
from jobline.models import API_GROUP, API_VERSION

log = logging.getLogger(__name__)
WORKERS = 4


def kube_api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    except config.ConfigException:
        api = config.new_client_from_config()  # type: ignore[no-untyped-call]
    api.user_agent = f"jobline-operator/{__version__}"  # tells its requests apart in audit logs
    return api


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False  # the reconciler posts its own, meaningful Events
    # Serve exactly our two resources: no listing of CRDs or namespaces, so the
    # operator needs no permission on them.
    settings.scanning.disabled = True
    api = kube_api_client()
    namespaces = memo.get("namespaces") or None
    jobs = Informer(api, "Job", namespaces)
    pods = Informer(api, "Pod", namespaces)
    reconciler = Reconciler(Kube(api), jobs, pods)
    pipelines = PipelineReconciler(reconciler)
    jobs.on_event, pods.on_event = reconciler.on_job, reconciler.on_pod
    jobs.start()
    pods.start()
    reconciler.start(WORKERS)
    pipelines.start()
    register_run_gauges(lambda: list(reconciler.runs.values()))
    memo["reconciler"] = reconciler
    memo["pipelines"] = pipelines
    memo["informers"] = [jobs, pods]
    log.info("Jobline operator started (namespaces: %s)", ", ".join(namespaces or ["all"]))


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for informer in memo.get("informers", []):
        informer.stop()
    for reconciler in (memo.get("reconciler"), memo.get("pipelines")):
        if reconciler:
            reconciler.queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "pipelinejobs")
def pipelinejob_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["reconciler"].on_run(event["type"], dict(event["object"]))


@kopf.on.event(API_GROUP, API_VERSION, "pipelines")
def pipeline_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["pipelines"].on_pipeline(event["type"], dict(event["object"]))
