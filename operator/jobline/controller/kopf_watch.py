"""kopf's watches in place of our informers, to measure one against the other
(benchmarks/burst.py --watcher kopf|both; `jobline operator` with JOBLINE_WATCHER=kopf, a
hidden option: the default stays our informers, kube/informer.py).

`register(registry, settings, manager)`, called by the startup handler, registers one
`@kopf.on.event` handler for each of the five kinds the informers watch, with the same
selectors sent to the apiserver on list and watch (`settings.watching.label_selectors`
and `field_selectors`: kopf 1.45 passes them as labelSelector and fieldSelector, see
kopf/_cogs/clients/fetching.py and watching.py): Jobs and pods with the
jobline.dev/pipelinejob label, the Job controller's FailedCreate Events. Each handler
updates the Manager's store as the informer would (put or delete, the object stripped
as the store keeps it) and calls the same controller handler with (event type, stored,
old):

- kopf gives type None to the objects of its initial list (and of each list again after
  a 410): ADDED when the store did not have the object, MODIFIED when it had another
  version, nothing when it had this very version (as the informers' re-list does);
- ADDED and MODIFIED are stored and passed on, unless the store has this version
  already (a replayed event);
- DELETED is removed from the store and passed on.

The handlers are sync functions, so kopf calls them on its executor's threads: the
controllers' handlers may make a request (the run handler deletes a deleted run's
archived logs, the pod handler releases a pod's finalizer), which must not block kopf's
event loop. kopf calls an `on.event` handler once per event, never again if it fails
(kopf/_core/reactor/processing.py, process_watching_cause): a handler that raises is
logged here and the store is put back as it was, so the object's next event is news.

Synced and ready: kopf signals no "initial list done" for a resource in public. Its
watch stream (kopf/_cogs/clients/watching.py, continuous_watch) yields the listed
objects as type-None events, then a private marker, `Bookmark.LISTED`, then the watch's
events; kopf's watcher (_core/reactor/queueing.py, watcher) uses the marker only to
unblock `@kopf.index` handlers, and hands each object's events to a worker of that
object, so the marker comes before the listed objects are handled. `@kopf.index` would
hold every handler until all lists are indexed, but it signals nothing either, and
indexes each event a second time. So this module wraps kopf's `infinite_watch` (the
one function queueing.watcher calls for a stream; kopf is pinned): for each kind and
namespace (None when watching all) the wrapper counts the type-None events streamed and
notes the marker; the handlers count the type-None events handled. A kind is synced for
a namespace once its marker was seen and every object listed before it was handled,
and stays synced (as an informer's first list). tests/unit/test_kopf_watch.py fails if
kopf's stream or marker change shape.

What kopf mode lacks beside the informers: no `on_recovered` (after an outage, failed
keys wait out their backoff); no watch silence in the liveness probe (kopf reconnects a
stream silent for settings.watching.inactivity_timeout itself); and objects deleted
while a watch was down past a 410 are never reported (kopf lists again but compares
the list with nothing: see benchmarks/deleted_while_down.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Any, cast

import kopf
from kopf._cogs.clients import watching as kopf_watching

from jobline.controller.manager import KINDS, Manager
from jobline.kube.informer import JOB_FAILED_CREATE, Handler
from jobline.kube.store import Obj, Store, key_of, same_version
from jobline.models import API_GROUP, API_VERSION, LABEL_PIPELINEJOB

log = logging.getLogger(__name__)

# (group, version, plural) of each kind, as kopf selects resources ("" is the core group).
RESOURCES: dict[str, tuple[str, str, str]] = {
    "Pipeline": (API_GROUP, API_VERSION, "pipelines"),
    "PipelineJob": (API_GROUP, API_VERSION, "pipelinejobs"),
    "Job": ("batch", "v1", "jobs"),
    "Pod": ("", "v1", "pods"),
    "Event": ("", "v1", "events"),
}
# The informers' selectors (kube/informer.py), sent to the apiserver by kopf as well.
LABEL_SELECTORS = {"Job": LABEL_PIPELINEJOB, "Pod": LABEL_PIPELINEJOB}
FIELD_SELECTORS = {"Event": JOB_FAILED_CREATE}
_KIND_OF = {(group, plural): kind for kind, (group, _, plural) in RESOURCES.items()}

Scope = tuple[str, str | None]  # (kind, namespace; None: all namespaces)


class KopfFeed:
    """The Manager's feed in kopf mode: translates kopf's events into store updates and
    handler calls, and says which kinds are synced (see the module's docstring)."""

    def __init__(
        self,
        stores: Mapping[str, Store],
        handlers: Mapping[str, Handler],
        namespaces: list[str] | None,
    ) -> None:
        self.stores = stores
        self.handlers = handlers
        self.namespaces = namespaces
        self._lock = threading.Lock()
        self._streamed: dict[Scope, int] = {}  # type-None events kopf's stream yielded
        self._handled: dict[Scope, int] = {}  # type-None events the handlers finished
        self._listed: set[Scope] = set()  # Bookmark.LISTED seen
        self._synced: set[Scope] = set()

    def _scopes(self) -> list[str | None]:
        return list(self.namespaces) if self.namespaces else [None]

    def _scope(self, kind: str, namespace: str | None) -> Scope:
        return (kind, namespace if self.namespaces else None)

    # --- what is synced --------------------------------------------------------------

    def synced_for(self, kind: str, namespace: str) -> bool:
        with self._lock:
            return (kind, None) in self._synced or (kind, namespace) in self._synced

    def synced(self) -> bool:
        with self._lock:
            return all((kind, ns) in self._synced for kind in KINDS for ns in self._scopes())

    def streamed(self, kind: str, namespace: str | None) -> None:
        """kopf's stream yielded an object of a list (type None)."""
        scope = self._scope(kind, namespace)
        with self._lock:
            if scope not in self._synced:
                self._streamed[scope] = self._streamed.get(scope, 0) + 1

    def listed(self, kind: str, namespace: str | None) -> None:
        """kopf's stream ended a list (Bookmark.LISTED): every object of it was streamed."""
        scope = self._scope(kind, namespace)
        with self._lock:
            self._listed.add(scope)
            self._check(scope)

    def _check(self, scope: Scope) -> None:
        if scope in self._listed and self._handled.get(scope, 0) >= self._streamed.get(scope, 0):
            if scope not in self._synced:
                log.debug("kopf has listed %ss (%s)", scope[0], scope[1] or "all namespaces")
            self._synced.add(scope)

    def _handled_listed(self, kind: str, namespace: str | None) -> None:
        scope = self._scope(kind, namespace)
        with self._lock:
            if scope not in self._synced:
                self._handled[scope] = self._handled.get(scope, 0) + 1
                self._check(scope)

    # --- events ----------------------------------------------------------------------

    def handle(self, kind: str, kopf_type: str | None, raw: Mapping[str, Any]) -> None:
        """One event of kopf's stream: the store updated, then the kind's handler told."""
        try:
            self._handle(kind, kopf_type, {"kind": kind, **raw})
        finally:
            if kopf_type is None:
                self._handled_listed(kind, raw.get("metadata", {}).get("namespace"))

    def _handle(self, kind: str, kopf_type: str | None, obj: Obj) -> None:
        store = self.stores[kind]
        key = key_of(obj)
        if kopf_type == "DELETED":
            old = store.delete(key)
            stored, event = store.strip(obj), "DELETED"
        elif kopf_type in (None, "ADDED", "MODIFIED"):
            stored, old = store.put(obj)
            if same_version(stored, old):
                return
            # kopf's type None: listed. New to the store, or a version it did not have.
            event = kopf_type or ("ADDED" if old is None else "MODIFIED")
        else:
            return  # BOOKMARK: kopf's watcher drops them before any handler
        try:
            self.handlers[kind](event, stored, old)
        except Exception:
            store.restore(key, old)  # the object's next event is news again
            log.exception("handling a %s event of %s %s/%s failed", event, kind, *key)


def register(
    registry: kopf.OperatorRegistry, settings: kopf.OperatorSettings, manager: Manager
) -> KopfFeed:
    """Registers the five kinds' `on.event` handlers in `registry` and their selectors in
    `settings`, and attaches the feed to `manager`. Called before kopf's watches start
    (they start once the startup handlers are done)."""
    feed = KopfFeed(manager.stores, manager.handlers, manager.namespaces)
    for kind, (group, version, plural) in RESOURCES.items():
        selector = (group, version, plural)
        if kind in LABEL_SELECTORS:
            settings.watching.label_selectors[selector] = LABEL_SELECTORS[kind]
        if kind in FIELD_SELECTORS:
            settings.watching.field_selectors[selector] = FIELD_SELECTORS[kind]
        kopf.on.event(group, version, plural, id=f"jobline-{kind}", registry=registry)(
            _handler(feed, kind)
        )
    _FEEDS[id(settings)] = feed
    install_list_hook()
    manager.attach(feed)
    return feed


def _handler(feed: KopfFeed, kind: str) -> Callable[..., None]:
    """The kind's kopf handler: sync, so kopf runs it on its executor's threads."""

    def on_event(event: Mapping[str, Any], **_: Any) -> None:
        feed.handle(kind, event.get("type"), event["object"])

    return on_event


# --- the initial list's end: a wrapper of kopf's watch stream ---------------------------------

# The feed of each operator's settings (one kopf.run per process; tests make several).
_FEEDS: dict[int, KopfFeed] = {}
_kopf_infinite_watch = kopf_watching.infinite_watch


async def _infinite_watch_noting_lists(
    *,
    settings: kopf.OperatorSettings,
    resource: kopf.Resource,
    namespace: Any,
    **kwargs: Any,
) -> AsyncIterator[Any]:
    """kopf's `infinite_watch`, unchanged, telling the feed of `settings` about each
    listed object it yields and about the end of each list."""
    feed = _FEEDS.get(id(settings))
    kind = _KIND_OF.get((resource.group, resource.plural))
    # An async generator (closed with ours: its `finally` logs the stream's end).
    stream = cast(
        AsyncGenerator[Any, None],
        _kopf_infinite_watch(settings=settings, resource=resource, namespace=namespace, **kwargs),
    )
    async with aclosing(stream):
        async for raw_event in stream:
            if feed is not None and kind is not None:
                if raw_event is kopf_watching.Bookmark.LISTED:
                    feed.listed(kind, namespace)
                elif isinstance(raw_event, dict) and raw_event.get("type") is None:
                    feed.streamed(kind, namespace)
            yield raw_event


def install_list_hook() -> None:
    """Puts the wrapper in place of kopf's `infinite_watch` (once; idempotent)."""
    kopf_watching.infinite_watch = _infinite_watch_noting_lists
