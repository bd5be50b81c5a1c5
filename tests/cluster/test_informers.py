"""The Job and pod informers against a real apiserver: label-selected, and resuming a
watch that ends from where it stopped instead of listing everything again."""

from __future__ import annotations

import threading

import pytest

from jobline.controller.cache import by_controller
from jobline.kube import informer as informers
from jobline.kube.informer import Informer
from jobline.kube.store import Store
from tests.conftest import Cluster, wait_for


def job(name: str, labelled: bool) -> dict[str, object]:
    labels = {"jobline.dev/pipelinejob": name} if labelled else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "suspend": True,  # no pods: only the Jobs matter here
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                }
            },
        },
    }


def test_watches_resume_after_they_end_and_list_only_once(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(cluster.api)
    monkeypatch.setattr(informers, "WATCH_SECONDS", 1)  # the apiserver ends each watch at once
    batch.create_namespaced_job(namespace, job("before", labelled=True))
    batch.create_namespaced_job(namespace, job("unrelated", labelled=False))
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(event: str, obj: dict[str, object], old: object) -> None:
        with lock:
            events.append((event, obj["metadata"]["name"]))  # type: ignore[index]

    store = Store({"owner": by_controller})
    informer = Informer(cluster.api, "Job", [namespace], store, record)
    informer.start()
    try:
        wait_for("the first list", informer.synced.is_set)
        wait_for("three watches to end and resume", lambda: informer.resumes >= 3, timeout=30)
        batch.create_namespaced_job(namespace, job("after", labelled=True))
        wait_for("the new Job", lambda: ("ADDED", "after") in events)
        batch.delete_namespaced_job("before", namespace)
        wait_for("the deleted Job", lambda: ("DELETED", "before") in events)
    finally:
        informer.stop()
    assert informer.relists == 1
    assert ("ADDED", "before") in events
    assert all(name != "unrelated" for _, name in events)  # selected by the apiserver
    assert store.get(namespace, "unrelated") is None
    assert store.get(namespace, "before") is None
    assert store.get(namespace, "after") is not None


def test_an_event_whose_handler_raised_comes_again_and_is_handled(
    cluster: Cluster, namespace: str
) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(cluster.api)
    batch.create_namespaced_job(namespace, job("listed", labelled=True))
    handled: list[tuple[str, str, str]] = []
    failures = {"listed": 1, "watched": 2, "deleted": 1}  # how often each first fails

    def flaky(event: str, obj: dict[str, object], old: object) -> None:
        name = str(obj["metadata"]["name"])  # type: ignore[index]
        key = "deleted" if event == "DELETED" else name
        if failures.get(key, 0) > 0:
            failures[key] -= 1
            raise RuntimeError(f"a handler's bug on {event} {name}")
        version = str(obj["metadata"]["resourceVersion"])  # type: ignore[index]
        handled.append((event, name, version))

    store = Store({"owner": by_controller})
    informer = Informer(cluster.api, "Job", [namespace], store, flaky)
    informer.start()
    try:
        wait_for("the listed Job, handled", lambda: [h for h in handled if h[1] == "listed"])
        created = batch.create_namespaced_job(namespace, job("watched", labelled=True))
        wait_for("the watched Job, handled", lambda: [h for h in handled if h[1] == "watched"])
        batch.delete_namespaced_job("listed", namespace)
        wait_for("the deletion, handled", lambda: ("DELETED", "listed") in [h[:2] for h in handled])
    finally:
        informer.stop()
    watched = [h for h in handled if h[1] == "watched"]
    assert watched[0][:2] == ("ADDED", "watched")
    assert watched[0][2] == created.metadata.resource_version  # the very event, not a later one
    assert store.get(namespace, "listed") is None
    assert store.get(namespace, "watched") is not None
