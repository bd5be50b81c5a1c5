"""A work queue of object keys, as client-go's: each key is processed by one worker
at a time, adds while it is processed coalesce into one more pass, and keys can
be added after a delay (timers for log refreshes and deadlines)."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[K] = []
        self._dirty: set[K] = set()  # queued, waiting for a worker
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # the earliest pending timer of each key
        self._counter = 0
        self._stopped = False

    def add(self, key: K) -> None:
        with self._cond:
            if key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:  # else re-queued when its worker is done
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: K, seconds: float) -> None:
        """Adds the key after `seconds`, unless a timer of the key is due no later."""
        when = time.monotonic() + seconds
        with self._cond:
            if self._due.get(key, float("inf")) <= when:
                return
            self._due[key] = when
            self._counter += 1
            heapq.heappush(self._delayed, (when, self._counter, key))
            self._cond.notify()

    def _get(self) -> K | None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    when, _, key = heapq.heappop(self._delayed)
                    if self._due.get(key) == when:
                        del self._due[key]
                    if key not in self._dirty:
                        self._dirty.add(key)
                        if key not in self._processing:
                            self._queue.append(key)
                if self._queue:
                    key = self._queue.pop(0)
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                timeout = self._delayed[0][0] - now if self._delayed else None
                self._cond.wait(timeout)
            return None

    def _done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def run_workers(
        self,
        count: int,
        process: Callable[[K], None],
        on_error: Callable[[K, Exception], None],
        retry_after: float = 5.0,
    ) -> list[threading.Thread]:
        """Processes keys on `count` threads. A key whose processing raised is reported
        to `on_error` and processed again after `retry_after` seconds: one object's
        trouble never stops the others."""

        def work() -> None:
            while (key := self._get()) is not None:
                try:
                    process(key)
                except Exception as e:
                    on_error(key, e)
                    self.add_after(key, retry_after)
                finally:
                    self._done(key)

        threads = [
            threading.Thread(target=work, name=f"reconcile-{i}", daemon=True) for i in range(count)
        ]
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
