"""Our request layer against the network's real failures, on loopback: a port where no
one listens, a server that resets every connection, one that cuts its answer short, and
one that accepts and never answers. No API is faked: each failure is the kernel's."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.controller.kube import Kube
from jobline.kube import config as kube_config
from jobline.kube.informer import Informer
from jobline.kube.request import FAILED_REQUEST, describe
from jobline.kube.store import Store


class Server:
    """A TCP server on 127.0.0.1 that treats every connection as `mode` says, counting
    the connections it accepted."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        if mode == "refused":
            self._listener.close()  # nothing listens: the kernel refuses
            return
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "reset":
                conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # RST
            elif self.mode == "cut":
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 512\r\n\r\n{")
                conn.close()
            else:  # silent: holds the connection, answers nothing
                self._held.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._held:
            conn.close()


@contextlib.contextmanager
def server(mode: str) -> Iterator[Server]:
    found = Server(mode)
    try:
        yield found
    finally:
        found.close()


def kube_at(port: int) -> Kube:
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    return Kube(kube_config.api_client(configuration, "jobline-test"))


MODES = ["refused", "reset", "cut", "silent"]


@pytest.mark.parametrize("mode", MODES)
def test_every_network_failure_is_a_failed_request_and_not_an_api_answer(mode: str) -> None:
    with server(mode) as where, pytest.raises(FAILED_REQUEST) as failed:
        kube_at(where.port).read_lease("default", "jobline-operator", timeout=1.0)
    assert not isinstance(failed.value, ApiException)
    assert describe(failed.value)  # one line a person can read


@pytest.mark.parametrize("mode", ["refused", "reset", "cut"])  # silent: 30 s, the same path
def test_an_event_that_cannot_be_posted_never_fails_the_caller(mode: str) -> None:
    run = {"kind": "PipelineJob", "metadata": {"name": "r", "namespace": "ns", "uid": "u"}}
    with server(mode) as where:
        kube_at(where.port).post_event(run, "Normal", "Completed", "done", dt.datetime.now(dt.UTC))


def test_a_request_to_a_server_that_never_answers_is_tried_once_within_its_timeout() -> None:
    # urllib3's default would try four times (three hidden retries): four timeouts long.
    with server("silent") as where:
        with pytest.raises(FAILED_REQUEST):
            kube_at(where.port).read_lease("default", "jobline-operator", timeout=1.0)
        assert where.accepted == 1


def test_the_clients_of_the_cli_and_the_server_retry_nothing_either(tmp_path: Path) -> None:
    with server("silent") as where:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "c", "cluster": {"server": f"http://127.0.0.1:{where.port}"}}
                    ],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        configuration, namespace = kube_config.load(str(kubeconfig))
        api = kube_config.api_client(configuration, "jobline-test")
        with pytest.raises(FAILED_REQUEST):
            client.CoreV1Api(api).list_namespace(_request_timeout=(1, 1))
        assert (namespace, where.accepted) == ("default", 1)


@pytest.mark.parametrize("mode", ["refused", "reset", "cut"])
def test_a_watch_that_cannot_reach_the_apiserver_keeps_trying_on_its_thread(mode: str) -> None:
    with server(mode) as where:
        configuration = client.Configuration(host=f"http://127.0.0.1:{where.port}")
        api = kube_config.api_client(configuration, "jobline-test")
        informer = Informer(api, "PipelineJob", ["ns"], Store())
        informer.start()
        try:
            time.sleep(2.0)  # tries at 0, ~0.5 and ~1.5 s
            assert informer.dead() == 0  # the thread lives on, backing off
            assert not informer.synced.is_set()
            if mode != "refused":
                assert where.accepted >= 2  # it tried again, and again
        finally:
            informer.stop()
