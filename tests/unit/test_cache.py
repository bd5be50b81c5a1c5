"""The indexed stores: lookups by owner and Pipeline, stripping, and re-list diffs."""

from typing import Any

import pytest

from jobline.controller.cache import (
    JOB_FIELDS,
    Store,
    by_controller,
    by_pipeline_ref,
    same_version,
    strip_job,
    strip_pod,
    strip_run,
)
from jobline.kube.fields import Fields


def pod(name: str, owner: str, version: str = "1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": owner,
                    "uid": f"uid-{owner}",
                    "controller": True,
                },
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "other"},
            ],
            "managedFields": [{"manager": "kubelet"}],
            "annotations": {"big": "x" * 10_000},
        },
        "spec": {"containers": [{"name": "main", "image": "i", "env": [{"name": "A"}]}]},
        "status": {"phase": "Running"},
    }


def job_key(name: str, namespace: str = "ns") -> tuple[str, ...]:
    """The key pods of Job `name` are indexed under."""
    return (namespace, "batch", "Job", name, f"uid-{name}")


def test_lookups_by_controller_follow_changes_and_deletes() -> None:
    store = Store({"owner": by_controller}, strip=strip_pod)
    store.put(pod("a", "job-1"))
    store.put(pod("b", "job-1"))
    store.put(pod("c", "job-2"))
    assert sorted(p["metadata"]["name"] for p in store.by("owner", job_key("job-1"))) == ["a", "b"]
    # Only the controller reference counts.
    assert store.by("owner", ("ns", "", "ConfigMap", "other", "other")) == []
    store.put(pod("b", "job-2", version="2"))  # a new controller moves it
    assert [p["metadata"]["name"] for p in store.by("owner", job_key("job-1"))] == ["a"]
    store.delete(("ns", "a"))
    assert store.by("owner", job_key("job-1")) == []
    assert len(store.by("owner", job_key("job-2"))) == 2


def test_pods_are_stored_with_only_what_the_operator_reads() -> None:
    store = Store({"owner": by_controller}, strip=strip_pod)
    stored, _ = store.put(pod("a", "job-1"))
    assert "managedFields" not in stored["metadata"]
    assert "annotations" not in stored["metadata"]
    assert stored["spec"]["containers"] == [{"name": "main", "image": "i"}]
    assert stored["status"] == {"phase": "Running"}


def test_jobs_are_stored_with_their_containers_names_only() -> None:
    store = Store({"owner": by_controller}, strip=strip_job)
    template = {"spec": {"containers": [{"name": "load", "image": "i", "env": [{"name": "A"}]}]}}
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    job = {
        **pod("j", "run-1"),
        "spec": {"backoffLimit": 0, "template": template, "podFailurePolicy": policy},
    }
    stored, _ = store.put(job)
    assert stored["spec"] == {
        "backoffLimit": 0,
        "podFailurePolicy": policy,  # which failed pods count is the Job controller's call
        "template": {"spec": {"containers": [{"name": "load"}]}},
    }


def test_runs_are_stored_without_their_log_tail_and_indexed_by_pipeline() -> None:
    store = Store({"pipeline": by_pipeline_ref}, strip=strip_run)
    run = {
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "5"},
        "spec": {"pipelineRef": {"name": "p"}},
        "status": {"phase": "RUNNING", "logs": {"lines": ["x"] * 1000}},
    }
    store.put(run)
    [stored] = store.by("pipeline", ("ns", "p"))
    assert stored["status"] == {"phase": "RUNNING"}
    assert run["status"]["logs"]  # the event's object is not changed


def test_an_older_version_never_replaces_a_newer_one() -> None:
    store = Store({"owner": by_controller})
    store.put(pod("a", "job-1", version="7"))
    stored, old = store.put(pod("a", "job-2", version="6"))  # a late watch event
    assert stored["metadata"]["resourceVersion"] == "7"
    assert same_version(stored, old)


def test_a_relist_reports_what_vanished_and_only_what_changed() -> None:
    store = Store({"owner": by_controller})
    for name in ("kept", "changed", "gone"):
        store.put(pod(name, "job-1"))
    store.put(
        {
            **pod("elsewhere", "job-1"),
            "metadata": {**pod("x", "j")["metadata"], "namespace": "other", "name": "elsewhere"},
        }
    )
    vanished, changed = store.replace(
        [pod("kept", "job-1"), pod("changed", "job-1", version="2"), pod("new", "job-1")], "ns"
    )
    assert [o["metadata"]["name"] for o in vanished] == ["gone"]
    assert sorted((o["metadata"]["name"], old is None) for o, old in changed) == [
        ("changed", False),
        ("new", True),
    ]
    assert store.get("other", "elsewhere") is not None  # another namespace's watch owns it


def test_a_relist_reports_an_object_made_again_under_its_name_as_gone_then_new() -> None:
    # Deleted and made again while the watch was away (410): another object, not a change
    # of the old one, whose state must go with it.
    store = Store({"owner": by_controller})
    store.put(pod("again", "job-1"))
    made_again = pod("again", "job-1", version="2")
    made_again["metadata"]["uid"] = "uid-again-2"
    vanished, changed = store.replace([made_again], "ns")
    assert [o["metadata"]["uid"] for o in vanished] == ["uid-again"]
    assert [(o["metadata"]["uid"], old) for o, old in changed] == [("uid-again-2", None)]


def test_what_wakes_a_run_is_what_the_cache_keeps_and_nothing_else_of_it() -> None:
    with pytest.raises(ValueError, match=r"status\.startTime wakes a run but is not kept"):
        Fields(kept=("metadata", "status.conditions"), wakes=("status.startTime",))
    job = {"metadata": {"name": "j", "managedFields": [1]}, "status": {"active": 1}}
    stored = strip_job(job)
    assert "managedFields" not in stored["metadata"]
    assert job["metadata"]["managedFields"] == [1]  # the event's object is not changed
    counted = {**job, "status": {"active": 0, "ready": 1}}  # counters: no decision reads them
    assert JOB_FIELDS.facts(counted) == JOB_FIELDS.facts(job)
    started = {**job, "status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"}}
    assert JOB_FIELDS.facts(started) != JOB_FIELDS.facts(job)  # its active deadline runs


def test_a_created_object_whose_deletion_was_seen_first_is_not_brought_back() -> None:
    # The garbage collector deleted a Job whose run was gone before the create's answer
    # reached the operator: its DELETED event came first.
    store = Store({"owner": by_controller}, strip=strip_job, remember_deletions=True)
    created = pod("j", "run-1")
    store.put(created)  # the watch's ADDED
    store.delete(("ns", "j"))  # the watch's DELETED
    assert store.add_created(created) is None
    assert store.get("ns", "j") is None
    again = pod("j", "run-1")
    again["metadata"]["uid"] = "uid-j-2"  # a new Job of the same name is another object
    assert store.add_created(again) is not None
