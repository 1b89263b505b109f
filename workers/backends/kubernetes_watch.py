"""One shared list + watch per process, instead of a GET per worker per poll.

``Reflector`` keeps one kind current (this installation's pods, Services,
Secrets, NetworkPolicies, ResourceClaims, or the runtime namespace's pod
events): one LIST, then one long WATCH from the list's resourceVersion with
bookmarks, re-listing only when the API server answers 410 Gone (the
version was compacted away) and re-watching after a watch's timeout. So a
process makes one LIST + one WATCH per kind, whatever the number of starts
and reconcile passes. Memory is bounded: objects are only this
installation's (label selector), kinds reconcile only needs the labels of
are kept as metadata, events are kept per pod, at most ``MAX_EVENTS`` each,
for at most ``max_objects`` keys, least recently touched dropped first.

A reader asks ``synced()`` first: while the watch is down, callers go back
to direct API calls, so an outage is never read as "nothing runs".
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import naming
from .kubernetes_status import MAX_EVENTS, TRANSPORT_ERRORS

log = logging.getLogger(__name__)


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class Reflector:
    def __init__(
        self,
        list_call: Callable[..., Any],
        *,
        namespace: str,
        key: Callable[[dict], str | None],
        label_selector: str = "",
        field_selector: str = "",
        keep: int = 1,
        transform: Callable[[dict], dict] | None = None,
        max_objects: int = 20000,
        watch_seconds: int = 300,
        timeout: float = 5.0,
    ):
        self.list_call = list_call
        self.namespace = namespace
        self.key = key  # object -> the name it is filed under (None: skip)
        self.selectors = {
            "label_selector": label_selector,
            "field_selector": field_selector,
        }
        self.keep = keep  # objects kept per key (1: the object; N: last N)
        self.transform = transform  # what is kept of an object (None: all)
        self.max_objects = max_objects
        self.watch_seconds = watch_seconds
        self.timeout = timeout
        self.store: OrderedDict[str, deque] = OrderedDict()
        self.version = ""
        self.lock = threading.Lock()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._response = None

    # --- readers ------------------------------------------------------------

    def synced(self) -> bool:
        return self._synced.is_set()

    def get(self, name: str) -> list[dict]:
        with self.lock:
            return list(self.store.get(name, ()))

    def items(self) -> list[dict]:
        """The newest object of every key."""
        with self.lock:
            return [entries[-1] for entries in self.store.values() if entries]

    def remember(self, obj: dict) -> None:
        """File an object this process just wrote (its create answer), so a
        read right after the write does not wait for the watch. Not when
        the watch is already past that version and no longer holds the
        object: it was deleted since, and must not come back."""
        with self.lock:
            if self.key(obj) not in self.store and _seen(obj, self.version):
                return
            self._put(obj)

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> Reflector:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # noqa: BLE001 - closing a stream that may be gone
                log.debug("closing the watch stream failed", exc_info=True)
        if self._thread:
            self._thread.join(self.timeout + 1)

    def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                if not self.version:
                    self._list()
                self._watch()
                delay = 0.5
            except Gone:
                self.version = ""
            except (ApiException, ValueError, *TRANSPORT_ERRORS) as exc:
                if self._stopping.is_set():
                    break
                self._synced.clear()
                self.version = ""
                log.warning(
                    "%s in %s interrupted: %s",
                    getattr(self.list_call, "__name__", "watch"),
                    self.namespace,
                    exc,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, 30)

    # --- list and watch -------------------------------------------------------

    def _list(self) -> None:
        response = self.list_call(
            self.namespace,
            **self._selectors(),
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        body = json.loads(response.data or b"{}")
        with self.lock:
            self.store.clear()
            for item in body.get("items", []):
                self._put(item)
            self.version = body.get("metadata", {}).get("resourceVersion", "")
        self._synced.set()

    def _watch(self) -> None:
        self._response = self.list_call(
            self.namespace,
            **self._selectors(),
            watch=True,
            resource_version=self.version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
            _preload_content=False,
            _request_timeout=(self.timeout, self.watch_seconds + self.timeout),
        )
        try:
            for line in _lines(self._response):
                self._apply(json.loads(line))
        finally:
            self._response.release_conn()
            self._response = None

    def _apply(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", "410 Gone"))
            raise ValueError(f"watch error: {obj.get('message')}")
        with self.lock:
            if kind == "DELETED" and self.keep == 1:
                self.store.pop(self.key(obj) or "", None)
            elif kind != "BOOKMARK":
                self._put(obj)
            version = obj.get("metadata", {}).get("resourceVersion")
            if version:
                self.version = version

    def _put(self, obj: dict) -> None:
        name = self.key(obj)
        if not name:
            return
        if self.transform is not None:
            obj = self.transform(obj)
        entries = self.store.get(name)
        if entries is None:
            entries = self.store[name] = deque(maxlen=self.keep)
        self.store.move_to_end(name)
        if self.keep == 1 and entries and _older(obj, entries[-1]):
            return  # a create answer arriving after the watch's newer news
        entries.append(obj)
        while len(self.store) > self.max_objects:
            self.store.popitem(last=False)

    def _selectors(self) -> dict:
        return {k: v for k, v in self.selectors.items() if v}


# Per-worker kinds besides the pod: what a half-finished launch or removal
# can leave behind, which reconcile must find without a LIST per pass.
LEFTOVER_KINDS = ("Service", "Secret", "NetworkPolicy", "ResourceClaim")


class RuntimeWatch:
    """The process's shared watches: this installation's pods, its other
    per-worker kinds (``LEFTOVER_KINDS``; ResourceClaims include the shared
    ones) and the runtime namespace's pod events (kept per runtime pod,
    bounded). Secrets, Services and NetworkPolicies are kept as metadata
    only: reconcile needs their labels, and no token stays in memory."""

    def __init__(self, core, networking, resource, site, timeout, **options: Any):
        def reflector(list_call, **kwargs: Any) -> Reflector:
            defaults = {"key": _name, "label_selector": site.selector}
            return Reflector(
                list_call,
                namespace=site.namespace,
                timeout=timeout,
                **{**defaults, **options, **kwargs},
            )

        self.pods = reflector(core.list_namespaced_pod)
        self.events = reflector(
            core.list_namespaced_event,
            key=_event_pod,
            label_selector="",
            field_selector="involvedObject.kind=Pod",
            keep=MAX_EVENTS,
        )
        self.kinds = {
            "Service": reflector(core.list_namespaced_service, transform=_metadata),
            "Secret": reflector(core.list_namespaced_secret, transform=_metadata),
            "NetworkPolicy": reflector(
                networking.list_namespaced_network_policy, transform=_metadata
            ),
            "ResourceClaim": reflector(resource.list_namespaced_resource_claim),
        }

    def _all(self) -> list[Reflector]:
        return [self.pods, self.events, *self.kinds.values()]

    def active(self) -> bool:
        """Start on first use; True once the pod and event watches are in
        sync (what ``observe`` needs; ``list_runtimes`` asks per kind)."""
        for reflector in self._all():
            reflector.start()
        return self.pods.synced() and self.events.synced()

    def wait_synced(self, timeout: float) -> bool:
        self.active()
        return all(r.wait_synced(timeout) for r in self._all())

    def cached(self, kind: str) -> list[dict] | None:
        """The newest of every object of ``kind`` ("Pod" or one of
        ``LEFTOVER_KINDS``), or None while that watch is not in sync."""
        self.active()
        reflector = self.pods if kind == "Pod" else self.kinds[kind]
        return reflector.items() if reflector.synced() else None

    def close(self) -> None:
        for reflector in self._all():
            reflector.stop()


def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def _metadata(obj: dict) -> dict:
    """What reconcile reads of a leftover: name, namespace, labels, version,
    deletion mark; never a Secret's data."""
    meta = obj.get("metadata") or {}
    keep = ("name", "namespace", "labels", "resourceVersion", "deletionTimestamp")
    return {"metadata": {k: meta[k] for k in keep if k in meta}}


def _event_pod(event: dict) -> str | None:
    """The runtime pod an event is about (None: not one of ours by name)."""
    name = (event.get("involvedObject") or {}).get("name", "")
    return name if name.startswith(f"{naming.NAME_PREFIX}-") else None


def _seen(obj: dict, version: str) -> bool:
    try:
        return int(obj["metadata"]["resourceVersion"]) <= int(version)
    except (KeyError, ValueError):
        return False


def _older(new: dict, current: dict) -> bool:
    try:
        return int(new["metadata"]["resourceVersion"]) < int(
            current["metadata"]["resourceVersion"]
        )
    except (KeyError, ValueError):
        return False


def _lines(response) -> Any:
    """JSON lines of a streaming answer, however the chunks split them."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
