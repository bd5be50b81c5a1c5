"""A TCP proxy in front of a server on 127.0.0.1 that a test can take down and bring
back: while down, it closes every connection at once (as a store that is gone); while
blackholed, it drops everything without a word (as a network that loses packets: open
connections carry nothing and new ones are never answered, until it is back). It counts
the HTTP requests it forwards. Bytes pass unchanged, so TLS and a signed S3 request stay
valid."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit

REQUEST_LINE_END = b" HTTP/1.1\r\n"


class TcpProxy:
    def __init__(self, upstream_url: str) -> None:
        where = urlsplit(upstream_url)
        self.upstream = (where.hostname or "127.0.0.1", where.port or 80)
        self.up = threading.Event()
        self.up.set()
        self.flowing = threading.Event()  # cleared while blackholed
        self.flowing.set()
        self.requests = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        """Closes every open connection and refuses new ones until `back`."""
        self.up.clear()
        with self._lock:
            for sock in self._open:
                _close(sock)
            self._open.clear()

    def blackhole(self) -> None:
        """Forwards nothing and answers nothing, closing nothing, until `back`."""
        self.flowing.clear()

    def back(self) -> None:
        self.up.set()
        self.flowing.set()

    def close(self) -> None:
        self.down()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self.up.is_set():
                _close(client)
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.flowing.wait()  # a connection made while blackholed is answered once back
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        with self._lock:
            self._open |= {client, server}
        threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
        threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()  # held, not lost: TCP retransmits once the path is back
                if requests:
                    with self._lock:
                        self.requests += data.count(REQUEST_LINE_END)
                target.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
