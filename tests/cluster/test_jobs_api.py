"""The Jobs API through real HTTP against `jobline server`, as its callers use it: with a
ServiceAccount's token, so the cluster's RBAC decides."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.audit import AuditLog
from tests.cluster.jobline_fixtures import Jobline, eventually_gone
from tests.cluster.server_fixtures import READ_RUNS, RUN_PIPELINES, Server, caller_token
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("sim")


@pytest.fixture
def token(jl: Jobline) -> str:
    """A caller who may read and run the Pipelines of the test's namespace, nothing more."""
    return caller_token(jl.cluster, jl.namespace, "runner", RUN_PIPELINES)


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["reason"] and body["message"]
    return body


def job_status(server: Server, token: str, path: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = server.call("GET", path, token).json()
        return job if job["status"] in statuses else None

    return wait_for(f"{path} to be {' or '.join(statuses)}", reached, timeout=60)


def test_without_a_token_the_answer_is_401(server: Server, jl: Jobline, token: str) -> None:
    missing = server.call("GET", f"/namespaces/{jl.namespace}/jobs")
    problem(missing, 401)
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    problem(server.call("GET", f"/namespaces/{jl.namespace}/jobs", "not-a-token"), 401)
    session = server.call("GET", "/session", token).json()
    assert session["user"] == f"system:serviceaccount:{jl.namespace}:runner"
    assert session["credentials"] == "token"


def test_pipelines_with_their_status_summary(server: Server, jl: Jobline, token: str) -> None:
    jl.pipeline("api-b", schedule="0 3 * * *", variables=[{"name": "DAY", "default": "mon"}])
    jl.pipeline("api-a")
    base = f"/namespaces/{jl.namespace}/pipelines"
    wait_for(
        "api-b's next scheduled time",
        lambda: server.call("GET", f"{base}/api-b", token).json()["nextScheduleTime"],
    )
    listed = server.call("GET", base, token)
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()["items"]] == ["api-a", "api-b"]
    one = server.call("GET", f"{base}/api-b", token).json()
    assert one["schedule"] == "0 3 * * *"
    assert one["variables"] == [{"name": "DAY", "default": "mon"}]
    assert one["_links"]["jobs"]["href"] == f"/api/v1{base}/api-b/jobs"
    problem(server.call("GET", f"{base}/no-such", token), 404)


def api_run_pipeline(jl: Jobline) -> None:
    jl.pipeline(
        "api-run",
        {"sim.jobline.dev/log-lines": "12", "sim.jobline.dev/exit-code": "0"},
        variables=[
            {"name": "DAY", "required": True},
            {"name": "MODE", "enum": ["full", "delta"], "default": "delta"},
        ],
        concurrencyPolicy="Allow",
    )


def start_run(server: Server, jl: Jobline, token: str, **body: Any) -> dict[str, Any]:
    started = server.call(
        "POST", f"/namespaces/{jl.namespace}/pipelines/api-run/jobs", token, json=body
    )
    assert started.status_code == 201, started.text
    return dict(started.json())


def test_post_jobs_starts_a_run_and_get_reads_it(server: Server, jl: Jobline, token: str) -> None:
    api_run_pipeline(jl)
    base = f"/namespaces/{jl.namespace}"
    started = server.call(
        "POST", f"{base}/pipelines/api-run/jobs", token, json={"variables": {"DAY": "fri"}}
    )
    assert started.status_code == 201, started.text
    job = started.json()
    assert started.headers["Location"] == f"/api/v1{base}/jobs/{job['name']}"
    assert job["pipeline"] == "api-run" and job["creator"] == {"type": "Manual"}
    assert set(job["_links"]) == {"self", "logs", "pipeline", "stopped"}
    done = job_status(server, token, f"{base}/jobs/{job['name']}", "COMPLETE")
    assert done["exitCode"] == 0 and done["variables"] == {"DAY": "fri", "MODE": "delta"}
    assert done["id"] == jl.run(job["name"])["metadata"]["uid"]
    assert done["durationSeconds"] is not None and done["endTime"]


