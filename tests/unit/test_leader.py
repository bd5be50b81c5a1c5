"""Leader election on a fake of our Lease calls that fails as production fails: every
failure of a try is a failed try, whatever its type; a renewal's requests are bounded by
the renew deadline; every way out of the loop but stop ends leading and calls on_lost."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest

from jobline.controller.leader import LeaderElection
from tests.conftest import wait_for
from tests.unit.fakes import api_error, transport_errors

Obj = dict[str, Any]
FAST: dict[str, Any] = {"duration": 0.6, "renew_deadline": 0.4, "retry": 0.02}


class FakeLeases:
    """The three Lease calls of `Kube`, on one stored Lease; `failing` makes every call
    raise it until cleared; `timeouts` records the timeout each call was given."""

    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.version = 0
        self.failing: Exception | None = None
        self.timeouts: list[float | None] = []
        self.calls = 0

    def _call(self, timeout: float | None) -> None:
        self.calls += 1
        self.timeouts.append(timeout)
        if self.failing is not None:
            raise self.failing

    def read_lease(self, namespace: str, name: str, timeout: float | None = None) -> Obj | None:
        self._call(timeout)
        return copy.deepcopy(self.lease)

    def create_lease(
        self, namespace: str, name: str, spec: Obj, timeout: float | None = None
    ) -> Obj:
        self._call(timeout)
        if self.lease is not None:
            raise api_error(409, "already exists")
        self.version += 1
        self.lease = {"metadata": {"resourceVersion": str(self.version)}, "spec": spec}
        return copy.deepcopy(self.lease)

    def replace_lease(
        self, namespace: str, name: str, lease: Obj, timeout: float | None = None
    ) -> Obj:
        self._call(timeout)
        assert self.lease is not None
        if lease["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise api_error(409, "the object has been modified")
        self.version += 1
        self.lease = {**lease, "metadata": {"resourceVersion": str(self.version)}}
        return copy.deepcopy(self.lease)


class Replica:
    def __init__(self, leases: FakeLeases, identity: str = "a") -> None:
        self.election = LeaderElection(leases, "ns", "lease", identity, **FAST)
        self.started = threading.Event()
        self.lost = threading.Event()

    def start(self, on_started: Any = None) -> None:
        self.election.start(on_started or self.started.set, self.lost.set)


@pytest.mark.parametrize("error", transport_errors(), ids=lambda e: type(e).__name__)
def test_a_network_error_while_acquiring_is_a_failed_try_and_the_next_one_leads(
    error: Exception,
) -> None:
    leases = FakeLeases()
    leases.failing = error
    replica = Replica(leases)
    replica.start()
    wait_for("a few failed tries", lambda: leases.calls >= 3, timeout=5)
    assert not replica.started.is_set() and not replica.lost.is_set()
    assert replica.election.problems() == []  # its thread lives on
    leases.failing = None
    wait_for("leading", replica.started.is_set, timeout=5)
    assert replica.election.may_act()
    replica.election.stop()


@pytest.mark.parametrize("error", transport_errors(), ids=lambda e: type(e).__name__)
def test_a_network_error_shorter_than_the_renew_deadline_keeps_the_lead(error: Exception) -> None:
    leases = FakeLeases()
    replica = Replica(leases)
    replica.start()
    wait_for("leading", replica.started.is_set, timeout=5)
    leases.failing = error
    time.sleep(FAST["renew_deadline"] / 2)
    leases.failing = None
    time.sleep(FAST["renew_deadline"])
    assert not replica.lost.is_set()
    assert replica.election.may_act() and replica.election.problems() == []
    replica.election.stop()


@pytest.mark.parametrize("error", transport_errors(), ids=lambda e: type(e).__name__)
def test_a_network_error_past_the_renew_deadline_loses_the_lead(error: Exception) -> None:
    leases = FakeLeases()
    replica = Replica(leases)
    replica.start()
    wait_for("leading", replica.started.is_set, timeout=5)
    leases.failing = error
    wait_for("the lead lost", replica.lost.is_set, timeout=5)
    assert not replica.election.leading.is_set() and not replica.election.may_act()


def test_each_renewal_request_ends_by_the_renew_deadline() -> None:
    leases = FakeLeases()
    replica = Replica(leases)
    replica.start()
    wait_for("leading", replica.started.is_set, timeout=5)
    wait_for("renewals", lambda: len(leases.timeouts) >= 10, timeout=5)
    timeouts = list(leases.timeouts)
    replica.election.stop()
    assert all(t is not None and t <= FAST["renew_deadline"] + 0.5 for t in timeouts), timeouts


def test_an_exception_out_of_the_loop_ends_leading_and_calls_on_lost() -> None:
    leases = FakeLeases()
    replica = Replica(leases)

    def broken_start() -> None:
        raise RuntimeError("the manager could not start")

    replica.start(on_started=broken_start)
    wait_for("on_lost", replica.lost.is_set, timeout=5)
    assert not replica.election.leading.is_set()


def test_a_replica_that_finds_the_lease_taken_loses_at_once() -> None:
    leases = FakeLeases()
    first = Replica(leases, "a")
    first.start()
    wait_for("a leading", first.started.is_set, timeout=5)
    assert leases.lease is not None
    leases.lease["spec"]["holderIdentity"] = "b"  # b took it (a was frozen, say)
    leases.lease["spec"]["renewTime"] = "2099-01-01T00:00:00.000000Z"
    wait_for("a lost", first.lost.is_set, timeout=5)


def test_stop_gives_the_lease_up_even_when_the_apiserver_is_gone() -> None:
    leases = FakeLeases()
    replica = Replica(leases)
    replica.start()
    wait_for("leading", replica.started.is_set, timeout=5)
    leases.failing = transport_errors()[0]
    replica.election.stop()  # must not raise
    assert not replica.lost.is_set()


def test_the_write_window_counts_from_when_the_renewal_was_sent_not_answered() -> None:
    # A slow answer, then a partition: another replica may take the Lease `duration` after
    # the renew time it saw, which was written when the request was sent. Counting this
    # replica's window from the answer would let both write for as long as it was slow.
    now = [100.0]
    leases = FakeLeases()
    slow = leases.create_lease

    def create_lease(namespace: str, name: str, spec: Obj, timeout: float | None = None) -> Obj:
        created = slow(namespace, name, spec, timeout)
        now[0] += 0.3  # the answer comes 0.3 s after the request left
        return created

    leases.create_lease = create_lease  # type: ignore[method-assign]
    election = LeaderElection(
        leases,
        "ns",
        "lease",
        "a",
        duration=0.6,
        renew_deadline=0.4,
        retry=60.0,  # no renewal during the test
        clock=lambda: now[0],
    )
    started = threading.Event()
    election.start(started.set, lambda: None)
    try:
        assert started.wait(5)
        assert election.may_act()
        now[0] = 100.0 + 0.4 + 0.05  # the renew deadline, from the request's departure
        assert not election.may_act()
    finally:
        election.stop()
