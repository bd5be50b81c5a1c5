"""What a Pipeline's status says of its runs, and which runs its history drops."""

from typing import Any

from jobline.core.pipeline_status import history_to_delete, last_run


def run(name: str, created: str = "2026-01-01T00:00:00Z", **status: Any) -> Any:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"pipelineRef": {"name": "p"}},
        "status": status,
    }


def names(runs: list[Any]) -> list[str]:
    return [r["metadata"]["name"] for r in runs]


def test_history_keeps_the_newest_of_each_kind() -> None:
    runs = [
        run(f"ok-{i}", phase="COMPLETE", endTime=f"2026-01-01T00:0{i}:00Z") for i in range(4)
    ] + [
        run("bad-0", phase="ERROR", endTime="2026-01-01T00:00:30Z"),
        run("stop-1", phase="STOPPED", endTime="2026-01-01T00:01:30Z"),
        run("live", phase="RUNNING"),
        run("waiting", phase="QUEUED"),
    ]
    assert names(history_to_delete(runs, 2, 1)) == ["ok-0", "bad-0", "ok-1"]
    assert history_to_delete(runs, 10, 10) == []


def test_last_run_is_the_newest() -> None:
    runs = [
        run("a", "2026-01-01T00:00:00Z", phase="COMPLETE", exitCode=0),
        run("b", "2026-01-01T00:01:00Z", phase="RUNNING"),
    ]
    latest = last_run(runs)
    assert latest is not None
    assert (latest.name, latest.phase and latest.phase.value) == ("b", "RUNNING")