def test_get_logs_as_text_or_ndjson_from_any_line(server: Server, jl: Jobline, token: str) -> None:
    api_run_pipeline(jl)
    base = f"/namespaces/{jl.namespace}"
    job = start_run(server, jl, token, variables={"DAY": "fri"})
    job_status(server, token, f"{base}/jobs/{job['name']}", "COMPLETE")
    logs = f"{base}/jobs/{job['name']}/logs"
    text = server.call("GET", f"{logs}?sequence=10", token)
    assert text.status_code == 200
    assert text.headers["Content-Type"].startswith("text/plain")
    assert text.text.splitlines() == ["line 10", "line 11"]
    for accept in ("application/x-ndjson", "application/stream+json"):
        nd = server.call("GET", f"{logs}?sequence=9", token, headers={"Accept": accept})
        assert nd.headers["Content-Type"].startswith(accept)
        assert [json.loads(x) for x in nd.text.splitlines()] == [
            {"sequence": i, "line": f"line {i}"} for i in (9, 10, 11)
        ]
    assert server.call("GET", f"{logs}?sequence=12", token).status_code == 204
    problem(server.call("GET", f"{logs}?sequence=-1", token), 400)
    problem(server.call("GET", f"{base}/jobs/no-such/logs", token), 404)


def test_post_jobs_checks_variables_before_creating_anything(
    server: Server, jl: Jobline, token: str
) -> None:
    api_run_pipeline(jl)
    base = f"/namespaces/{jl.namespace}"
    for variables, named in (
        ({"DAY": "x", "TYPO": "1"}, "TYPO is not declared"),
        ({}, "DAY is required"),
        ({"DAY": "x", "MODE": "half"}, "MODE='half' is not one of"),
    ):
        refused = server.call(
            "POST", f"{base}/pipelines/api-run/jobs", token, json={"variables": variables}
        )
        assert named in problem(refused, 422)["message"]
    problem(server.call("POST", f"{base}/pipelines/no-such/jobs", token, json={}), 404)
    problem(server.call("POST", f"{base}/pipelines/api-run/jobs", token, json={"x": 1}), 400)
    assert jl.custom.list_namespaced_custom_object(
        "jobline.dev", "v1alpha1", jl.namespace, "pipelinejobs")["items"] == []  # fmt: skip


def test_get_jobs_pages_newest_first_and_filters(server: Server, jl: Jobline, token: str) -> None:
    api_run_pipeline(jl)
    base = f"/namespaces/{jl.namespace}"
    names = []
    for priority in range(5):
        if names:
            time.sleep(1.1)  # distinct creation times, so newest-first is well defined
        names.append(
            start_run(server, jl, token, variables={"DAY": "sat"}, priority=priority)["name"]
        )
    jl.pipeline("api-other")
    jl.start("other-1", "api-other")
    paged: list[str] = []
    query: dict[str, Any] = {"limit": 2, "pipeline": "api-run"}
    while True:
        page = server.call("GET", f"{base}/jobs", token, params=query)
        assert page.status_code == 200
        paged += [j["name"] for j in page.json()["items"]]
        if not page.json()["continue"]:
            break
        query["continue"] = page.json()["continue"]
    assert paged == list(reversed(names))
    per_pipeline = server.call("GET", f"{base}/pipelines/api-run/jobs", token).json()["items"]
    assert [j["name"] for j in per_pipeline] == list(reversed(names))
    everything = server.call("GET", f"{base}/jobs", token).json()["items"]
    assert {j["name"] for j in everything} == {*names, "other-1"}
    for name in names:
        job_status(server, token, f"{base}/jobs/{name}", "COMPLETE")

    def all_listed_complete() -> dict[str, Any] | None:
        # A single run is read from the apiserver, lists from the server's watch of runs,
        # which sees the operator's last status write a moment later.
        found = server.call("GET", f"{base}/jobs", token, params={"status": "COMPLETE"}).json()
        return found if {j["name"] for j in found["items"]} >= set(names) else None

    complete = wait_for("the list of COMPLETE runs to hold all five", all_listed_complete)
    assert all(j["status"] == "COMPLETE" for j in complete["items"])
    created = jl.run(names[2])["metadata"]["creationTimestamp"]
    newer = server.call("GET", f"{base}/jobs", token, params={"createdAfter": created}).json()
    assert set(names[3:]) <= {j["name"] for j in newer["items"]}
    assert not {names[0], names[1], names[2]} & {j["name"] for j in newer["items"]}
    problem(server.call("GET", f"{base}/pipelines/no-such/jobs", token), 404)
    problem(server.call("GET", f"{base}/jobs", token, params={"status": "DONE"}), 400)
    problem(server.call("GET", f"{base}/jobs", token, params={"continue": "garbage"}), 400)


