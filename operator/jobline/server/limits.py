"""What the server refuses before any route reads a request's body: writes without
credentials where every caller must bring a token (401), and bodies over a small bound
(413), declared or chunked. A route that reads the body whole first would let anyone
who can reach the server make it hold as much memory as they send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from jobline.server.problems import problem
from jobline.server.security import WRITE_METHODS

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# A start request is a few hundred bytes; 100 variables of some hundred bytes fit.
MAX_BODY_BYTES = 64 * 1024
NO_CREDENTIALS = "no credentials: send 'Authorization: Bearer <token>' with a Kubernetes token"


class BodyLimit:
    """ASGI middleware: refuses before reading, else reads the body (at most
    MAX_BODY_BYTES) and hands it on; what the route receives after it comes from the
    client as before (a followed log listens for the client's disconnect)."""

    def __init__(self, app: App, token_required: Callable[[], bool]) -> None:
        self.app = app
        self.token_required = token_required

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        anonymous = "authorization" not in headers
        if scope["method"] in WRITE_METHODS and anonymous and self.token_required():
            await _answer(scope, send, 401, "Unauthorized", NO_CREDENTIALS)
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await _too_large(scope, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await _too_large(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: MutableMapping[str, Any], send: Send) -> None:
    message = f"the request's body is over {MAX_BODY_BYTES // 1024} KiB"
    await _answer(scope, send, 413, "RequestEntityTooLarge", message)


async def _answer(
    scope: MutableMapping[str, Any], send: Send, status: int, reason: str, message: str
) -> None:
    response = problem(status, reason, message)
    # The body is left unread: the connection closes after the answer.
    response.headers["Connection"] = "close"

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
