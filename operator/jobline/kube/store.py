"""An indexed in-memory store of watched objects, as client-go's Indexer: every lookup
is a dict access (runs by their Pipeline, pods by their Job's UID), and objects are
stored stripped to the fields their readers use, as client-go's transforms do."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
# Deleted UIDs remembered by a store that asks (`remember_deletions`): a create's answer
# comes within seconds, and 4,096 deletions between a create and its answer is past any
# churn (about 400 KiB at most).
GONE_KEPT = 4096
IndexFn = Callable[[Obj], Iterable[Hashable]]


def key_of(obj: Obj) -> Key:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def by_pipeline_ref(run: Obj) -> list[Hashable]:
    return [(run["metadata"]["namespace"], run["spec"]["pipelineRef"]["name"])]


class Store:
    """Objects by (namespace, name), with secondary indexes kept up to date on each change."""

    def __init__(
        self,
        indexers: dict[str, IndexFn] | None = None,
        strip: Callable[[Obj], Obj] | None = None,
        remember_deletions: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, Obj] = {}
        self._indexers = indexers or {}
        self._indexes: dict[str, dict[Hashable, set[Key]]] = {n: {} for n in self._indexers}
        self._strip = strip or strip_metadata
        # UIDs of objects whose deletion this store has seen, the latest GONE_KEPT: a
        # controller's own create answered after its object's DELETED event must not
        # bring it back (`add_created`).
        self._gone: deque[str] = deque(maxlen=GONE_KEPT if remember_deletions else 0)
        self._gone_set: set[str] = set()

    def strip(self, obj: Obj) -> Obj:
        """The object as this store keeps it (stripping again what is stripped changes
        nothing)."""
        return self._strip(obj)

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def by(self, index: str, value: Hashable) -> list[Obj]:
        with self._lock:
            keys = self._indexes[index].get(value, ())
            return [self._objects[k] for k in keys]

    def one(self, index: str, value: Hashable) -> Obj | None:
        found = self.by(index, value)
        return found[0] if found else None

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())

    def put(self, obj: Obj, stripped: bool = False) -> tuple[Obj, Obj | None]:
        """Stores the object (`stripped`: already by `strip`) unless the store has a newer
        version of it; returns the stored object and the one it replaced."""
        if not stripped:
            obj = self._strip(obj)
        with self._lock:
            return self._put(key_of(obj), obj)

    def update(self, obj: Obj) -> Obj | None:
        """Stores what a controller's own write returned, only over the same object (its
        UID) still stored: a write answered just before the object's deletion must not
        bring it back after its DELETED event. The stored object, or None."""
        obj = self._strip(obj)
        key = key_of(obj)
        with self._lock:
            current = self._objects.get(key)
            if current is None or current["metadata"].get("uid") != obj["metadata"].get("uid"):
                return None
            return self._put(key, obj)[0]

    def _put(self, key: Key, obj: Obj) -> tuple[Obj, Obj | None]:
        old = self._objects.get(key)
        if old is not None and _older(obj, old):
            return old, old
        self._unindex(key, old)
        self._objects[key] = obj
        for name, index in self._indexers.items():
            for value in index(obj):
                self._indexes[name].setdefault(value, set()).add(key)
        return obj, old

    def delete(self, key: Key) -> Obj | None:
        """Removes the object: it is gone (its DELETED event)."""
        with self._lock:
            old = self._delete(key)
            self._bury(old)
            return old

    def add_created(self, obj: Obj) -> Obj | None:
        """Stores what a controller just created (or read), unless its deletion has been
        seen already: the garbage collector can delete a Job whose run is gone before the
        create's answer arrives. The stored object, or None."""
        obj = self._strip(obj)
        with self._lock:
            if obj["metadata"].get("uid") in self._gone_set:
                return None
            return self._put(key_of(obj), obj)[0]

    def _bury(self, old: Obj | None) -> None:
        uid = (old or {}).get("metadata", {}).get("uid")
        if not uid or uid in self._gone_set or not self._gone.maxlen:
            return
        if len(self._gone) == self._gone.maxlen:
            self._gone_set.discard(self._gone[0])
        self._gone.append(uid)
        self._gone_set.add(uid)

    def _delete(self, key: Key) -> Obj | None:
        old = self._objects.pop(key, None)
        self._unindex(key, old)
        return old

    def restore(self, key: Key, obj: Obj | None) -> None:
        """Puts back exactly `obj` (None: nothing) under `key`, whatever is stored now: an
        event whose handler failed is undone, so that it is news when it comes again."""
        with self._lock:
            self._delete(key)
            if obj is not None:
                self._put(key, obj)

    def replace(
        self, objects: list[Obj], namespace: str | None, version: str | None = None
    ) -> tuple[list[Obj], list[tuple[Obj, Obj | None]]]:
        """Makes the store (within `namespace`, or all) hold exactly `objects` (stripped by
        `strip`), as a list at `version` says, in one step: no write of a controller comes
        between. An object stored at a version newer than the list's (a controller wrote
        it after the list was read) is kept: the watch from `version` tells of it. Returns
        what vanished, and what is new or changed (with its old version)."""
        fresh = {key_of(o): o for o in objects}
        with self._lock:
            gone = [
                k
                for k in self._objects
                if k not in fresh
                and namespace in (None, k[0])
                and not _newer_than(self._objects[k], version)
            ]
            vanished = [old for k in gone if (old := self._delete(k)) is not None]
            for old in vanished:
                self._bury(old)
            changed = []
            for key, obj in fresh.items():
                current = self._objects.get(key)
                if same_version(obj, current):
                    continue
                if (
                    current is not None
                    and current["metadata"].get("uid") != obj["metadata"].get("uid")
                    and not _newer_than(current, version)
                ):
                    # Deleted and made again under its name while the watch was away:
                    # another object, and the old one's state goes with the old one.
                    vanished.append(current)
                    self._delete(key)
                    self._bury(current)
                stored, old = self._put(key, obj)
                if stored is obj:
                    changed.append((stored, old))
            return vanished, changed

    def _unindex(self, key: Key, old: Obj | None) -> None:
        if old is None:
            return
        for name, index in self._indexers.items():
            for value in index(old):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]


def same_version(obj: Obj, old: Obj | None) -> bool:
    """Whether `old` is the very same version of `obj` (a replayed or stale event)."""
    return old is not None and old["metadata"].get("resourceVersion") == obj["metadata"].get(
        "resourceVersion"
    )


def _older(new: Obj, current: Obj) -> bool:
    """Whether `new` is an older version than `current` (resourceVersions are opaque in
    general, but integers in etcd; compare as such only when both parse)."""
    try:
        return int(new["metadata"]["resourceVersion"]) < int(current["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return False


def _newer_than(obj: Obj, version: str | None) -> bool:
    try:
        return version is not None and int(obj["metadata"]["resourceVersion"]) > int(version)
    except (KeyError, ValueError, TypeError):
        return False


def strip_metadata(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return {**obj, "metadata": meta}
