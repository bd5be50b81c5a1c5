"""The one raw request layer to the apiserver, for the operator, the CLI and the server:
requests made through the kubernetes client's own serializer, authentication and
connection pool, without its generated methods (those validate every argument and build
model objects, which costs more CPU than the request on hot paths, and have no model
for Table answers); and what the apiserver's error answers say."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException


def call(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    accept: str = "application/json",
    content_type: str = "application/json",
    timeout: Any = None,
    stream: bool = False,
) -> Any:
    """The response's body (or, with `stream`, the open response), raising ApiException
    for any status but 2xx. A body is always read whole: only then does the connection go
    back to the pool, and an unread one costs a new TLS handshake later."""
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = content_type
    request = api.param_serialize(
        method=method,
        resource_path=path,
        path_params=params,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        response.read()  # type: ignore[no-untyped-call]
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return response.response if stream else response.response.data


def status_field(error: ApiException, name: str) -> str | None:
    """A field of the apiserver's Status answer, when the body is one."""
    try:
        value = json.loads(error.body or "")[name]
    except (ValueError, KeyError, TypeError):
        return None
    return str(value) if value else None


def error_message(error: ApiException) -> str:
    """What the apiserver said (its Status message), or the HTTP reason."""
    return status_field(error, "message") or str(error.reason)
