"""kopf's watches in place of the informers (controller/kopf_watch.py), with no cluster:
kopf's event types translated into store updates and handler calls (through kopf's own
event processing too), the selectors sent to the apiserver, what is synced, and the
parts of kopf's private stream that the synced signal depends on."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import watching
from kopf._cogs.structs import ephemera, references
from kopf._core.actions import lifecycles
from kopf._core.engines import indexing
from kopf._core.reactor import inventory, processing, queueing
from kubernetes import client
from prometheus_client import REGISTRY

from jobline.controller import handlers, kopf_watch
from jobline.controller.kopf_watch import KopfFeed
from jobline.controller.manager import KINDS, Manager
from jobline.kube.store import Obj, Store

Call = tuple[str, str, str | None]  # (event, stored version, old version)
PODS = references.Resource("", "v1", "pods", namespaced=True)


@pytest.fixture(autouse=True)
def kopf_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """`register` puts the list hook in place of kopf's `infinite_watch` for the process:
    put kopf's back, and forget the feeds, after each test."""
    monkeypatch.setattr(watching, "infinite_watch", watching.infinite_watch)
    monkeypatch.setattr(kopf_watch, "_FEEDS", {})


def pod(version: str, name: str = "p", namespace: str = "ns") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "managedFields": [{"manager": "kubelet"}],
        },
        "spec": {},
        "status": {},
    }


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[Call] = []
        self.fail = fail

    def __call__(self, event: str, obj: Obj, old: Obj | None) -> None:
        assert "managedFields" not in obj["metadata"]  # stripped as the store keeps it
        self.calls.append(
            (event, obj["metadata"]["resourceVersion"], old and old["metadata"]["resourceVersion"])
        )
        if self.fail:
            raise RuntimeError("the handler failed")


def feed_of(recorder: Recorder, namespaces: list[str] | None = None) -> tuple[KopfFeed, Store]:
    store = Store()
    return KopfFeed({"Pod": store}, {"Pod": recorder}, namespaces), store


def stored_version(store: Store, name: str = "p") -> str | None:
    found = store.get("ns", name)
    return found["metadata"]["resourceVersion"] if found else None


# --- the translation -------------------------------------------------------------------


def test_listed_objects_are_added_or_modified_by_what_the_store_had() -> None:
    recorder = Recorder()
    feed, store = feed_of(recorder)
    feed.handle("Pod", None, pod("1"))  # kopf's initial list: new to the store
    feed.handle("Pod", None, pod("1"))  # listed again (after a 410) unchanged: no news
    feed.handle("Pod", None, pod("2"))  # listed again, changed meanwhile
    assert recorder.calls == [("ADDED", "1", None), ("MODIFIED", "2", "1")]
    assert stored_version(store) == "2"


def test_watch_events_are_passed_on_as_kopf_types_them() -> None:
    recorder = Recorder()
    feed, store = feed_of(recorder)
    feed.handle("Pod", "ADDED", pod("1"))
    feed.handle("Pod", "MODIFIED", pod("2"))
    feed.handle("Pod", "MODIFIED", pod("2"))  # replayed: the store has this version
    feed.handle("Pod", "MODIFIED", pod("1"))  # older than the store's: kept out
    feed.handle("Pod", "DELETED", pod("3"))
    assert recorder.calls == [("ADDED", "1", None), ("MODIFIED", "2", "1"), ("DELETED", "3", "2")]
    assert store.get("ns", "p") is None
    feed.handle("Pod", "BOOKMARK", pod("4"))  # never reaches a handler in kopf; ignored
    assert len(recorder.calls) == 3 and store.get("ns", "p") is None


def test_a_failing_handler_leaves_the_store_as_it_was() -> None:
    recorder = Recorder()
    feed, store = feed_of(recorder)
    feed.handle("Pod", None, pod("1"))
    recorder.fail = True
    feed.handle("Pod", "MODIFIED", pod("2"))  # logged, not raised: kopf would only log it
    assert stored_version(store) == "1"
    feed.handle("Pod", "DELETED", pod("3"))
    assert stored_version(store) == "1"
    recorder.fail = False
    feed.handle("Pod", "MODIFIED", pod("2"))  # news again
    assert recorder.calls[-1] == ("MODIFIED", "2", "1")


# --- what is synced --------------------------------------------------------------------


