"""A tiny HTTP server on 127.0.0.1 for the bench client's error handling: each route answers what a test sets.

It proves how the client reacts to statuses, bodies, refusals and delays; it proves nothing about the webui itself
(the live tier does that, and the answers it serves here were recorded from the live webui where noted).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# route handler: (request body parsed as JSON or None) -> (status, body as JSON-able, delay in seconds)
Handler = Callable[[Any], tuple[int, Any, float]]


class FakeWebui:
    def __init__(self):
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[tuple[str, str, Any]] = []
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def _answer(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append((method, self.path, body))
                handler = fake.routes.get((method, self.path))
                status, answer, delay = handler(body) if handler else (404, {"detail": "Not Found"}, 0.0)
                if delay:
                    time.sleep(delay)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, status: int = 200, body: Any = None, delay: float = 0.0) -> None:
        """A fixed answer."""
        self.routes[(method, path)] = lambda _request: (status, body, delay)

    def handle(self, method: str, path: str, handler: Handler) -> None:
        """An answer computed from the request body."""
        self.routes[(method, path)] = handler

    def __enter__(self) -> FakeWebui:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
