"""The work queue on fake time: coalescing, timers, per-key backoff and the overall bucket.
One test runs real worker threads, for the one-worker-per-key rule."""

import threading
import time

import pytest

from jobline.controller.workqueue import TokenBucket, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def drain(queue: WorkQueue[str]) -> list[str]:
    """Every key ready now, each marked done."""
    out = []
    while (key := queue.get(block=False)) is not None:
        out.append(key)
        queue.done(key)
    return out


def test_adds_before_processing_coalesce_and_keep_their_order(clock: FakeClock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock)
    for key in ["a", "b", "a", "c", "b", "a"]:
        queue.add(key)
    assert drain(queue) == ["a", "b", "c"]


def test_an_add_while_processing_comes_back_once_after_done(clock: FakeClock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add("a")
    assert queue.get(block=False) == "a"
    queue.add("a")
    queue.add("a")
    assert queue.get(block=False) is None  # not while it is processed
    queue.done("a")
    assert drain(queue) == ["a"]


def test_one_timer_per_key_and_an_earlier_time_wins(clock: FakeClock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add_after("a", 20)
    queue.add_after("a", 30)  # later than the pending timer: ignored
    queue.add_after("a", 5)  # earlier: replaces it
    queue.add_after("b", 10)
    clock.now += 4.9
    assert drain(queue) == []
    clock.now += 0.1
    assert drain(queue) == ["a"]  # fires once, at 5 s
    clock.now += 5
    assert drain(queue) == ["b"]
    clock.now += 100
    assert drain(queue) == []  # the replaced timers at 20 s and 30 s never fire


def test_failures_back_off_exponentially_per_key_and_success_forgets(clock: FakeClock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock, base_delay=0.005, max_delay=1000)
    delays = [queue.add_rate_limited("poison") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000  # capped
    assert queue.add_rate_limited("healthy") == 0.005  # keys back off independently
    queue.forget("poison")
    assert queue.failures("poison") == 0
    assert queue.add_rate_limited("poison") == 0.005


def test_the_bucket_limits_retries_of_many_keys_to_its_rate(clock: FakeClock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock, rate=10, burst=100)
    delays = [queue.add_rate_limited(f"k{i}") for i in range(150)]
    assert max(delays[:100]) == 0.005  # the burst goes at the per-key backoff
    assert delays[100] == pytest.approx(0.1)  # then one every 1/10 s
    assert delays[149] == pytest.approx(5.0)


def test_token_bucket_take_never_owes(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock)
    assert bucket.take()
    assert not bucket.take()
    clock.now += 1.9
    assert not bucket.take()
    clock.now += 0.1
    assert bucket.take()


def test_workers_retry_a_failed_key_and_never_run_a_key_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.01)
    active: set[str] = set()
    overlaps: list[str] = []
    done: list[str] = []
    errors: list[tuple[str, str]] = []
    lock = threading.Lock()

    a_started = threading.Event()

    def process(key: str) -> None:
        with lock:
            if key in active:
                overlaps.append(key)
            active.add(key)
        if key == "a":
            a_started.set()
        time.sleep(0.05)
        with lock:
            active.discard(key)
            done.append(key)
        if done.count(key) == 1 and key == "flaky":
            raise RuntimeError("apiserver away")

    queue.run_workers(
        4, process, lambda key, error, delay, failures: errors.append((key, str(error)))
    )
    queue.add("a")
    queue.add("flaky")
    assert a_started.wait(5)
    queue.add("a")  # while "a" is processed: one more pass afterwards, not a parallel one
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(done) < 4:
        time.sleep(0.01)
    queue.stop()
    assert overlaps == []
    assert sorted(done) == ["a", "a", "flaky", "flaky"]
    assert errors == [("flaky", "apiserver away")]


def test_stalled_counts_only_while_keys_wait_and_nothing_ends(clock: FakeClock) -> None:
    queue: WorkQueue[str] = WorkQueue(clock)
    clock.now += 600  # idle for ten minutes is not stalled
    assert queue.stalled_for() == 0.0
    queue.add("a")
    clock.now += 5
    assert queue.stalled_for() == 5.0
    key = queue.get(block=False)
    queue.add("b")  # a worker holds "a" and never ends it: "b" waits
    clock.now += 130
    assert queue.stalled_for() == 130.0
    assert key is not None
    queue.done(key)
    assert queue.stalled_for() == 0.0  # progress; "b" is ready again and waits from now


def test_a_key_comes_back_when_its_processing_says_not_otherwise() -> None:
    # As the CronJob controller's sync returns requeueAfter: the queue alone requeues.
    queue: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    again = {"deadline": 0.05, "settled": None}

    def process(key: str) -> float | None:
        seen.append(key)
        return again[key]

    queue.run_workers(1, process, lambda key, error, delay, failures: None)
    queue.add("deadline")
    queue.add("settled")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and seen.count("deadline") < 3:
        time.sleep(0.01)
    queue.stop()
    assert seen.count("deadline") >= 3  # back after its 50 ms, again and again
    assert seen.count("settled") == 1  # None: only when something changes
