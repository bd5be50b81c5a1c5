"""Followed logs: each waits on the apiserver for as long as its run lasts, in a thread of
a pool of its own, so followers never starve the routes (which share a pool of 40) or the
health probe; past the limit, a follow is refused (429) rather than queued."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class Followers:
    """The logs being followed, at most `most` at once."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.streaming = 0
        self.threads = anyio.CapacityLimiter(most)

    def admit(self) -> bool:
        if self.streaming >= self.most:
            return False
        self.streaming += 1
        return True

    def release(self, stop: threading.Event) -> None:
        stop.set()  # a thread still reading the log for a reader that has gone ends soon
        self.streaming -= 1


class FollowedLog(StreamingResponse):
    """A followed log: its slot is released however the stream ends, the reader leaving
    included (then the stream is cancelled, and the thread reading is left to end)."""

    def __init__(
        self,
        lines: Iterator[tuple[int, str]],
        encode: Callable[[int, str], bytes],
        followers: Followers,
        stop: threading.Event,
        **kwargs: Any,
    ) -> None:
        super().__init__(self._chunks(lines, encode, followers), **kwargs)
        self.followers, self.stop = followers, stop

    @staticmethod
    async def _chunks(
        lines: Iterator[tuple[int, str]],
        encode: Callable[[int, str], bytes],
        followers: Followers,
    ) -> AsyncIterator[bytes]:
        while True:
            line = await anyio.to_thread.run_sync(
                next, lines, None, abandon_on_cancel=True, limiter=followers.threads
            )
            if line is None:
                return
            yield encode(*line)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.followers.release(self.stop)
