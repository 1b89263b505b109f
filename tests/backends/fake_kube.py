"""A small, real HTTP server speaking enough of the Kubernetes API for the
kubernetes backend's tests: create / get / list / replace / delete for pods,
services, secrets, PVCs, events, networkpolicies, resourceclaims,
resourcequotas, namespaces and priorityclasses, and pod logs. The real
``kubernetes`` client talks to it over TCP.

``?watch=1`` streams changes after a resourceVersion (chunked JSON lines),
with BOOKMARK events (the current resourceVersion) only when
``allowWatchBookmarks`` asks for them, and an ERROR 410 Gone event for a
version older than the kept history (``compact()`` forgets it, as etcd
does).

It checks what a real API server checks (``fake_kube_rules``): names, label
keys and values (422), the OpenAPI schema at 1.34 and 1.37 (422), label
selectors, set-based ones too (``fake_kube_selectors``: one it cannot parse
is a 400 on a list or a watch), Pod Security levels from namespace labels,
a pod's PriorityClass, and ResourceQuota
admission with its 403 "exceeded quota" (``fake_kube_quota``; a quota's
``status.used`` is kept current). Every write bumps
``resourceVersion``; a replace or a delete with a stale one answers 409. A
pod that has been scheduled and is deleted gets ``deletionTimestamp`` and
goes away ``grace_seconds`` later, as kubelet would make it.

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
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.backends import fake_kube_quota as quota
from tests.backends import fake_kube_rules as rules
from tests.backends import fake_kube_selectors as selectors
from tests.backends.jupyter_stub import LoopbackServer

PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.]+)/v1)"
    r"(?:/namespaces/(?P<ns>[^/]+))?"
    r"(?:/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?P<log>/log)?)?$"
)
KINDS = {
    "pods": "Pod",
    "services": "Service",
    "secrets": "Secret",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "events": "Event",
    "resourceclaims": "ResourceClaim",
    "networkpolicies": "NetworkPolicy",
    "priorityclasses": "PriorityClass",
    "namespaces": "Namespace",
    "resourcequotas": "ResourceQuota",
}
GROUPS = {
    "resourceclaims": "resource.k8s.io",
    "networkpolicies": "networking.k8s.io",
    "priorityclasses": "scheduling.k8s.io",
}
CLUSTER_SCOPED = {"priorityclasses", "namespaces"}


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeKubeAPI:
    def __init__(
        self, *, schema: bool = True, grace_seconds: float = 0.3, history: int = 10000
    ) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.logs: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str, int, str]] = []
        self.delay = 0.0
        self.schema = schema
        self.grace_seconds = grace_seconds
        self.version = 0
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        # (version, type, plural, namespace, object JSON) of recent writes.
        self.history: deque = deque(maxlen=history)
        self.compacted = 0  # the oldest version a watch may start from
        self.epoch = 0  # bumped by compact(): the live watches end
        self.bookmark_seconds = 0.5
        self.stopping = False
        self.server: LoopbackServer | None = None
        self.connections: list[socket.socket] = []
        self.has_quotas = False  # no quota work until one exists

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> FakeKubeAPI:
        if self.schema:
            rules.preload((KINDS[p], _api_version(p)) for p in KINDS)
        handler = type("Handler", (_Handler,), {"api": self})
        # A deep accept backlog: benchmarks open hundreds of connections.
        server = type("FakeKubeServer", (LoopbackServer,), {"request_queue_size": 1024})
        self.server = server(("127.0.0.1", 0), handler)
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        """Close the listening socket *and* every kept-alive connection, so
        the client's pooled connections fail too, as in a real outage; then
        wait for the handler threads (a delayed answer finishes first)."""
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        if self.server:
            self.server.shutdown()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.connections.clear()
        if self.server:
            self.server.server_close()
            self.server = None

    # --- test controls ------------------------------------------------------

    def fail_next(self, method: str, plural: str, status: int, message: str) -> None:
        self.failures.append((method, plural, status, message))

    def get(self, plural: str, name: str, namespace: str = "notebooks") -> dict | None:
        namespace = "" if plural in CLUSTER_SCOPED else namespace
        return self.objects.get((plural, namespace, name))

    def put(self, plural: str, obj: dict) -> None:
        """Store ``obj`` as is (what another client or kubelet made)."""
        meta = obj["metadata"]
        namespace = (
            "" if plural in CLUSTER_SCOPED else meta.get("namespace", "notebooks")
        )
        with self.lock:
            key = (plural, namespace, meta["name"])
            kind = "MODIFIED" if key in self.objects else "ADDED"
            if plural == "resourcequotas":
                self._admit_quota(plural, namespace, obj)
            meta["resourceVersion"] = self._next_version()
            self.objects[key] = obj
            self._record(kind, key, obj)
            self._refresh_quotas(plural, namespace)

    def names(self, plural: str) -> set[str]:
        return {name for (p, _, name) in self.objects if p == plural}

    def set_pod_status(self, name: str, namespace: str = "notebooks", **status: Any):
        with self.lock:
            pod = self.objects[("pods", namespace, name)]
            pod["status"] = status
            if status.get("phase") != "Pending":
                pod["spec"].setdefault("nodeName", "node-1")
            pod["metadata"]["resourceVersion"] = self._next_version()
            self._record("MODIFIED", ("pods", namespace, name), pod)
            self._refresh_quotas("pods", namespace)

    def compact(self) -> None:
        """etcd compaction while the watches are cut (an API server restart):
        every live watch ends and the change history is forgotten, so
        resuming from any version handed out so far answers 410 Gone. The
        version moves on (writes to kinds nobody here watches), so a list
        afterwards answers a version a watch can start from. Were a live
        watch to go on, a write or a bookmark it got after the compaction
        would carry it past it, and its resume would get no 410."""
        with self.changed:
            self.history.clear()
            self.compacted = int(self._next_version())
            self.epoch += 1
            self.changed.notify_all()

    def add_event(
        self,
        pod: str,
        reason: str,
        message: str,
        namespace: str = "notebooks",
        kind: str = "Pod",
    ) -> None:
        self.put(
            "events",
            {
                "metadata": {
                    "name": f"{pod}.{uuid.uuid4().hex[:8]}",
                    "namespace": namespace,
                },
                "involvedObject": {"kind": kind, "name": pod},
                "reason": reason,
                "message": message,
                "lastTimestamp": _stamp(),
            },
        )

    def count(self, method: str, plural: str) -> int:
        return sum(1 for m, p in self.requests if m == method and f"/{plural}" in p)

    # --- request handling ---------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body: dict | None):
        match = PATH.match(path)
        if not match:
            return 404, _status(404, "NotFound", f"no route {path}")
        ns, plural, name = match["ns"] or "", match["plural"], match["name"]
        if plural is None:  # /api/v1/namespaces/<name>
            plural, name, ns = "namespaces", ns, ""
        failure = self._take_failure(method, plural)
        if failure:
            return failure
        if match["log"]:
            if ("pods", ns, name) not in self.objects:
                return 404, _status(404, "NotFound", name)
            # ``logs["<pod>/<container>"]`` for one container (?container=),
            # ``logs["<pod>"]`` for the pod's only one.
            key = f"{name}/{query['container']}" if "container" in query else name
            lines = self.logs.get(key, "").splitlines(keepends=True)
            tail = int(query.get("tailLines", len(lines)))
            return 200, "".join(lines[-tail:] if tail else [])
        with self.lock:
            try:
                return self._dispatch(method, plural, ns, name, query, body)
            except rules.BadRequest as exc:
                return 400, _status(400, "BadRequest", str(exc))
            except rules.Invalid as exc:
                return 422, _status(422, "Invalid", str(exc))
            except rules.Forbidden as exc:
                name = name or ((body or {}).get("metadata") or {}).get("name", "")
                details = {
                    "name": name,
                    "group": GROUPS.get(plural, ""),
                    "kind": plural,
                }
                return 403, _status(403, "Forbidden", str(exc), details)

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
        if method == "PUT":
            return self._replace(key, body)
        if method == "GET" and name:
            obj = self.objects.get(key)
            return (200, obj) if obj else (404, _status(404, "NotFound", name))
        if method == "GET":
            return 200, self._list(plural, ns, query)
        if method == "DELETE":
            return self._delete(key, body or {})
        return 405, _status(405, "MethodNotAllowed", method)

    def _list(self, plural: str, ns: str, query: dict) -> dict:
        wanted = selectors.parse(query.get("labelSelector", ""))
        fields = query.get("fieldSelector", "")
        items = [
            o
            for (p, n, _), o in self.objects.items()
            if p == plural
            and (n == ns or not ns)
            and selectors.matches(wanted, o.get("metadata", {}).get("labels") or {})
            and selectors.field_matches(o, fields)
        ]
        return {
            "kind": f"{KINDS[plural]}List",
            "apiVersion": _api_version(plural),
            "items": items,
            "metadata": {"resourceVersion": str(self.version)},
        }

    def _create(self, plural: str, ns: str, body: dict):
        meta = body.setdefault("metadata", {})
        key = (plural, ns, meta.get("name", ""))
        rules.validate_object(plural, body, schema=self.schema)
        if key in self.objects:
            return 409, _status(
                409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists'
            )
        if plural == "pods":
            rules.admit_pod(
                body,
                self.objects.get(("namespaces", "", ns)),
                self.names("priorityclasses"),
            )
        self._admit_quota(plural, ns, body)
        meta.update(
            uid=str(uuid.uuid4()),
            creationTimestamp=_stamp(),
            resourceVersion=self._next_version(),
        )
        if ns:
            meta["namespace"] = ns
        if plural == "pods":
            body["status"] = {"phase": "Pending"}
        self.objects[key] = body
        self._record("ADDED", key, body)
        self._refresh_quotas(plural, ns)
        return 201, body

    def _replace(self, key: tuple, body: dict):
        current = self.objects.get(key)
        if current is None:
            return 404, _status(404, "NotFound", key[2])
        rules.validate_object(key[0], body, schema=self.schema)
        sent = body.get("metadata", {}).get("resourceVersion")
        if sent != current["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {key[0]} "{key[2]}": the object '
                "has been modified; please apply your changes to the latest "
                "version and try again",
            )
        if "status" in current:
            body["status"] = current["status"]
        self._admit_quota(key[0], key[1], body, current)
        for field in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
            if field in current["metadata"]:
                body["metadata"][field] = current["metadata"][field]
        body["metadata"]["resourceVersion"] = self._next_version()
        self.objects[key] = body
        self._record("MODIFIED", key, body)
        self._refresh_quotas(key[0], key[1])
        return 200, body

    def _delete(self, key: tuple, options: dict):
        obj = self.objects.get(key)
        if obj is None:
            return 404, _status(404, "NotFound", key[2])
        wanted = (options.get("preconditions") or {}).get("resourceVersion")
        if wanted and wanted != obj["metadata"]["resourceVersion"]:
            return 409, _status(409, "Conflict", "precondition failed")
        if key[0] == "pods" and self._graceful(obj):
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = _stamp()
                obj["metadata"]["deletionGracePeriodSeconds"] = 30
                obj["metadata"]["resourceVersion"] = self._next_version()
                self._record("MODIFIED", key, obj)
                timer = threading.Timer(self.grace_seconds, self._finish, (key,))
                timer.daemon = True
                timer.start()
            return 200, obj
        self._remove(key)
        return 200, obj

    def _remove(self, key: tuple) -> None:
        obj = self.objects.pop(key)
        obj["metadata"]["resourceVersion"] = self._next_version()
        self._record("DELETED", key, obj)
        self._refresh_quotas(key[0], key[1])

    # --- ResourceQuota (admission plugin + quota controller) ---------------------

    def _quotas(self, ns: str) -> list[dict]:
        return [
            o
            for (p, n, _), o in self.objects.items()
            if p == "resourcequotas" and n == ns
        ]

    def _admit_quota(self, plural: str, ns: str, body: dict, old=None) -> None:
        """403 when ``body`` would take a quota of ``ns`` past its hard
        limits; a quota itself gets its status (what the controller does)."""
        if plural == "resourcequotas":
            self.has_quotas = True
            body["status"] = quota.status(body, self._usage_objects(ns))
        elif self.has_quotas and ns:
            quota.admit(self._quotas(ns), plural, GROUPS.get(plural, ""), body, old)

    def _usage_objects(self, ns: str) -> list[tuple[str, str, dict]]:
        return [
            (p, GROUPS.get(p, ""), o)
            for (p, n, _), o in self.objects.items()
            if n == ns and p != "resourcequotas"
        ]

    def _refresh_quotas(self, plural: str, ns: str) -> None:
        """Keep ``status.used`` of ``ns``'s quotas current after a write."""
        if not self.has_quotas or plural == "resourcequotas" or not ns:
            return
        objects = self._usage_objects(ns)
        for current in self._quotas(ns):
            fresh = quota.status(current, objects)
            if fresh != current.get("status"):
                current["status"] = fresh
                current["metadata"]["resourceVersion"] = self._next_version()
                key = ("resourcequotas", ns, current["metadata"]["name"])
                self._record("MODIFIED", key, current)

    def _record(self, kind: str, key: tuple, obj: dict) -> None:
        version = int(obj["metadata"]["resourceVersion"])
        self.history.append((version, kind, key[0], key[1], json.dumps(obj)))
        if len(self.history) == self.history.maxlen:
            # A watch from just before the oldest kept change misses nothing.
            self.compacted = self.history[0][0] - 1
        self.changed.notify_all()

    def watch(self, plural: str, ns: str, query: dict) -> Iterator[dict]:
        """The watch event dicts ``?watch=1`` streams; raises
        ``rules.BadRequest`` at once for a selector it cannot parse."""
        wanted = selectors.parse(query.get("labelSelector", ""))
        return self._events(plural, ns, query, wanted)

    def _events(
        self, plural: str, ns: str, query: dict, wanted: list[selectors.Requirement]
    ):
        """Events after ``resourceVersion`` until the watch's timeout, a
        ``compact()`` or the server stops. Collected under the lock, sent
        outside it."""
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 300)
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        with self.lock:
            epoch, expired = self.epoch, since and since < self.compacted
        if expired:
            yield {"type": "ERROR", "object": _status(410, "Expired", "too old")}
            return
        while not self.stopping and time.monotonic() < deadline:
            with self.changed:
                fresh = [h for h in self.history if h[0] > since]
                if not fresh:
                    self.changed.wait(self.bookmark_seconds)
                    fresh = [h for h in self.history if h[0] > since]
                if self.epoch != epoch:
                    return  # cut by compact()
                latest = self.version
            for version, kind, p, n, text in fresh:
                since = version
                obj = json.loads(text)
                labels = obj.get("metadata", {}).get("labels") or {}
                if (
                    p == plural
                    and (n == ns or not ns)
                    and selectors.matches(wanted, labels)
                ):
                    yield {"type": kind, "object": obj}
            if not fresh and bookmarks:
                since = max(since, latest)
                yield _bookmark(plural, since)

    def _graceful(self, pod: dict) -> bool:
        """A pod on a node with containers not yet ended stops gracefully;
        an unscheduled or finished one is removed at once."""
        phase = (pod.get("status") or {}).get("phase")
        return bool(pod.get("spec", {}).get("nodeName")) and phase not in (
            "Succeeded",
            "Failed",
        )

    def finish_terminations(self) -> None:
        """What kubelet does when the grace period ends: remove every pod
        being deleted."""
        with self.lock:
            for key in [k for k, o in self.objects.items() if _deleting(o)]:
                self._remove(key)

    def _finish(self, key: tuple) -> None:
        with self.lock:
            obj = self.objects.get(key)
            if obj and obj["metadata"].get("deletionTimestamp"):
                self._remove(key)

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)


