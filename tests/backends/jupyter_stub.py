"""Real HTTP servers on loopback for probe and backend tests.

``HTTPStub`` answers ``routes[path](handler) -> (status, json body)`` and
counts concurrent requests. ``jupyter_stub`` answers like Jupyter Server's
``<base>api/status`` (token required): it stands in for the container a
real cluster would run, so the kubernetes backend's endpoint is probed over
HTTP. Not real there: no pod runs it; the fake API server only points at it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], tuple[int, object]]


class LoopbackServer(ThreadingHTTPServer):
    """A test server that leaves no thread behind and prints nothing.

    ``server_close`` joins every handler thread, so none outlives the
    fixture that started it; a client that hung up (the timeout tests do it
    on purpose) is expected, not an error to print. Both matter beyond
    tidiness: formatting a traceback runs ``ast.parse`` (3.11's error
    carets), and on CPython < 3.11.8 two threads parsing at once can make
    the other one raise "SystemError: AST constructor recursion depth
    mismatch" (gh-106905), e.g. the main thread importing hypothesis at the
    terminal summary.
    """

    daemon_threads = False
    block_on_close = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HTTPStub:
    def __init__(self, routes: dict[str, Route], delay: float = 0.0):
        self.routes, self.delay = routes, delay
        self.active = self.peak = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                stub.answer(self)

        self.httpd = LoopbackServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        ).start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        route = self.routes.get(handler.path)
        status, body = route(handler) if route else (404, {"message": "not found"})
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        with self.lock:
            self.active -= 1

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def authed(token: str, body: object) -> Route:
    """A route answering ``body`` only to ``Authorization: token <token>``."""

    def route(handler: BaseHTTPRequestHandler) -> tuple[int, object]:
        if handler.headers.get("Authorization") != f"token {token}":
            return 403, {"message": "Forbidden"}
        return 200, body

    return route


def jupyter_stub(base_url: str, token: str) -> HTTPStub:
    status = {"connections": 0, "kernels": 0, "last_activity": "2026-01-01T00:00:00Z"}
    return HTTPStub({f"{base_url}api/status": authed(token, status)})
