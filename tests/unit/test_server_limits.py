"""What the server refuses before it reads a request's body: writes without credentials
(401) and bodies over its bound (413), whether their length is declared or they come
chunked. Driven as ASGI, counting the body chunks the server pulls: a refusal must not
have read (and held) the body first."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from jobline.server.app import create_app
from jobline.server.identity import Credentials, Identities

START = "/api/v1/namespaces/data/pipelines/sales/jobs"
CHUNK = b"x" * 65536
MAX_BODY_BYTES = 64 * 1024  # a start request is a few hundred bytes


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    identities = Identities(Credentials.TOKEN, str(kubeconfig), None)
    return create_app(identities, allowed_hosts=None, max_followers=1)


def call(
    app: FastAPI, headers: dict[str, str], chunks: list[bytes], method: str = "POST"
) -> tuple[int, int]:
    """The answer's status, and how many of the body's chunks the server pulled."""
    pulled = 0
    answers: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {
                "type": "http.request",
                "body": chunks[pulled - 1],
                "more_body": pulled < len(chunks),
            }
        await asyncio.sleep(3600)  # the client has nothing more to send
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": START,
        "raw_path": START.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    start = next(m for m in answers if m["type"] == "http.response.start")
    return start["status"], pulled


JSON = {"host": "127.0.0.1:8080", "content-type": "application/json"}
TOKEN = {**JSON, "authorization": "Bearer abc"}


def test_a_write_without_credentials_is_refused_before_its_body_is_read(app: FastAPI) -> None:
    status, pulled = call(app, {**JSON, "content-length": str(300 * len(CHUNK))}, [CHUNK] * 300)
    assert (status, pulled) == (401, 0)
    status, pulled = call(app, JSON, [CHUNK] * 300)  # chunked: no length declared
    assert (status, pulled) == (401, 0)


def test_a_body_declared_over_the_bound_is_refused_unread(app: FastAPI) -> None:
    status, pulled = call(app, {**TOKEN, "content-length": str(MAX_BODY_BYTES + 1)}, [CHUNK] * 2)
    assert (status, pulled) == (413, 0)


def test_a_chunked_body_is_refused_once_it_passes_the_bound(app: FastAPI) -> None:
    status, pulled = call(app, TOKEN, [CHUNK] * 300)
    assert status == 413
    assert pulled <= MAX_BODY_BYTES // len(CHUNK) + 1


def test_a_start_request_with_too_many_variables_is_refused(app: FastAPI) -> None:
    body = json.dumps({"variables": {f"V{i}": "x" for i in range(101)}}).encode()
    assert len(body) < MAX_BODY_BYTES
    status, _ = call(app, {**TOKEN, "content-length": str(len(body))}, [body])
    assert status == 400