def test_follow_streams_until_the_run_ends(server: Server, jl: Jobline, token: str) -> None:
    jl.pipeline(
        "api-follow",
        {"sim.jobline.dev/log-lines": "6", "sim.jobline.dev/log-over": "4s",
         "sim.jobline.dev/duration": "5s"},
    )  # fmt: skip
    base = f"/namespaces/{jl.namespace}"
    name = server.call("POST", f"{base}/pipelines/api-follow/jobs", token).json()["name"]
    began = time.monotonic()
    followed = server.call(
        "GET",
        f"{base}/jobs/{name}/logs",
        token,
        params={"follow": "true"},
        headers={"Accept": "application/x-ndjson"},
    )
    assert followed.status_code == 200
    assert [json.loads(x)["line"] for x in followed.text.splitlines()] == [
        f"line {i}" for i in range(6)
    ]
    assert time.monotonic() - began > 3  # it streamed while the run ran, then ended
    assert jl.status(name)["phase"] == "COMPLETE"


def test_stop_delete_and_forbid(server: Server, jl: Jobline, token: str) -> None:
    jl.pipeline("api-long", {"sim.jobline.dev/duration": "300s"}, concurrencyPolicy="Forbid")
    base = f"/namespaces/{jl.namespace}"
    name = server.call("POST", f"{base}/pipelines/api-long/jobs", token).json()["name"]
    job_status(server, token, f"{base}/jobs/{name}", "RUNNING")
    wait_for(
        "the Pipeline to count its active run",
        lambda: server.call("GET", f"{base}/pipelines/api-long", token).json()["activeRuns"],
    )
    forbidden = server.call("POST", f"{base}/pipelines/api-long/jobs", token)
    assert "Forbid" in problem(forbidden, 409)["message"]

    stopping = server.call("PUT", f"{base}/jobs/{name}/stopped", token)
    assert stopping.status_code == 202, stopping.text
    assert stopping.json()["stopRequested"] is True
    stopped = job_status(server, token, f"{base}/jobs/{name}", "STOPPED")
    assert stopped["reason"] == "Stopped"
    problem(server.call("PUT", f"{base}/jobs/{name}/stopped", token), 409)
    problem(server.call("PUT", f"{base}/jobs/no-such/stopped", token), 404)

    deleted = server.call("DELETE", f"{base}/jobs/{name}", token)
    assert deleted.status_code == 204
    eventually_gone("the run", lambda: jl.run(name))
    problem(server.call("GET", f"{base}/jobs/{name}", token), 404)
    problem(server.call("DELETE", f"{base}/jobs/{name}", token), 404)


def test_logs_after_the_pod_is_gone_say_what_was_lost(
    server: Server, jl: Jobline, token: str
) -> None:
    # Not archived: the lines before the tail are gone with the pod (test_log_archive.py
    # reads an archived log).
    jl.pipeline(
        "api-tail", {"sim.jobline.dev/log-lines": "30"}, logs={"tailLines": 10, "archive": False}
    )
    base = f"/namespaces/{jl.namespace}"
    name = server.call("POST", f"{base}/pipelines/api-tail/jobs", token).json()["name"]
    job_status(server, token, f"{base}/jobs/{name}", "COMPLETE")
    jl.batch.delete_namespaced_job(name, jl.namespace, propagation_policy="Foreground")
    eventually_gone("the pods", lambda: jl.pods(name))
    tail = server.call("GET", f"{base}/jobs/{name}/logs", token, params={"sequence": 5})
    assert tail.status_code == 200
    assert tail.headers["Jobline-Lines-Gone"] == "5-19"
    assert tail.text.splitlines() == [f"line {i}" for i in range(20, 30)]


