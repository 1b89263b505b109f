"""A small, real HTTP server speaking enough of the Kubernetes API for the
kubernetes backend's tests: create / get / list (label and field selectors)
/ delete for pods, services, secrets, PVCs, events and resourceclaims, and
pod logs. The real ``kubernetes`` client talks to it over TCP.

Tests drive it like a cluster would: ``set_pod_status`` moves a pod through
phases, ``add_event`` records events, ``fail_next`` answers the next
matching request with an error status (403 quota, 500...), ``stop`` makes the
API unreachable. ``requests`` records every call, so tests can count them.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.]+)/v1)/namespaces/(?P<ns>[^/]+)/"
    r"(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?P<log>/log)?$"
)
KINDS = {
    "pods": "Pod",
    "services": "Service",
    "secrets": "Secret",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "events": "Event",
    "resourceclaims": "ResourceClaim",
}


def _matches(obj: dict, label_selector: str, field_selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, label_selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    for term in filter(None, field_selector.split(",")):
        key, _, value = term.partition("=")
        current: Any = obj
        for part in key.split("."):
            current = (current or {}).get(part)
        if current != value:
            return False
    return True


class FakeKubeAPI:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.logs: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str, int, str]] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.connections: list[socket.socket] = []

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> FakeKubeAPI:
        handler = type("Handler", (_Handler,), {"api": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        """Close the listening socket *and* every kept-alive connection, so
        the client's pooled connections fail too, as in a real outage."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    # --- test controls ------------------------------------------------------

    def fail_next(self, method: str, plural: str, status: int, message: str) -> None:
        self.failures.append((method, plural, status, message))

    def get(self, plural: str, name: str, namespace: str = "notebooks") -> dict | None:
        return self.objects.get((plural, namespace, name))

    def put(self, plural: str, obj: dict) -> None:
        meta = obj["metadata"]
        self.objects[(plural, meta.get("namespace", "notebooks"), meta["name"])] = obj

    def set_pod_status(self, name: str, namespace: str = "notebooks", **status: Any):
        with self.lock:
            self.objects[("pods", namespace, name)]["status"] = status

    def add_event(
        self, pod: str, reason: str, message: str, namespace: str = "notebooks"
    ) -> None:
        name = f"{pod}.{uuid.uuid4().hex[:8]}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.put(
            "events",
            {
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": pod},
                "reason": reason,
                "message": message,
                "lastTimestamp": stamp,
            },
        )

    def count(self, method: str, plural: str) -> int:
        return sum(1 for m, p in self.requests if m == method and f"/{plural}" in p)

    # --- request handling ---------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body: dict | None):
        match = PATH.match(path)
        if not match:
            return 404, _status(404, "NotFound", f"no route {path}")
        ns, plural, name = match["ns"], match["plural"], match["name"]
        failure = self._take_failure(method, plural)
        if failure:
            return failure
        if match["log"]:
            if ("pods", ns, name) not in self.objects:
                return 404, _status(404, "NotFound", name)
            lines = self.logs.get(name, "").splitlines(keepends=True)
            tail = int(query.get("tailLines", len(lines)))
            return 200, "".join(lines[-tail:] if tail else [])
        with self.lock:
            return self._dispatch(method, plural, ns, name, query, body)

    def _take_failure(self, method: str, plural: str):
        for index, (m, p, status, message) in enumerate(self.failures):
            if m == method and p == plural:
                del self.failures[index]
                return status, _status(status, "Failure", message)
        return None

    def _dispatch(self, method, plural, ns, name, query, body):
        key = (plural, ns, name)
        if method == "POST":
            return self._create(plural, ns, body)
        if method == "GET" and name:
            obj = self.objects.get(key)
            return (200, obj) if obj else (404, _status(404, "NotFound", name))
        if method == "GET":
            items = [
                o
                for (p, n, _), o in self.objects.items()
                if p == plural
                and n == ns
                and _matches(
                    o, query.get("labelSelector", ""), query.get("fieldSelector", "")
                )
            ]
            return 200, {"kind": f"{KINDS[plural]}List", "items": items, "metadata": {}}
        if method == "DELETE":
            obj = self.objects.pop(key, None)
            return (200, obj) if obj else (404, _status(404, "NotFound", name))
        return 405, _status(405, "MethodNotAllowed", method)

    def _create(self, plural: str, ns: str, body: dict):
        meta = body.setdefault("metadata", {})
        key = (plural, ns, meta["name"])
        if key in self.objects:
            return 409, _status(
                409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists'
            )
        meta.update(
            namespace=ns,
            uid=str(uuid.uuid4()),
            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        if plural == "pods":
            body["status"] = {"phase": "Pending"}
        self.objects[key] = body
        return 201, body


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.api.connections.append(self.connection)

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.api.requests.append((method, parts.path))
        if self.api.delay:
            time.sleep(self.api.delay)
        status, payload = self.api.handle(method, parts.path, query, body)
        data = (
            payload.encode()
            if isinstance(payload, str)
            else json.dumps(payload).encode()
        )
        self.send_response(status)
        self.send_header(
            "Content-Type",
            "text/plain" if isinstance(payload, str) else "application/json",
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")
