"""The one raw request layer to the apiserver, for the operator, the CLI and the server:
requests on the kubernetes client's own configuration, credentials and connection pool,
without its generated methods or its serializer (those validate every argument, walk
every body and build model objects, which cost more CPU than the request itself on the
operator's hot paths, and have no model for Table answers); and what the apiserver's
error answers say."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3
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
    for any status but 2xx. `path` holds {placeholders} for `params`. A body is always
    read whole: only then does the connection go back to the pool, and an unread one costs
    a new TLS handshake later."""
    if params:
        path = path.format_map({k: quote(str(v), safe="") for k, v in params.items()})
    url = api.configuration.host + path
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    headers = {**api.default_headers, "Accept": accept}
    # The client's own credentials, refreshed as it refreshes them (exec plugins, a
    # rotated ServiceAccount token).
    for auth in api.configuration.auth_settings().values():
        if auth["in"] == "header" and auth["value"]:
            headers[auth["key"]] = auth["value"]
    data = None
    if body is not None:
        headers["Content-Type"] = content_type
        data = orjson.dumps(body)
    response = api.rest_client.pool_manager.request(
        method,
        url,
        body=data,
        headers=headers,
        timeout=_timeout(timeout),
        preload_content=False,
    )
    if not 200 <= response.status <= 299:
        answer = response.read(cache_content=True)  # the exception reads `data`
        response.release_conn()
        raise ApiException.from_response(
            http_resp=response, body=answer.decode("utf-8", errors="replace"), data=None
        )
    if stream:
        return response
    try:
        return response.read()
    finally:
        response.release_conn()


def _timeout(value: Any) -> urllib3.Timeout | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return urllib3.Timeout(connect=value[0], read=value[1])
    return urllib3.Timeout(total=value)


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