def test_a_kind_is_synced_once_its_list_ended_and_every_listed_object_was_handled() -> None:
    feed, _ = feed_of(Recorder())
    feed.streamed("Pod", None)
    feed.streamed("Pod", None)
    feed.handle("Pod", None, pod("1", "a"))
    assert not feed.synced_for("Pod", "ns")  # the list has not ended
    feed.listed("Pod", None)
    assert not feed.synced_for("Pod", "ns")  # ended, but one listed object is not handled
    feed.handle("Pod", None, pod("1", "b"))
    assert feed.synced_for("Pod", "ns") and feed.synced_for("Pod", "other")
    assert not feed.synced()  # the other kinds have listed nothing yet
    for kind in KINDS:
        feed.listed(kind, None)  # empty lists
    assert feed.synced()


def test_namespaces_are_synced_one_by_one() -> None:
    feed, _ = feed_of(Recorder(), namespaces=["ns", "other"])
    feed.streamed("Pod", "ns")
    feed.listed("Pod", "ns")
    feed.listed("Pod", "other")
    assert feed.synced_for("Pod", "other") and not feed.synced_for("Pod", "ns")
    feed.handle("Pod", None, pod("1"))  # in ns
    assert feed.synced_for("Pod", "ns")


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The events of a fake kopf stream, which the list hook wraps."""
    events: list[Any] = []

    async def fake_stream(**_: Any) -> AsyncIterator[Any]:
        for event in events:
            yield event

    monkeypatch.setattr(kopf_watch, "_kopf_infinite_watch", fake_stream)
    yield events


def test_the_list_hook_counts_what_kopf_lists_and_passes_every_event_on(
    hook: list[Any],
) -> None:
    manager = Manager(client.ApiClient(), None, watcher="kopf")
    settings = kopf.OperatorSettings()
    feed = kopf_watch.register(kopf.OperatorRegistry(), settings, manager)
    assert watching.infinite_watch is kopf_watch._infinite_watch_noting_lists
    hook += [
        {"type": None, "object": pod("1", "a")},
        {"type": None, "object": pod("1", "b")},
        watching.Bookmark.LISTED,
        {"type": "ADDED", "object": pod("2", "c")},
    ]

    async def consume() -> list[Any]:
        stream = watching.infinite_watch(settings=settings, resource=PODS, namespace=None)
        return [event async for event in stream]

    assert asyncio.run(consume()) == hook
    assert not manager.synced("ns")
    feed.handle("Pod", None, pod("1", "a"))
    feed.handle("Pod", None, pod("1", "b"))
    assert feed.synced_for("Pod", "ns")
    assert not manager.synced("ns")  # four kinds to go


def test_the_private_parts_of_kopf_the_synced_signal_needs_are_there() -> None:
    """kopf is pinned; if an upgrade changes these, kopf mode would never be ready."""
    assert isinstance(watching.Bookmark.LISTED, watching.Bookmark)
    # The initial list is yielded as type-None events, then the marker (watching.py).
    listing = inspect.getsource(watching.continuous_watch)
    assert "yield {'type': None, 'object': obj}" in listing
    assert "yield Bookmark.LISTED" in listing
    # kopf's watcher gets its stream from the module's attribute, which the hook replaces.
    assert "watching.infinite_watch(" in inspect.getsource(queueing.watcher)
    assert "settings" in inspect.signature(watching.infinite_watch).parameters


# --- registration, and kopf's own processing -------------------------------------------


def test_register_sends_the_informers_selectors_and_registers_five_handlers() -> None:
    manager = Manager(client.ApiClient(), None, watcher="kopf")
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    kopf_watch.register(registry, settings, manager)
    assert manager.feed is not None
    ids = sorted(h.id for h in registry._watching.get_all_handlers())
    assert ids == sorted(f"jobline-{kind}" for kind in KINDS)
    jobs = references.Resource("batch", "v1", "jobs", namespaced=True)
    events = references.Resource("", "v1", "events", namespaced=True)
    new_events = references.Resource("events.k8s.io", "v1", "events", namespaced=True)
    runs = references.Resource("jobline.dev", "v1alpha1", "pipelinejobs", namespaced=True)
    labels, fields = settings.watching.label_selectors, settings.watching.field_selectors
    assert labels.collect(jobs) == labels.collect(PODS) == ["jobline.dev/pipelinejob"]
    assert fields.collect(events) == ["involvedObject.kind=Job,reason=FailedCreate"]
    assert labels.collect(runs) == fields.collect(runs) == fields.collect(new_events) == []


def test_kopf_event_types_through_kopfs_own_processing() -> None:
    """The raw events as kopf's watcher hands them to its processor: the handler sees
    kopf's type None as ADDED, and kopf writes nothing to the object (no patch)."""
    manager = Manager(client.ApiClient(), None, watcher="kopf")
    recorder = Recorder()
    manager.handlers["Pod"] = recorder
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    kopf_watch.register(registry, settings, manager)

    async def process(events: list[tuple[str | None, str]]) -> list[str | None]:
        memories = inventory.ResourceMemories()
        patched = []
        for kind, version in events:
            patched.append(
                await processing.process_resource_event(
                    lifecycle=lifecycles.all_at_once,
                    indexers=indexing.OperatorIndexers(),
                    registry=registry,
                    settings=settings,
                    memories=memories,
                    memobase=ephemera.AnyMemo(ephemera.Memo()),
                    resource=PODS,
                    raw_event={"type": kind, "object": pod(version)},  # type: ignore[typeddict-item]
                    event_queue=asyncio.Queue(),
                    no_throttling=True,
                )
            )
        return patched

    patched = asyncio.run(
        process([(None, "1"), ("MODIFIED", "2"), ("MODIFIED", "2"), ("DELETED", "3")])
    )
    assert recorder.calls == [("ADDED", "1", None), ("MODIFIED", "2", "1"), ("DELETED", "3", "2")]
    assert manager.cache.pods.get("ns", "p") is None
    assert patched == [None, None, None, None]


