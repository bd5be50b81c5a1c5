"""One active replica at a time, by a coordination.k8s.io Lease, as Go controllers elect.

The holder renews the Lease every `retry` seconds. Another replica takes it only when it
has seen the same holder and renew time for longer than `duration` seconds by its own
clock (so clocks need not agree). A holder that cannot renew within `renew_deadline`
seconds, or finds another replica holding it (after a freeze, say), stops acting at once
(`on_lost`: the process exits, and Kubernetes restarts it as a standby); one that stops
cleanly gives the Lease up so the next takes over without waiting for it to expire.

The write window (`may_act`) counts from when a renewal's first request was sent, not
from when it was answered: stricter than client-go, which counts from the answer. A slow
answer then shortens this replica's window instead of overlapping the next leader's.
Nothing more fences a write (the apiserver knows no Lease): see docs/reliability.md.

As client-go's: every failure of a try is a failed try, whatever its type (the network's
errors included); each request of a renewal is bounded by what is left of the renew
deadline, so a hung read cannot hold renewal past it; and every way out of the loop
but `stop`, an exception included, ends in `on_lost`: a replica is never alive without
either leading or trying to.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from jobline.controller.kube import TIMEOUT, LeaseAPI
from jobline.kube.request import FAILED_REQUEST, describe

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def micro_time(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    def __init__(
        self,
        kube: LeaseAPI,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_deadline = renew_deadline
        self.retry = retry
        self.clock = clock
        self.leading = threading.Event()
        self._stopped = threading.Event()
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # when it last changed, by our clock
        self._taken = False  # the last try found another replica holding the Lease
        # When this replica last renewed the Lease, by our clock: when that renewal's first
        # request was sent (the renew time it wrote is from then), not when it was answered.
        self._renewed = 0.0
        self._sent = 0.0  # when the latest try's first request was sent
        self._thread: threading.Thread | None = None

    def start(self, on_started: Callable[[], None], on_lost: Callable[[], None]) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(on_started, on_lost), name="leader-election", daemon=True
        )
        self._thread.start()

    def problems(self) -> list[str]:
        """For the liveness probe: the election's thread has died (it never should)."""
        thread = self._thread
        if thread is not None and not thread.is_alive() and not self._stopped.is_set():
            return ["the leader election has stopped"]
        return []

    def may_act(self) -> bool:
        """Whether this replica may write now: it leads and renewed within the renew
        deadline. A process that was frozen past its Lease finds this false the moment
        it wakes, before its election loop has had a chance to notice."""
        return self.leading.is_set() and self.clock() - self._renewed <= self.renew_deadline

    def stop(self) -> None:
        """Stops renewing and, if leading, gives the Lease up."""
        self._stopped.set()
        if self.leading.is_set():
            try:
                lease = self.kube.read_lease(self.namespace, self.name)
                if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    lease["spec"]["holderIdentity"] = None
                    lease["spec"]["leaseDurationSeconds"] = 1
                    self.kube.replace_lease(self.namespace, self.name, lease)
            except FAILED_REQUEST as e:
                log.warning("could not give the leader Lease up: %s", describe(e))

    def _run(self, on_started: Callable[[], None], on_lost: Callable[[], None]) -> None:
        try:
            if self._lead(on_started):
                return  # stopped
        except BaseException:
            log.exception("the leader election failed")
        self.leading.clear()
        on_lost()

    def _lead(self, on_started: Callable[[], None]) -> bool:
        """Acquires the Lease, then renews it; True when stopped, False when lost."""
        log.info("waiting to lead (Lease %s/%s, as %s)", self.namespace, self.name, self.identity)
        while not self._stopped.is_set() and not self._try(self.clock() + self.renew_deadline):
            self._stopped.wait(self.retry)
        if self._stopped.is_set():
            return True
        log.info("leading (Lease %s/%s)", self.namespace, self.name)
        self._renewed = self._sent
        self.leading.set()
        on_started()
        while not self._stopped.wait(self.retry):
            if self._try(self._renewed + self.renew_deadline):
                self._renewed = self._sent
            elif self._taken or self.clock() - self._renewed > self.renew_deadline:
                log.error("lost the leader Lease %s/%s: stopping", self.namespace, self.name)
                return False
        return True

    def _try(self, deadline: float) -> bool:
        """Acquires or renews the Lease, each request ending by `deadline` (by our clock);
        True when this replica holds it now. Any failure is a failed try."""
        self._sent = self.clock()  # before any request: the window starts here
        now = dt.datetime.now(dt.UTC)
        self._taken = False
        try:
            timeout = self._timeout(deadline)
            lease = self.kube.read_lease(self.namespace, self.name, timeout)
            spec = {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            }
            if lease is None:
                self.kube.create_lease(self.namespace, self.name, spec, self._timeout(deadline))
                return True
            current = lease.get("spec") or {}
            holder = current.get("holderIdentity") or ""
            seen = (holder, current.get("renewTime") or "")
            if seen != self._observed:
                self._observed, self._observed_at = seen, self.clock()
            held_by_other = holder and holder != self.identity
            expired = self.clock() - self._observed_at > float(
                current.get("leaseDurationSeconds") or self.duration
            )
            self._taken = bool(held_by_other and not expired)
            if self._taken:
                return False
            if holder == self.identity:
                spec["acquireTime"] = current.get("acquireTime") or spec["acquireTime"]
                spec["leaseTransitions"] = current.get("leaseTransitions") or 0
            else:
                spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
            lease["spec"] = spec
            # The resourceVersion read guards the write: 409 if another replica wrote since.
            self.kube.replace_lease(self.namespace, self.name, lease, self._timeout(deadline))
            return True
        except Exception as e:
            if not (isinstance(e, ApiException) and e.status == 409):
                log.warning("leader election: %s", describe(e))
            return False

    def _timeout(self, deadline: float) -> float:
        """Seconds a request may take: what is left until `deadline`, at most the usual
        read timeout, and never so little that a healthy apiserver could not answer."""
        return max(0.5, min(float(TIMEOUT[1]), deadline - self.clock()))
