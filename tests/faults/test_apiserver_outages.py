"""The apiserver goes away as it does on a managed cluster's upgrade, a frozen VM or a
network partition, while the operator runs as the chart runs it (leader election on,
one replica and two, each restarted when it exits as a kubelet restarts a container):
runs created before, during and after the outage all end once, with one Job each, and
the operator acts again (or has exited and been restarted), never alive and idle."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from jobline.models import API_GROUP, API_VERSION
from tests.cluster.jobline_fixtures import Jobline, Operator, events_of
from tests.conftest import wait_for
from tests.faults.plane import frozen, kill, require_local_plane, start
from tests.faults.tcp_proxy import TcpProxy
from tests.faults.test_outages import PodWatch

pytestmark = pytest.mark.usefixtures("sim")
RESTART_DELAY = 2.0  # seconds between a replica's exit and its restart


class Replica:
    """An operator process restarted whenever it exits, as a Deployment's pod is."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        self.exits: list[int] = []  # exit codes, in order
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> None:
        self.operator.start()
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            process = self.operator.process
            if process is not None and (code := process.poll()) is not None:
                self.exits.append(code)
                if self._stopping.wait(RESTART_DELAY):
                    return
                self.operator.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self.operator.stop()

    def probe(self, path: str) -> int:
        url = f"http://127.0.0.1:{self.operator.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except OSError:  # not listening (yet)
            return 0


