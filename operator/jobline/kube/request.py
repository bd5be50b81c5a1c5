"""The one raw request layer to the apiserver, for the operator, the CLI and the server:
requests on the kubernetes client's own configuration, credentials and connection pool,
without its generated methods or its serializer (those validate every argument, walk
every body and build model objects, which cost more CPU than the request itself on the
operator's hot paths, and have no model for Table answers); what the apiserver's error
answers say; and what a failed request is.

A failed request is a failed try, whatever its type, as client-go has it: an answer
that is not 2xx (`ApiException`), and every way the network fails, which urllib3 and
the standard library raise as classes of their own (`MaxRetryError`, `ProtocolError`,
`ReadTimeoutError`, `NewConnectionError`, `IncompleteRead`, `ConnectionResetError`, ...).
`FAILED_REQUEST` names them all, once; a caller that retries catches exactly that. No
request is retried here: each caller retries with its own backoff, and a timeout given
here is the real one (urllib3 would otherwise retry three times within it)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

# The network's failures: refused, reset, cut short, timed out, TLS, name lookup.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)
# Every way a request to the apiserver can fail: its answers and the network's failures.
FAILED_REQUEST: tuple[type[Exception], ...] = (ApiException, *TRANSPORT_ERRORS)
DEFAULT_TIMEOUT = (5, 30)  # seconds to connect, seconds between bytes


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
    timeout: Any = DEFAULT_TIMEOUT,
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
        retries=False,
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


def describe(error: Exception) -> str:
    """One line saying how a request failed: the apiserver's answer, or the network's
    failure (urllib3 nests the cause of a connection error: its innermost reason)."""
    if isinstance(error, ApiException):
        if not error.status:
            return str(error.reason)
        return f"answered {error.status}: {error_message(error)}"
    reason = getattr(error, "reason", None)
    while isinstance(reason, Exception) and getattr(reason, "reason", None) is not None:
        reason = getattr(reason, "reason", None)
    cause = reason if isinstance(reason, Exception) else error
    return f"{type(cause).__name__}: {cause}"


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
