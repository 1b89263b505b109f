"""Reference runtime gateway: the HTTP protocol of
``docs/runtime-gateway.openapi.yaml`` served over any ``RuntimeBackend``
(the local one by default), for sites whose runtimes start elsewhere.

Stdlib only (``http.server``), no Django. Every request needs
``Authorization: Bearer <token>``. Errors are JSON ``{code, message,
retryable}`` with the HTTP status of ``STATUS_FOR``.
"""

from __future__ import annotations

import hmac
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from workers.backends.base import (
    BackendError,
    ErrorCode,
    LaunchSpec,
    ListedRuntime,
    Phase,
    RuntimeBackend,
    RuntimeRef,
)

RUNTIME_PATH = re.compile(r"^/v1/runtimes/(?P<id>[A-Za-z0-9_.-]+)(?P<logs>/logs)?$")
STATUS_FOR = {
    ErrorCode.INVALID_SPEC: 400,
    ErrorCode.CONFLICT: 409,
    ErrorCode.QUOTA_EXCEEDED: 403,
    ErrorCode.GATEWAY_UNREACHABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.DEPENDENCY_SETUP_FAILED: 422,
}
MAX_BODY_BYTES = 1024 * 1024


class Gateway:
    """The protocol over ``backend``; runtimes are addressed by worker id."""

    def __init__(self, backend: RuntimeBackend, token: str):
        self.backend = backend
        self.token = token

    def authorized(self, header: str) -> bool:
        expected = f"Bearer {self.token}"
        return bool(self.token) and hmac.compare_digest(
            header.encode(), expected.encode()
        )

    def create(self, body: dict) -> tuple[int, Any]:
        """201 with the ref; 200 when the worker's runtime already existed."""
        try:
            spec = LaunchSpec.from_json(body)
        except (TypeError, KeyError, ValueError) as exc:
            raise BackendError(
                ErrorCode.INVALID_SPEC, f"bad launch spec: {exc}"
            ) from exc
        existed = self.backend.observe(self._ref(spec.worker_id)).phase not in (
            Phase.NOT_FOUND,
            Phase.UNKNOWN,
        )
        ref = self.backend.launch(spec)
        return (200 if existed else 201), _ref_json(ref)

    def get(self, worker_id: str) -> tuple[int, Any]:
        obs = self.backend.observe(self._ref(worker_id))
        if obs.phase is Phase.NOT_FOUND:
            return 404, {
                "code": "not_found",
                "message": obs.message,
                "retryable": False,
            }
        return 200, {
            "phase": obs.phase.value,
            "endpoint": obs.endpoint,
            "message": obs.message,
            "events": list(obs.events),
            "error_code": obs.error_code,
        }

    def list(self, label_selector: str) -> tuple[int, Any]:
        wanted = dict(t.split("=", 1) for t in label_selector.split(",") if "=" in t)
        listed = [
            item
            for item in self.backend.list_runtimes()
            if all(
                item.ref.extra.get("labels", {}).get(k) == v for k, v in wanted.items()
            )
        ]
        return 200, {"items": [_listed_json(item) for item in listed]}

    def delete(self, worker_id: str) -> tuple[int, Any]:
        self.backend.terminate(self._ref(worker_id))
        return 204, None

    def logs(self, worker_id: str, tail: int) -> tuple[int, Any]:
        return 200, self.backend.logs(self._ref(worker_id), tail)

    def _ref(self, worker_id: str) -> RuntimeRef:
        return RuntimeRef(self.backend.name, worker_id, worker_id)


def _ref_json(ref: RuntimeRef) -> dict:
    return {"worker_id": ref.worker_id, "name": ref.name, "extra": ref.extra}


def _listed_json(listed: ListedRuntime) -> dict:
    return {
        **_ref_json(listed.ref),
        "phase": listed.phase.value,
        "message": listed.message,
        "exit_code": listed.exit_code,
    }


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass  # requests carry tokens in headers only; still, keep logs quiet

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        if not self.gateway.authorized(self.headers.get("Authorization", "")):
            self._send(
                401,
                {
                    "code": "unauthorized",
                    "message": "bad or missing bearer token",
                    "retryable": False,
                },
            )
            return
        try:
            status, payload = self._route(method)
        except BackendError as exc:
            status = STATUS_FOR.get(exc.code, 500)
            payload = {
                "code": exc.code.value,
                "message": exc.message,
                "retryable": exc.retryable,
            }
        self._send(status, payload)

    def _route(self, method: str) -> tuple[int, Any]:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        match = RUNTIME_PATH.match(parts.path)
        if parts.path == "/v1/runtimes" and method == "POST":
            return self.gateway.create(self._body())
        if parts.path == "/v1/runtimes" and method == "GET":
            return self.gateway.list(query.get("label_selector", ""))
        if match and match["logs"] and method == "GET":
            return self.gateway.logs(match["id"], int(query.get("tail", "100")))
        if match and method == "GET":
            return self.gateway.get(match["id"])
        if match and method == "DELETE":
            return self.gateway.delete(match["id"])
        return 404, {
            "code": "no_route",
            "message": f"{method} {parts.path}",
            "retryable": False,
        }

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise BackendError(ErrorCode.INVALID_SPEC, "request body too large")
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            raise BackendError(
                ErrorCode.INVALID_SPEC, f"body is not JSON: {exc}"
            ) from exc

    def _send(self, status: int, payload: Any) -> None:
        if payload is None:
            data, kind = b"", "application/json"
        elif isinstance(payload, str):
            data, kind = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (its timeout passed) is routine: no
        traceback on stderr for it."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    """A threaded server for ``gateway`` (not started: call serve_forever)."""
    handler = type("GatewayHandler", (_Handler,), {"gateway": gateway})
    return _Server((host, port), handler)


def serve_in_thread(
    gateway: Gateway, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    server = make_server(gateway, host, port)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server