def test_lists_come_from_the_servers_index_without_listing_runs(
    server: Server, jl: Jobline, token: str
) -> None:
    jl.pipeline("api-index", {"sim.jobline.dev/log-lines": "40"})
    for i in range(3):
        jl.start(f"index-{i}", "api-index")
    for i in range(3):
        jl.wait_done(f"index-{i}")
    base = f"/namespaces/{jl.namespace}"

    def listed() -> dict[str, int]:
        items = server.call("GET", f"{base}/jobs", token).json()["items"]
        return {job["name"]: job["logLines"] for job in items}

    ended = {f"index-{i}": 40 for i in range(3)}
    wait_for("the index to hold the ended runs", lambda: listed() == ended)
    audit = AuditLog()
    for _ in range(5):
        assert listed() == ended  # the line count outlives the lines the index drops
    started = server.call("POST", f"{base}/pipelines/api-index/jobs", token).json()["name"]
    assert started in listed()  # a run started through the server is listed at once

    def server_requests() -> list[str]:
        return [
            f"{e['verb']} {(e.get('objectRef') or {}).get('resource')}"
            for e in audit.events()
            if e.get("userAgent", "").startswith("jobline-server/")
        ]

    wait_for("the audit log to show the start", lambda: "create pipelinejobs" in server_requests())
    made = server_requests()
    # Six lists, and not one list of runs: at most one SelfSubjectAccessReview (a yes is
    # trusted 10 s, and the wait above asked already).
    assert "list pipelinejobs" not in made, made
    assert made.count("create selfsubjectaccessreviews") <= 1, made


def test_rbac_decides_what_each_caller_may_do(server: Server, jl: Jobline) -> None:
    reader = caller_token(jl.cluster, jl.namespace, "reader", READ_RUNS)
    nobody = caller_token(jl.cluster, jl.namespace, "nobody", [])
    jl.pipeline("api-rbac")
    jl.start("rbac-1", "api-rbac")
    jl.wait_done("rbac-1")
    base = f"/namespaces/{jl.namespace}"
    assert server.call("GET", f"{base}/jobs", reader).status_code == 200
    assert server.call("GET", f"{base}/jobs/rbac-1", reader).status_code == 200
    assert server.call("GET", f"{base}/jobs/rbac-1/logs", reader).status_code in (200, 204)
    writes = [
        ("POST", f"{base}/pipelines/api-rbac/jobs"),
        ("DELETE", f"{base}/jobs/rbac-1"),
    ]
    for method, path in writes:
        refused = problem(server.call(method, path, reader), 403)
        assert "cannot" in refused["message"]  # the apiserver's words: which verb on what
    # Stopping needs patch; the reader may read the run, so the refusal is the patch's.
    jl.start("rbac-2", "api-rbac")
    problem(server.call("PUT", f"{base}/jobs/rbac-2/stopped", reader), 403)
    other = server.call("GET", "/namespaces/default/jobs", reader)
    assert 'in the namespace "default"' in problem(other, 403)["message"]
    assert "cannot list" in problem(server.call("GET", f"{base}/jobs", nobody), 403)["message"]
    assert jl.run("rbac-1")  # nothing was deleted


