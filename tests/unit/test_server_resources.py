"""The Jobs API's view of runs: the job JSON and newest-first paging (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from jobline.server import resources


def run(name: str, created: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "data", "uid": f"uid-{name}",
                     "creationTimestamp": created},
        "spec": {"pipelineRef": {"name": "sales"}, "variables": {"DAY": "mon"}},
        "status": status,
    }  # fmt: skip


def test_a_scheduled_run_as_a_job() -> None:
    job = resources.job(
        run(
            "sales-29000000",
            "2026-11-25T02:00:00Z",
            phase="ERROR",
            reason="OOMKilled",
            exitCode=137,
            trigger={"type": "Schedule", "scheduledTime": "2026-11-25T02:00:00Z"},
            variables={"DAY": "mon", "MODE": "delta"},
            outputs=[{"name": "orders", "records": 3}],
        )
    )
    assert job["id"] == "uid-sales-29000000" and job["pipeline"] == "sales"
    assert job["status"] == "ERROR" and job["reason"] == "OOMKilled" and job["exitCode"] == 137
    assert job["creator"] == {"type": "Schedule", "scheduledTime": "2026-11-25T02:00:00Z"}
    assert job["variables"] == {"DAY": "mon", "MODE": "delta"}
    assert job["outputs"] == [{"name": "orders", "records": 3}]
    assert job["_links"]["logs"] == {"href": "/api/v1/namespaces/data/jobs/sales-29000000/logs"}
    assert job["_links"]["pipeline"] == {"href": "/api/v1/namespaces/data/pipelines/sales"}


def test_a_run_the_operator_has_not_seen_is_queued_with_its_own_variables() -> None:
    job = resources.job(run("sales-abc", "2026-11-25T02:00:00Z"))
    assert job["status"] == "QUEUED" and job["reason"] is None
    assert job["creator"] == {"type": "Manual"} and job["variables"] == {"DAY": "mon"}


def test_pages_are_newest_first_and_tokens_resume_after_the_last() -> None:
    runs = [run(f"r{i}", f"2026-11-25T02:00:0{i}Z") for i in range(5)]
    runs.append(run("r4b", "2026-11-25T02:00:04Z"))  # same second: name decides
    seen: list[str] = []
    after = None
    while True:
        page, token = resources.page(runs, 2, after)
        seen += [r["metadata"]["name"] for r in page]
        if token is None:
            break
        after = resources.after_token(token)
    assert seen == ["r4b", "r4", "r3", "r2", "r1", "r0"]
    # A run created meanwhile is not on later pages, and nothing is repeated.
    _, token = resources.page(runs, 2, None)
    assert token is not None
    runs.append(run("r9", "2026-11-25T02:00:09Z"))
    rest, _ = resources.page(runs, 10, resources.after_token(token))
    assert [r["metadata"]["name"] for r in rest] == ["r3", "r2", "r1", "r0"]


@pytest.mark.parametrize("token", ["garbage!", "bm90IGpzb24", "WzEsIDJd"])
def test_a_token_this_server_did_not_give_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="continue token"):
        resources.after_token(token)
