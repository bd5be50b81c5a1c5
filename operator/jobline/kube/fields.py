"""Which fields of an object the operator reads, declared once per kind as paths: the
cache keeps exactly those (`Fields.pick`), and a change of the ones that can change a
run's decision wakes it (`Fields.facts`), so the two can never drift apart.

A path is dotted keys; `[]` maps over a list ("spec.containers[].name": the names of
the containers, in order). A path absent from an object is absent from its pick.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Fields:
    kept: tuple[str, ...]  # what the cache keeps of an object
    wakes: tuple[str, ...]  # of those, what can change a run's decision
    dropped: tuple[str, ...] = ()  # keys of a kept dict left out (metadata.annotations)

    def __post_init__(self) -> None:
        for path in self.wakes:
            if not any(path == kept or path.startswith(kept + ".") for kept in self.kept):
                raise ValueError(f"{path} wakes a run but is not kept in the cache")

    def pick(self, obj: Obj) -> Obj:
        """The object with only the kept fields."""
        picked: Obj = {}
        for path in self.kept:
            _merge(picked, _pick(obj, path.split(".")))
        for path in self.dropped:
            *parents, key = path.split(".")
            node: Any = picked
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(key, None)
        return picked

    def facts(self, obj: Obj) -> Hashable:
        """What of the object can change a run's decision, comparable between versions."""
        return tuple(repr(_pick(obj, path.split("."))) for path in self.wakes)


def _pick(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    mapped = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(value, dict) or value.get(key) is None:
        return {}
    inner = value[key]
    if mapped:
        items = inner if isinstance(inner, list) else []
        return {key: [_pick(item, rest) if rest else item for item in items]}
    # A kept dict is a copy: dropping keys from it must not change the object picked from.
    return (
        {key: _pick(inner, rest)}
        if rest
        else {key: dict(inner) if isinstance(inner, dict) else inner}
    )


def _merge(into: Obj, part: Obj) -> None:
    for key, value in part.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list) and len(current) == len(value):
            for i, item in enumerate(value):
                if isinstance(current[i], dict) and isinstance(item, dict):
                    _merge(current[i], item)
        else:
            into[key] = value