# --- the Manager in kopf mode ----------------------------------------------------------


def test_the_manager_in_kopf_mode_starts_no_informer_and_counts_handler_calls() -> None:
    manager = Manager(client.ApiClient(), None, watcher="kopf")
    assert manager.informers == []
    assert not manager.synced("ns") and not manager.ready()
    with pytest.raises(RuntimeError, match="no feed"):
        manager.start()

    def count(event: str) -> float:
        labels = {"kind": "Pipeline", "event": event}
        return REGISTRY.get_sample_value("jobline_watch_events_total", labels) or 0.0

    before = count("DELETED")
    feed = kopf_watch.register(kopf.OperatorRegistry(), kopf.OperatorSettings(), manager)
    feed.handle("Pipeline", "DELETED", {"metadata": {"name": "p", "namespace": "ns"}})
    assert count("DELETED") == before + 1
    for kind in KINDS:
        feed.listed(kind, None)
    assert manager.synced("ns")


def test_the_informers_take_no_feed() -> None:
    manager = Manager(client.ApiClient(), None)
    assert [i.kind for i in manager.informers] == list(KINDS)
    with pytest.raises(RuntimeError):
        manager.attach(KopfFeed({}, {}, None))
    with pytest.raises(ValueError, match="unknown watcher"):
        Manager(client.ApiClient(), None, watcher="client-go")


# --- leader election: kopf's watches wait for the lead ---------------------------------


class Election:
    def __init__(self) -> None:
        self.leading = threading.Event()


def test_in_kopf_mode_the_startup_waits_for_the_lead() -> None:
    election = Election()
    memo = kopf.Memo(watcher="kopf", leader_election_namespace="ns", election=election)

    async def wait() -> tuple[bool, bool]:
        task = asyncio.create_task(handlers.wait_to_lead(memo=memo))
        await asyncio.sleep(0.5)
        waited = not task.done()
        election.leading.set()
        await asyncio.wait_for(task, 2)
        return waited, task.done()

    assert asyncio.run(wait()) == (True, True)


@pytest.mark.parametrize(
    "memo",
    [
        {"watcher": "informers", "leader_election_namespace": "ns"},
        {"watcher": "kopf", "leader_election_namespace": None},
    ],
)
def test_otherwise_the_startup_does_not_wait(memo: dict[str, Any]) -> None:
    asyncio.run(asyncio.wait_for(handlers.wait_to_lead(memo=kopf.Memo(**memo)), 1))


def test_in_kopf_mode_the_wait_is_retried_until_the_operator_is_built() -> None:
    memo = kopf.Memo(watcher="kopf", leader_election_namespace="ns")
    with pytest.raises(kopf.TemporaryError):
        asyncio.run(handlers.wait_to_lead(memo=memo))
