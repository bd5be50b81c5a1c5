"""A small fault-injecting proxy between the operator and the apiserver: it forwards
every request (watches and log streams as they come), authenticating upstream with the
admin's client certificate, and answers 500 to the requests a test chooses to fail."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import urllib3
import yaml

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
# (method, path with query, body) -> whether to fail this request
Rule = Callable[[str, str, bytes], bool]


class FaultProxy:
    def __init__(self, admin_kubeconfig: str) -> None:
        config = yaml.safe_load(Path(admin_kubeconfig).read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        self.upstream = cluster["server"]
        self.pool = urllib3.PoolManager(
            maxsize=64,
            cert_reqs="CERT_REQUIRED",
            ca_certs=cluster["certificate-authority"],
            cert_file=user["client-certificate"],
            key_file=user["client-key"],
        )
        self.rule: Rule = lambda method, path, body: False
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> str:
        """A kubeconfig that reaches the apiserver through this proxy."""
        port = self.server.server_address[1]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
            "current-context": "proxy",
        }
        path.write_text(yaml.safe_dump(config))
        return str(path)

    def fail_once(self, rule: Rule) -> None:
        """Fails the first request that matches `rule`, then forwards all again."""
        done = threading.Event()

        def once(method: str, path: str, body: bytes) -> bool:
            with self._lock:
                if done.is_set() or not rule(method, path, body):
                    return False
                done.set()
                return True

        self.rule = once

    def close(self) -> None:
        self.server.shutdown()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.rule(self.command, self.path, body):
                    proxy.failed.append(f"{self.command} {self.path}")
                    self._answer_500()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = proxy.pool.request(
                    self.command,
                    proxy.upstream + self.path,
                    body=body or None,
                    headers=headers,
                    preload_content=False,
                    redirect=False,
                    retries=False,
                    timeout=urllib3.Timeout(connect=5, read=None),
                )
                try:
                    self.send_response(upstream.status)
                    for key, value in upstream.headers.items():
                        if key.lower() not in HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in upstream.stream(32 * 1024, decode_content=False):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                finally:
                    upstream.release_conn()

            def _answer_500(self) -> None:
                data = json.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": "injected by the fault proxy",
                        "reason": "InternalError",
                        "code": 500,
                    }
                ).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