def through(proxy: TcpProxy, kubeconfig: str, path: Path) -> str:
    """A copy of `kubeconfig` whose server is reached through `proxy`."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = proxy.url.replace("http://", "https://")
    path.write_text(yaml.safe_dump(config))
    return str(path)


def apiserver_url(kubeconfig: str) -> str:
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    where = urlsplit(server)
    return f"http://{where.hostname}:{where.port}"


def serving(jl: Jobline) -> bool:
    """The apiserver serves runs again (a restarted one answers 503 for custom resources
    until their paths are installed)."""
    try:
        jl.custom.list_namespaced_custom_object(
            API_GROUP, API_VERSION, jl.namespace, "pipelinejobs", limit=1, _request_timeout=5
        )
        return True
    except Exception:
        return False


class Outage:
    """One way the apiserver goes away for the operator: `begin`, then `end` after
    `seconds`; `during` creates runs while it lasts (or, where nothing can reach the
    apiserver, the moment it serves again)."""

    def __init__(self, kind: str, seconds: float, proxy: TcpProxy | None = None) -> None:
        self.kind, self.seconds, self.proxy = kind, seconds, proxy
        self._how: tuple[list[str], str] | None = None
        self._frozen: Any = None

    def begin(self) -> None:
        if self.kind == "killed":
            self._how = kill("kube-apiserver")
        elif self.kind == "frozen":
            self._frozen = frozen("kube-apiserver")
            self._frozen.__enter__()
        else:
            assert self.proxy is not None
            self.proxy.blackhole()

    def end(self, jl: Jobline) -> None:
        if self.kind == "killed":
            assert self._how is not None
            start("kube-apiserver", self._how)
        elif self.kind == "frozen":
            self._frozen.__exit__(None, None, None)
        else:
            assert self.proxy is not None
            self.proxy.back()
        wait_for("the apiserver to serve again", lambda: serving(jl), timeout=90)

    def during(self, create: Callable[[], None]) -> threading.Thread | None:
        """Creates the runs of the outage: now (the operator's link alone is cut), on a
        thread whose request waits for the apiserver to thaw, or later (None)."""
        if self.kind == "unreachable":
            create()
        elif self.kind == "frozen":
            thread = threading.Thread(target=create)
            thread.start()
            return thread
        return None


# A short outage the Lease rides out (under the 10 s renew deadline), and long ones past
# the renew deadline and the Lease's 15 s (the leader exits; a standby may take over).
# Longer outages add nothing but time: once past both, every replica has given up.
OUTAGES = {
    "killed-6s": ("killed", 6.0),
    "killed-30s": ("killed", 30.0),
    "frozen-30s": ("frozen", 30.0),
    "unreachable-30s": ("unreachable", 30.0),
}


@pytest.fixture
def replicas_of(
    jl: Jobline, operator: Operator, tmp_path: Path
) -> Iterator[Callable[[int, str], list[Replica]]]:
    """Starts N replicas as the chart runs them, the session's operator stopped meanwhile
    (it would be one more actor); stops them and starts it again after."""
    require_local_plane()
    started: list[Replica] = []

    def make(count: int, kubeconfig: str) -> list[Replica]:
        for i in range(count):
            name = f"replica-{i}"
            replica = Replica(
                Operator(
                    kubeconfig,
                    tmp_path / f"{name}.log",
                    extra_args=("--leader-elect", f"--leader-election-namespace={jl.namespace}"),
                    env={**operator.env, "POD_NAME": name},
                )
            )
            replica.start()
            started.append(replica)
        return started

    operator.stop()
    try:
        yield make
    finally:
        for replica in started:
            replica.stop()
        if os.environ.get("JOBLINE_TEST_SHOW_OPERATOR_LOG"):
            for replica in started:
                print(replica.operator.log_path.read_text())
        operator.start()


def lease_holder(jl: Jobline) -> tuple[str | None, dt.datetime | None]:
    lease = client.CoordinationV1Api(jl.cluster.api).read_namespaced_lease(
        "jobline-operator", jl.namespace
    )
    return lease.spec.holder_identity, lease.spec.renew_time


@pytest.mark.parametrize("count", [1, 2], ids=["one-replica", "two-replicas"])
@pytest.mark.parametrize("outage_name", list(OUTAGES))
def test_an_apiserver_outage_never_stops_the_operator_for_good(
    jl: Jobline,
    operator: Operator,
    replicas_of: Callable[[int, str], list[Replica]],
    tmp_path: Path,
    outage_name: str,
    count: int,
) -> None:
    kind, seconds = OUTAGES[outage_name]
    proxy = TcpProxy(apiserver_url(operator.kubeconfig)) if kind == "unreachable" else None
    kubeconfig = (
        through(proxy, operator.kubeconfig, tmp_path / "proxied.kubeconfig")
        if proxy
        else operator.kubeconfig
    )
    replicas = replicas_of(count, kubeconfig)
    outage = Outage(kind, seconds, proxy)
    jl.pipeline("o", {"sim.jobline.dev/duration": "4s"}, maxConcurrentRuns=10)
    pods = PodWatch(jl.core, jl.namespace)
    created: dict[str, str] = {}  # run -> when it was created

    def create(when: str, n: int = 2) -> None:
        for i in range(1, n + 1):
            name = f"o-{when}-{i}"
            jl.start(name, "o")
            created[name] = when

    create("before")
    jl.wait_phase("o-before-1", "RUNNING", timeout=60)
    outage.begin()
    try:
        thread = outage.during(lambda: create("during"))
        time.sleep(seconds)
    finally:
        outage.end(jl)
    if thread is not None:
        thread.join(timeout=60)
    if "o-during-1" not in created:
        create("during")  # the moment the apiserver serves again
    time.sleep(10)
    create("after")
    ended_by = time.monotonic() + 180
    finals = {
        name: jl.wait_done(name, timeout=max(1.0, ended_by - time.monotonic())) for name in created
    }
    pods.stop()
    report = [
        f"{outage_name}, {count} replica(s); exits per replica: {[r.exits for r in replicas]}",
        *(f"  {n} ({w}): {finals[n]['phase']}/{finals[n]['reason']}" for n, w in created.items()),
    ]
    print("\n".join(report))
    for name, status in finals.items():
        assert (status["phase"], status["reason"], status["exitCode"]) == (
            "COMPLETE",
            "Completed",
            0,
        ), (name, status)
        # Ended once: one Completed Event at most (one may be lost to the outage).
        completed = [e for e in events_of(jl, "PipelineJob", name) if e.reason == "Completed"]
        assert len(completed) <= 1, (name, completed)
    for run, uids in pods.jobs.items():
        assert len(uids) == 1, f"{run} had {len(uids)} Jobs"
    # Acting, or a standby ready to: every replica alive now answers its probes, and the
    # Lease is held and renewed by one of them.
    holder, renewed = lease_holder(jl)
    assert holder in {f"replica-{i}" for i in range(count)}
    assert renewed is not None and (dt.datetime.now(dt.UTC) - renewed).total_seconds() < 15
    for replica in replicas:
        process = replica.operator.process
        if process is not None and process.poll() is None:
            assert (replica.probe("/healthz"), replica.probe("/readyz")) == (200, 200)
    if proxy is not None:
        proxy.close()


def test_a_killed_replica_is_what_the_supervisor_restarts(
    jl: Jobline, replicas_of: Callable[[int, str], list[Replica]], operator: Operator
) -> None:
    # The harness itself: an operator that exits is started again, as a kubelet would.
    [replica] = replicas_of(1, operator.kubeconfig)
    process = replica.operator.process
    assert process is not None
    wait_for("the probes to answer", lambda: replica.probe("/readyz") == 200, timeout=60)
    os.kill(process.pid, signal.SIGKILL)
    wait_for("a restart", lambda: replica.exits == [-signal.SIGKILL], timeout=30)
    jl.pipeline("o", {"sim.jobline.dev/duration": "1s"})
    jl.start("o-1", "o")
    assert jl.wait_done("o-1", timeout=90)["phase"] == "COMPLETE"
