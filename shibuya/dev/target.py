"""A small HTTP target on loopback for load tests: fast answers, a share of failures.

``GET /items`` answers 200; ``POST /login`` answers 200, except every ``fail_every``-th request,
which answers 500, so runs have errors to count.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every keep-alive answer
    server: _TargetServer

    def do_GET(self) -> None:
        self._answer(200, b'{"items":[1,2,3]}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        failed = self.server.fail_every and next(self.server.counter) % self.server.fail_every == 0
        self._answer(500, b'{"error":"boom"}') if failed else self._answer(200, b'{"ok":true}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TargetServer(ThreadingHTTPServer):
    daemon_threads = True
    fail_every = 0
    counter: Iterator[int] = itertools.count(1)


@contextmanager
def serve(port: int = 0, fail_every: int = 50, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve in a background thread; yields the port."""
    server = _TargetServer((host, port), _Handler)
    server.fail_every = fail_every
    server.counter = itertools.count(1)
    thread = threading.Thread(target=server.serve_forever, name="http-target", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
