"""The Jobs API's routes as its OpenAPI document shows them: every route of every router,
with the parameters its callers send. Requests against a real apiserver are in
tests/cluster/test_jobs_api.py."""

from __future__ import annotations

from typing import Any

from jobline.server.app import create_app

PREFIX = "/api/v1/namespaces/{namespace}"


def document() -> dict[str, Any]:
    app = create_app(identities=None, allowed_hosts=None, max_followers=1)  # type: ignore[arg-type]
    return app.openapi()


def parameters(operation: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["in"], p["name"]) for p in operation.get("parameters", [])}


def test_every_route_is_in_the_document() -> None:
    paths = document()["paths"]
    assert {path: set(methods) for path, methods in paths.items()} == {
        "/api/v1/session": {"get"},
        "/api/v1/namespaces": {"get"},
        f"{PREFIX}/pipelines": {"get"},
        f"{PREFIX}/pipelines/{{name}}": {"get"},
        f"{PREFIX}/pipelines/{{name}}/jobs": {"get", "post"},
        f"{PREFIX}/jobs": {"get"},
        f"{PREFIX}/jobs/{{name}}": {"get", "delete"},
        f"{PREFIX}/jobs/{{name}}/stopped": {"put"},
        f"{PREFIX}/jobs/{{name}}/logs": {"get"},
    }


def test_routes_take_the_namespace_the_token_and_their_own_parameters() -> None:
    paths = document()["paths"]
    listing = parameters(paths[f"{PREFIX}/jobs"]["get"])
    assert listing == {
        ("path", "namespace"),
        ("header", "authorization"),
        ("query", "pipeline"),
        ("query", "status"),
        ("query", "createdAfter"),
        ("query", "limit"),
        ("query", "continue"),
    }
    logs = parameters(paths[f"{PREFIX}/jobs/{{name}}/logs"]["get"])
    assert {("path", "name"), ("query", "sequence"), ("query", "follow")} <= logs
    assert ("header", "authorization") in logs
    start = paths[f"{PREFIX}/pipelines/{{name}}/jobs"]["post"]
    assert {"201", "409", "422", "401", "403"} <= set(start["responses"])