def test_security_headers_cross_site_writes_and_openapi(
    server: Server, local_server: Server, jl: Jobline, token: str
) -> None:
    jl.pipeline("api-csrf")
    base = f"/namespaces/{jl.namespace}/pipelines/api-csrf/jobs"
    answer = server.call("GET", f"/namespaces/{jl.namespace}/jobs", token)
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in answer.headers

    # The local server acts as the kubeconfig's user for requests without a token, so a
    # page elsewhere must not make it write: a form post, a foreign Origin, a rebound name.
    def post(**headers: str) -> requests.Response:
        return requests.post(f"{local_server.url}/api/v1{base}", headers=headers, timeout=30)

    assert "Content-Type" in problem(post(**{"Content-Type": "text/plain"}), 403)["message"]
    problem(post(**{"Content-Type": "application/json", "Origin": "https://evil.example"}), 403)
    problem(post(**{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}), 403)
    problem(post(**{"Content-Type": "application/json", "Host": "evil.example"}), 400)
    created = post(**{"Content-Type": "application/json"})
    assert created.status_code == 201, created.text
    session = local_server.call("GET", "/session").json()
    assert session["credentials"] == "kubeconfig" and session["user"]

    spec = requests.get(f"{server.url}/api/v1/openapi.json", timeout=30).json()
    paths = spec["paths"]
    assert set(paths["/api/v1/namespaces/{namespace}/pipelines/{name}/jobs"]) == {"get", "post"}
    assert set(paths["/api/v1/namespaces/{namespace}/jobs/{name}"]) == {"get", "delete"}
    assert "put" in paths["/api/v1/namespaces/{namespace}/jobs/{name}/stopped"]
    assert "get" in paths["/api/v1/namespaces/{namespace}/jobs/{name}/logs"]
    job = spec["components"]["schemas"]["Job"]["properties"]
    assert {"id", "status", "exitCode", "creator", "queuePosition", "_links"} <= set(job)
    page = requests.get(f"{server.url}/", timeout=30)
    assert page.status_code == 200 and "<main" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere


def test_created_after_accepts_a_time_without_zone(server: Server, jl: Jobline, token: str) -> None:
    jl.pipeline("api-time")
    jl.start("time-1", "api-time")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(tzinfo=None)
    found = server.call(
        "GET",
        f"/namespaces/{jl.namespace}/jobs",
        token,
        params={"createdAfter": future.isoformat()},
    )
    assert found.status_code == 200 and found.json()["items"] == []


def test_followed_logs_are_bounded_and_hold_up_nothing_else(
    jl: Jobline, token: str, tmp_path: Path
) -> None:
    """A followed log holds a thread for as long as its run lasts. Past --max-followers a
    follow is refused, everything else answers meanwhile, and a slot frees when its reader
    leaves or its run ends."""
    server = Server(jl.cluster.kubeconfig, tmp_path / "server.log", "token", "--max-followers=2")
    try:
        jl.pipeline("api-quiet", {"sim.jobline.dev/duration": "300s"})  # logs nothing
        base = f"/namespaces/{jl.namespace}"
        name = server.call("POST", f"{base}/pipelines/api-quiet/jobs", token).json()["name"]
        job_status(server, token, f"{base}/jobs/{name}", "RUNNING")
        logs = f"{server.url}/api/v1{base}/jobs/{name}/logs"

        def follow() -> requests.Response:
            return requests.get(
                logs,
                params={"follow": "true"},
                headers={"Authorization": f"Bearer {token}"},
                stream=True,
                timeout=60,
            )

        readers = [follow(), follow()]
        assert [r.status_code for r in readers] == [200, 200]
        refused = follow()
        assert "--max-followers" in problem(refused, 429)["message"]
        assert refused.headers["Retry-After"]
        assert server.call("GET", f"{base}/jobs/{name}", token).status_code == 200
        assert server.call("GET", f"{base}/jobs/{name}/logs", token).status_code == 204
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200

        readers[0].close()  # the reader leaves while the log is quiet

        def admitted() -> requests.Response | None:
            reader = follow()
            if reader.status_code == 200:
                return reader
            reader.close()
            return None

        readers[0] = wait_for("the slot of the reader that left", admitted, timeout=30)
        assert server.call("PUT", f"{base}/jobs/{name}/stopped", token).status_code == 202
        for reader in readers:
            assert reader.text == ""  # each ends with the run, having had no line
        assert [r.status_code for r in (follow(), follow())] == [200, 200]
    finally:
        server.stop()
