"""The probes: /healthz (live: the workers and watches make progress) and /readyz (ready:
a standby waiting for the lead, or a leader whose caches are synced)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(
    address: str, problems: Callable[[], list[str]], ready: Callable[[], bool]
) -> ThreadingHTTPServer:
    host, _, port = address.rpartition(":")

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                found = problems()
                self._answer(503 if found else 200, {"ok": not found, "problems": found})
            elif self.path == "/readyz":
                is_ready = ready()
                self._answer(200 if is_ready else 503, {"ready": is_ready})
            else:
                self._answer(404, {"error": "not found"})

        def _answer(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the operator's own log

    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Probe)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