def _bookmark(plural: str, version: int) -> dict:
    """An object of the watched kind with only its resourceVersion set."""
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": KINDS[plural],
            "apiVersion": _api_version(plural),
            "metadata": {"resourceVersion": str(version)},
        },
    }


def _api_version(plural: str) -> str:
    return f"{GROUPS[plural]}/v1" if plural in GROUPS else "v1"


def _flag(value: str | None) -> bool:
    """A boolean query parameter as Go's ``strconv.ParseBool`` reads it."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _deleting(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _status(code: int, reason: str, message: str, details=None) -> dict:
    """A Status body; ``details`` without its empty fields (omitempty)."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = {k: v for k, v in details.items() if v}
    return body


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
        if method == "GET" and query.get("watch") in ("1", "true"):
            self.api.requests.append(("WATCH", parts.path))
            self._stream(parts.path, query)
            return
        self.api.requests.append((method, parts.path))
        if self.api.delay:
            time.sleep(self.api.delay)
        self._answer(*self.api.handle(method, parts.path, query, body))

    def _answer(self, status: int, payload: dict | str) -> None:
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

    def _stream(self, path: str, query: dict) -> None:
        """A watch: chunked JSON lines, one per event; a selector it cannot
        parse is a 400 before the stream, like a list."""
        match = PATH.match(path)
        failure = match and self.api._take_failure("WATCH", match["plural"])
        if not match or failure:
            status = failure[0] if failure else 404
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            events = self.api.watch(match["plural"], match["ns"] or "", query)
        except rules.BadRequest as exc:
            self._answer(400, _status(400, "BadRequest", str(exc)))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")
