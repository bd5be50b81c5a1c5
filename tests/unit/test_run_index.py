"""The server's index of runs on a fake of the one API it calls (`Runs`: the caller's
right to list runs, and the runs themselves) and a fake clock: what a list shows, who
may see it, and how long a yes is trusted. The watch that fills it against a real
apiserver is tests/cluster/test_informers.py; the lists through the Jobs API are in
tests/cluster/test_jobs_api.py."""

from __future__ import annotations

from typing import Any

import pytest

from jobline.client.runs import UserError
from jobline.server.run_index import ALLOWED_FOR, RunIndex, strip_for_list

Obj = dict[str, Any]


def run(name: str, pipeline: str, namespace: str = "team", version: str = "1") -> Obj:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "resourceVersion": version,
            "creationTimestamp": "2026-12-01T00:00:00Z",
            "managedFields": [{"manager": "jobline"}],
        },
        "spec": {"pipelineRef": {"name": pipeline}},
        "status": {
            "phase": "COMPLETE",
            "logs": {"sequence": 90, "lines": ["x" * 300] * 10, "totalLines": 100},
        },
    }


class FakeCaller:
    """The caller's client, as the index uses it: whether they may list, asked of the
    apiserver, and the runs read from it."""

    def __init__(self, namespace: str = "team", allowed: bool = True) -> None:
        self.namespace = namespace
        self.allowed = allowed
        self.asked: list[tuple[str, str]] = []
        self.listed: list[str | None] = []

    def may(self, verb: str, plural: str) -> bool:
        self.asked.append((verb, plural))
        return self.allowed

    def runs(self, pipeline: str | None) -> list[Obj]:
        self.listed.append(pipeline)
        if not self.allowed:
            raise UserError('User "nobody" cannot list resource "pipelinejobs"', 403)
        return [run("from-the-apiserver", pipeline or "p")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ready_index(clock: FakeClock, *runs: Obj) -> RunIndex:
    index = RunIndex(api=object(), clock=clock)  # type: ignore[arg-type]  # never started
    for found in runs:
        index.store.put(found)
    assert index.informer is not None
    index.informer.synced_scopes.add(None)  # as the watch's first list would
    return index


def names(found: list[Obj]) -> set[str]:
    return {r["metadata"]["name"] for r in found}


def test_a_listed_run_keeps_its_line_count_but_not_its_lines() -> None:
    stripped = strip_for_list(run("a", "p"))
    assert stripped["status"]["logs"] == {"sequence": 90, "totalLines": 100}
    assert "managedFields" not in stripped["metadata"]
    assert stripped["status"]["phase"] == "COMPLETE"


def test_lists_come_from_the_index_by_namespace_and_by_pipeline() -> None:
    long_name = "p" * 70  # the label would hold a shortened name; the index does not
    index = ready_index(
        FakeClock(),
        run("a", "p"),
        run("b", long_name),
        run("c", "p", namespace="other"),
    )
    caller = FakeCaller()
    assert names(index.runs(caller, "Bearer t", None)) == {"a", "b"}  # type: ignore[arg-type]
    assert names(index.runs(caller, "Bearer t", long_name)) == {"b"}  # type: ignore[arg-type]
    assert caller.listed == []  # nothing was read from the apiserver
    assert all("lines" not in r["status"]["logs"] for r in index.store.items())


def test_before_the_watch_has_listed_everything_lists_go_to_the_apiserver() -> None:
    index = RunIndex(api=None)
    caller = FakeCaller()
    assert names(index.runs(caller, None, "p")) == {"from-the-apiserver"}  # type: ignore[arg-type]
    assert caller.listed == ["p"]
    assert caller.asked == []  # the apiserver checks that list itself


def test_a_yes_is_trusted_briefly_per_credential_and_namespace() -> None:
    clock = FakeClock()
    index = ready_index(clock, run("a", "p"))
    caller = FakeCaller()
    for _ in range(3):
        index.runs(caller, "Bearer t", None)  # type: ignore[arg-type]
    assert caller.asked == [("list", "pipelinejobs")]
    index.runs(caller, "Bearer other", None)  # type: ignore[arg-type]
    index.runs(FakeCaller(namespace="other"), "Bearer t", None)  # type: ignore[arg-type]
    assert len(caller.asked) == 2  # a second token asks for itself
    clock.now += ALLOWED_FOR + 0.1
    index.runs(caller, "Bearer t", None)  # type: ignore[arg-type]
    assert len(caller.asked) == 3  # asked again once the yes is older than ALLOWED_FOR


def test_a_no_gets_the_apiservers_own_403_and_is_asked_again_each_time() -> None:
    index = ready_index(FakeClock(), run("a", "p"))
    caller = FakeCaller(allowed=False)
    for _ in range(2):
        with pytest.raises(UserError) as refused:
            index.runs(caller, "Bearer t", None)  # type: ignore[arg-type]
        assert refused.value.status == 403
        assert 'User "nobody" cannot list' in str(refused.value)  # who, and what
    assert len(caller.asked) == 2
    assert caller.listed == [None, None]  # the apiserver was asked as the caller
    caller.allowed = True  # a binding added: the next list shows the runs at once
    assert names(index.runs(caller, "Bearer t", None)) == {"a"}  # type: ignore[arg-type]


def test_a_run_this_server_wrote_is_listed_before_the_watch_brings_it() -> None:
    index = ready_index(FakeClock(), run("a", "p", version="5"))
    index.remember(run("new", "p", version="7"))
    index.remember(run("a", "p", version="3"))  # older than the watch's: kept out
    found = {r["metadata"]["name"]: r for r in index.runs(FakeCaller(), None, None)}  # type: ignore[arg-type]
    assert set(found) == {"a", "new"}
    assert found["a"]["metadata"]["resourceVersion"] == "5"
    assert "lines" not in found["new"]["status"]["logs"]


def test_a_namespace_the_index_does_not_watch_is_listed_from_the_apiserver() -> None:
    index = RunIndex(api=object(), namespaces=["team"])  # type: ignore[arg-type]
    assert index.informer is not None
    index.informer.synced_scopes.add("team")  # the watch of "team" has listed it
    index.store.put(run("a", "p"))
    elsewhere = FakeCaller(namespace="other")
    assert names(index.runs(elsewhere, None, None)) == {"from-the-apiserver"}  # type: ignore[arg-type]
    assert names(index.runs(FakeCaller(), None, None)) == {"a"}  # type: ignore[arg-type]
