"""kopf registrations: the only module that knows kopf. kopf runs the operator's
lifecycle (startup and cleanup); every object comes from our own informers (see
jobline/kube/informer.py), and the controllers do the work on their own threads.

No kopf resource handler is registered: kopf then puts no finalizers and writes no
progress annotations on our objects; deletion is left to the garbage collector (a Job
is owned by its PipelineJob, a PipelineJob by its Pipeline).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf
from kubernetes import client

from jobline import __version__
from jobline.archive import Archive, ArchiveError
from jobline.controller import health
from jobline.controller.kube import Kube
from jobline.controller.leader import LeaderElection
from jobline.controller.manager import PIPELINE_WORKERS, RUN_WORKERS, Manager
from jobline.kube import config as kube_config

log = logging.getLogger(__name__)
LEASE_NAME = "jobline-operator"


def kube_api_client() -> client.ApiClient:
    configuration, _ = kube_config.load()
    # Tells its requests apart in audit logs (and each replica's, by its pod name).
    replica = os.environ.get("POD_NAME")
    agent = f"jobline-operator/{__version__}" + (f" ({replica})" if replica else "")
    # One pooled connection per thread that makes requests (workers, watches, log reads):
    # beyond the pool's size, every request would pay a new TLS handshake.
    return kube_config.api_client(configuration, agent, RUN_WORKERS + PIPELINE_WORKERS + 8)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False  # the controllers post their own, meaningful Events
    # kopf serves no resource: no listing of CRDs or namespaces, so the operator needs no
    # permission on them.
    settings.scanning.disabled = True
    api = kube_api_client()
    election: LeaderElection | None = None
    if memo.get("leader_election_namespace"):
        election = LeaderElection(
            Kube(api), memo["leader_election_namespace"], LEASE_NAME, memo["identity"]
        )
        memo["election"] = election
    may_write = election.may_act if election else lambda: True
    manager = Manager(
        api,
        memo.get("namespaces") or None,
        may_write,
        log_archive(),
        installation_namespace=memo.get("own_namespace") or "default",
    )
    memo["manager"] = manager
    if memo.get("health_address"):

        def ready() -> bool:
            return manager.ready() or (election is not None and not election.leading.is_set())

        def problems() -> list[str]:
            return manager.problems() + (election.problems() if election else [])

        memo["health"] = health.serve(memo["health_address"], problems, ready)
    if election is None:
        manager.start()
    else:
        election.start(on_started=manager.start, on_lost=_exit_at_once)
    namespaces = ", ".join(manager.namespaces or ["all"])
    log.info("Jobline operator started (namespaces: %s)", namespaces)


def log_archive() -> Archive | None:
    """The log archive the environment configures (JOBLINE_ARCHIVE_*), checked once:
    a bucket that does not exist or keys the store refuses are said here, in one line;
    the operator runs on, each run's status saying what was not archived."""
    try:
        archive = Archive.from_env()
        if archive is None:
            return None
    except ArchiveError as e:
        log.error("no log archive: %s", e)
        return None
    try:
        archive.check()
    except ArchiveError as e:
        log.error("the log archive is not usable yet: %s", e)
    else:
        log.info("archiving run logs to %s", archive.where())
    return archive


def _exit_at_once() -> None:
    """A replica that lost the lead must stop acting now, caches and timers included: the
    process ends (as a Go controller's does) and Kubernetes restarts it as a standby."""
    logging.shutdown()
    os._exit(1)


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "manager" in memo:
        memo["manager"].stop()
    if "election" in memo:
        memo["election"].stop()
    if "health" in memo:
        memo["health"].shutdown()
