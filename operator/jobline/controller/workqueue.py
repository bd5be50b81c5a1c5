"""A work queue of object keys with client-go's semantics.

- A key is processed by one worker at a time; adds while it is processed
  coalesce into one more pass after it.
- `add_after` keeps one timer per key: a later time never replaces an earlier one.
- A key whose processing failed comes back after a per-key exponential backoff
  (5 ms doubling up to 1000 s), and never faster than an overall token bucket
  allows (10 per second, bursts of 100), so a poison object costs a few requests,
  not one every few seconds; a success forgets the key's failures.
- The clock is injected, so tests run on fake time.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from jobline.kube.request import FAILED_REQUEST, describe

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


class TokenBucket:
    """Hands out the time at which each new token may be used (client-go's BucketRateLimiter)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Takes a token if one is there now."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def available(self) -> bool:
        """Whether a token is there now (none is taken)."""
        self._refill()
        return self._tokens >= 1

    def delay(self) -> float:
        """Takes a token, owing it if there is none; returns how long until it is there."""
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class WorkQueue(Generic[K]):
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        rate: float = 10.0,
        burst: int = 100,
    ) -> None:
        self.clock = clock
        self.base_delay, self.max_delay = base_delay, max_delay
        self._bucket = TokenBucket(rate, burst, clock)
        self._cond = threading.Condition()
        self._ready: deque[K] = deque()
        self._dirty: set[K] = set()  # queued, waiting for a worker
        self._processing: set[K] = set()
        self._timers: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # each key's pending timer
        self._failures: dict[K, int] = {}
        self._last_done = clock()
        self._ready_since = clock()  # when the ready deque last went from empty to not
        self._counter = 0
        self._stopped = False
        self._workers: list[threading.Thread] = []

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready)

    def add(self, key: K) -> None:
        with self._cond:
            self._add(key)

    def _add(self, key: K) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:  # else queued again when its worker is done
            if not self._ready:
                self._ready_since = self.clock()
            self._ready.append(key)
            self._cond.notify()

    def add_after(self, key: K, seconds: float) -> None:
        """Adds the key after `seconds`, unless a timer of the key is due no later."""
        if seconds <= 0:
            self.add(key)
            return
        when = self.clock() + seconds
        with self._cond:
            if self._due.get(key, float("inf")) <= when:
                return
            self._due[key] = when
            self._counter += 1
            heapq.heappush(self._timers, (when, self._counter, key))
            self._cond.notify()

    def due_in(self, key: K) -> float | None:
        """Seconds until the key's timer adds it, if it has one."""
        with self._cond:
            when = self._due.get(key)
        return None if when is None else when - self.clock()

    def add_rate_limited(self, key: K) -> float:
        """Adds the key again after its backoff; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            backoff: float = min(self.max_delay, self.base_delay * 2.0**failures)
            delay = max(float(backoff), self._bucket.delay())
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Clears the key's failures: its next failure backs off from the start."""
        with self._cond:
            self._failures.pop(key, None)

    def retry_now(self) -> int:
        """Adds every key waiting out a failure's backoff now (the apiserver is back: what
        failed while it was gone need not wait minutes more); how many. Their failure
        counts stay, so a key that fails again backs off as before."""
        with self._cond:
            failed = [k for k in self._due if self._failures.get(k)]
            for key in failed:
                del self._due[key]  # its stale heap entry is skipped when it comes up
                self._add(key)
            return len(failed)

    def dead_workers(self) -> int:
        """How many worker threads have ended without `stop` (never, by design)."""
        with self._cond:
            if self._stopped:
                return 0
        return sum(1 for thread in self._workers if not thread.is_alive())

    def failures(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, block: bool = True) -> K | None:
        """The next key to process (call `done` after), or None when stopped (or, with
        block=False, when no key is ready)."""
        with self._cond:
            while not self._stopped:
                now = self.clock()
                while self._timers and self._timers[0][0] <= now:
                    when, _, key = heapq.heappop(self._timers)
                    if self._due.get(key) == when:
                        del self._due[key]
                        self._add(key)
                if self._ready:
                    key = self._ready.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                if not block:
                    return None
                self._cond.wait(self._timers[0][0] - now if self._timers else None)
            return None

    def stalled_for(self) -> float:
        """Seconds that keys have been ready to process while no processing ended: how
        long the workers have been stuck (0 when idle or making progress)."""
        with self._cond:
            if not self._ready:
                return 0.0
            return max(0.0, self.clock() - max(self._last_done, self._ready_since))

    def done(self, key: K) -> None:
        with self._cond:
            self._last_done = self.clock()
            self._processing.discard(key)
            if key in self._dirty:
                if not self._ready:
                    self._ready_since = self.clock()
                self._ready.append(key)
                self._cond.notify()

    def run_workers(
        self,
        count: int,
        process: Callable[[K], float | None],
        on_error: Callable[[K, Exception, float, int], None],
        name: str = "worker",
    ) -> list[threading.Thread]:
        """Processes keys on `count` threads. `process` returns when to look at the key
        again (seconds; None: only when something changes), as the CronJob controller's
        sync returns its requeueAfter. A key whose processing raised is reported to
        `on_error` (with the delay before its retry and how many times in a row it failed)
        and retried after its backoff: one object's trouble never stops the others."""

        def work() -> None:
            while (key := self.get()) is not None:
                try:
                    again = process(key)
                except Exception as e:
                    delay = self.add_rate_limited(key)
                    on_error(key, e, delay, self.failures(key))
                else:
                    self.forget(key)
                    if again is not None:
                        self.add_after(key, again)
                finally:
                    self.done(key)

        threads = [
            threading.Thread(target=work, name=f"{name}-{i}", daemon=True) for i in range(count)
        ]
        for thread in threads:
            thread.start()
        self._workers += threads
        return threads

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


def failure_logger(kind: str) -> Callable[[Any, Exception, float, int], None]:
    """Logs a failed sync of an object of `kind` (its key: (namespace, name), or a UID),
    which the queue retries later: with its traceback the first time, in one line when
    the same object fails again."""

    def log_failure(key: Any, error: Exception, retry_in: float, failures: int) -> None:
        where = {"namespace": key[0], "name": key[1]} if isinstance(key, tuple) else {"uid": key}
        # A request the apiserver or the network failed is no bug: one line, no traceback.
        request_failed = isinstance(error, FAILED_REQUEST)
        log.error(
            "reconciling failed (%d time(s) in a row): %s; retrying in %.1f s",
            failures,
            describe(error) if request_failed else error,
            retry_in,
            exc_info=error if failures == 1 and not request_failed else None,
            extra={"k8s_ref": {"kind": kind, **where}},
        )

    return log_failure
