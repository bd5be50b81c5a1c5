import threading
import time

from jobline.controller.workqueue import WorkQueue


def run_queue(queue: WorkQueue[str], seen: list[str], hold: float = 0.0) -> None:
    def process(key: str) -> None:
        seen.append(key)
        time.sleep(hold)

    queue.run_workers(2, process, on_error=lambda key, error: None)


def wait_until(predicate: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():  # type: ignore[operator]
        time.sleep(0.01)


def test_adds_before_processing_coalesce() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    seen: list[str] = []
    run_queue(queue, seen)
    wait_until(lambda: len(seen) >= 2)
    time.sleep(0.1)
    queue.stop()
    assert sorted(seen) == ["a", "b"]


def test_a_key_is_never_processed_twice_at_once_and_late_adds_run_again() -> None:
    queue: WorkQueue[str] = WorkQueue()
    active: set[str] = set()
    overlaps: list[str] = []
    done: list[str] = []
    lock = threading.Lock()

    def process(key: str) -> None:
        with lock:
            if key in active:
                overlaps.append(key)
            active.add(key)
        time.sleep(0.05)
        with lock:
            active.discard(key)
            done.append(key)

    queue.run_workers(4, process, on_error=lambda key, error: None)
    queue.add("a")
    time.sleep(0.01)
    queue.add("a")  # while "a" is processed: one more pass afterwards, not a parallel one
    wait_until(lambda: len(done) >= 2)
    queue.stop()
    assert overlaps == []
    assert done == ["a", "a"]


def test_add_after_keeps_only_the_earliest_timer() -> None:
    queue: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    run_queue(queue, seen)
    queue.add_after("a", 0.2)
    queue.add_after("a", 0.3)  # later than the pending one: dropped
    queue.add_after("a", 0.05)  # earlier: kept
    time.sleep(0.5)
    queue.stop()
    assert seen == ["a", "a"]  # at 0.05 and at 0.2


def test_a_failed_key_is_reported_and_retried() -> None:
    queue: WorkQueue[str] = WorkQueue()
    attempts: list[str] = []
    errors: list[tuple[str, str]] = []

    def process(key: str) -> None:
        attempts.append(key)
        if len(attempts) == 1:
            raise RuntimeError("apiserver away")

    queue.run_workers(1, process, lambda key, error: errors.append((key, str(error))), 0.05)
    queue.add("a")
    wait_until(lambda: len(attempts) >= 2)
    queue.stop()
    assert attempts == ["a", "a"]
    assert errors == [("a", "apiserver away")]
