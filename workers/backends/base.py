"""The runtime backend contract. No Django imports here or in any backend.

A backend starts, observes and removes the runtime (process, container, pod,
remote job) behind one worker. Orchestration (timeouts, retries, cleanup after
a failed start, state in the database) lives in ``workers.services``; backends
only answer for their runtime, and every call is safe to repeat.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"  # could not tell (timeout, API down): never treat as failed


class ErrorCode(StrEnum):
    IMAGE_PULL_FAILED = "image_pull_failed"
    UNSCHEDULABLE = "unschedulable"
    QUOTA_EXCEEDED = "quota_exceeded"
    DEVICE_CLASS_UNAVAILABLE = "device_class_unavailable"
    GATEWAY_UNREACHABLE = "gateway_unreachable"
    TIMEOUT = "timeout"
    CONFLICT = "conflict"
    INVALID_SPEC = "invalid_spec"
    INTERNAL = "internal"


class BackendError(Exception):
    """A backend call failed. ``retryable`` says whether the same call may
    succeed later (a timeout) or needs a person (a bad image name)."""

    def __init__(self, code: ErrorCode | str, message: str, *, retryable: bool = False):
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Mount:
    volume: str  # PVC / named volume / directory name, DNS-safe
    path: str  # absolute path inside the runtime
    read_only: bool = False


@dataclass(frozen=True)
class Resources:
    cpu_request_millicores: int
    cpu_limit_millicores: int
    memory_request_bytes: int
    memory_limit_bytes: int
    gpu_count: int = 0
    gpu_resource_name: str = ""  # e.g. nvidia.com/gpu
    gpu_model: str = ""  # e.g. "RTX 5090"
    gpu_sm_percentage: int = 100
    workspace_storage_bytes: int = 0
    temp_storage_bytes: int = 0


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a backend needs to start one worker's runtime."""

    worker_id: str
    workspace_id: str
    owner: str  # username, for labels and $USER
    owner_id: str
    image: str
    ide_kind: str  # "jupyterlab" | "code-server" | "custom"
    base_url: str  # "/w/<workspace-id>/": the runtime serves under this prefix
    access_token: str
    resources: Resources
    mounts: tuple[Mount, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    root_shell: bool = False
    queue_name: str = "default"
    queue_priority: int = 0
    preemptible: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    health_path: str = ""  # custom images: path answering 200 when ready
    port: int = 8888  # the port the runtime listens on inside a container/pod
    kernel_cull_idle_seconds: int = 3600
    kernel_cull_interval_seconds: int = 300

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LaunchSpec:
        data = dict(data)
        data["resources"] = Resources(**data["resources"])
        data["mounts"] = tuple(Mount(**m) for m in data.get("mounts", ()))
        return cls(**data)


@dataclass(frozen=True)
class RuntimeRef:
    """Where a worker's runtime is; stored on the worker row as JSON so a
    restarted control plane finds it again."""

    backend: str
    worker_id: str
    name: str  # container / pod / process / remote job name
    namespace: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # pid, port, node...

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> RuntimeRef:
        if isinstance(data, str):
            data = json.loads(data)
        return cls(**data)


@dataclass(frozen=True)
class Observation:
    phase: Phase
    endpoint: str = (
        ""  # URL of the runtime's base URL, reachable from the control plane
    )
    message: str = ""
    events: tuple[str, ...] = ()  # recent backend events, oldest first
    error_code: str = ""  # an ErrorCode when the backend can tell why


class RuntimeBackend(abc.ABC):
    """One kind of runtime. Implementations must be thread-safe for
    concurrent calls on different workers."""

    name: str

    @abc.abstractmethod
    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        """Start the runtime for ``spec.worker_id``.

        Idempotent by worker id: a second call for the same worker returns the
        existing runtime's ref, never a second runtime. A name conflict with a
        runtime that is not this worker's raises ``BackendError(CONFLICT)``.
        Raises ``BackendError(INVALID_SPEC)`` for specs that can never start.
        """

    @abc.abstractmethod
    def observe(self, ref: RuntimeRef) -> Observation:
        """Where the runtime is now. Never raises for a missing runtime
        (``NOT_FOUND``) or an API timeout (``UNKNOWN``)."""

    @abc.abstractmethod
    def terminate(self, ref: RuntimeRef) -> None:
        """Remove the runtime. Idempotent: already gone is success. Raises
        ``BackendError`` (retryable where sensible) when removal failed."""

    @abc.abstractmethod
    def list_managed(self) -> list[RuntimeRef]:
        """Every runtime this backend manages, found by label in one list
        call (never one call per worker). Raises ``BackendError`` if the
        list could not be had: the reconciler must not read an outage as
        "nothing runs"."""

    @abc.abstractmethod
    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        """The last ``tail`` lines of the runtime's output ("" if gone)."""
