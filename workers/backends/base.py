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
import signal
from dataclasses import MISSING, dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    # Being removed (Kubernetes: deletionTimestamp set, grace period running):
    # not running any more, not gone yet.
    TERMINATING = "terminating"
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
    PRIORITY_CLASS_MISSING = "priority_class_missing"
    DEPENDENCY_SETUP_FAILED = "dependency_setup_failed"
    INTERNAL = "internal"


class BackendError(Exception):
    """A backend call failed. ``retryable`` says whether the same call may
    succeed later (a timeout) or needs a person (a bad image name)."""

    def __init__(self, code: ErrorCode | str, message: str, *, retryable: bool = False):
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = retryable


class InvalidLaunchSpec(BackendError):
    """A stored or received launch spec cannot be read: empty (``empty``) or
    written in another format. Not retryable: the same spec fails again."""

    def __init__(self, message: str, *, empty: bool = False):
        super().__init__(ErrorCode.INVALID_SPEC, message, retryable=False)
        self.empty = empty


@dataclass(frozen=True)
class Mount:
    volume: str  # the project's volume name, DNS-safe (unique per project)
    path: str  # absolute path inside the runtime
    read_only: bool = False
    project_id: str = ""  # the volume's project; must be the spec's
    size_bytes: int = 0  # to create the volume where it is missing
    storage_class: str = ""  # "" = the cluster's default


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
class SetupSpec:
    """The setup step run before the IDE: checkout and dependencies.

    Secrets travel only sealed (``workers.secret_box``): a stored spec holds
    ciphertext, and the backend unseals them into the setup step's own
    environment, never the runtime's.
    """

    repository_url: str = ""  # "" = no setup step
    repository_ref: str = ""  # "" = the remote's default branch
    requirements_path: str = ""  # "" = first of the usual files
    kernel_name: str = ""  # the kernel spec's name: the workspace's name
    fetch_policy: str = "online"  # online | mirror | offline
    index_url: str = ""  # online: the configured index; mirror: the mirror's
    kernel_packages: tuple[str, ...] = ()
    allow_local_repository: bool = False  # admin setting: file:/// sources
    max_repository_bytes: int = 0
    timeout_seconds: int = 0
    git_secret_sealed: str = ""
    index_secret_sealed: str = ""
    # The hosts ("host" or "host:port") a platform admin bound the project's
    # git secret to: the step hands it to git only for a repository on one of
    # them, and names them when it cannot (workers.setup.repository).
    git_secret_hosts: tuple[str, ...] = ()


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
    project_id: str = ""  # the workspace's project: its volumes only
    setup: SetupSpec = field(default_factory=SetupSpec)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> LaunchSpec:
        """The spec ``to_json`` stored. Raises ``InvalidLaunchSpec`` for an
        empty spec or one in another format (a missing, unknown or mistyped
        field), naming the field, never a bare ``KeyError``/``TypeError``."""
        if not data:
            raise InvalidLaunchSpec("there is no launch spec", empty=True)
        fields = _fields_of(cls, data, "")
        fields["resources"] = Resources(
            **_fields_of(Resources, fields["resources"], "resources.")
        )
        mounts = fields.get("mounts", ())
        if not isinstance(mounts, list | tuple):
            raise InvalidLaunchSpec("field 'mounts' is not a list")
        fields["mounts"] = tuple(
            Mount(**_fields_of(Mount, m, "mounts[].")) for m in mounts
        )
        setup = _fields_of(SetupSpec, fields.get("setup", {}), "setup.")
        for name in ("kernel_packages", "git_secret_hosts"):
            values = setup.get(name, ())
            if not isinstance(values, list | tuple) or not all(
                isinstance(value, str) for value in values
            ):
                raise InvalidLaunchSpec(f"field 'setup.{name}' is not a list of str")
            setup[name] = tuple(values)
        fields["setup"] = SetupSpec(**setup)
        for name in ("environment", "labels"):
            if not isinstance(fields.get(name, {}), dict):
                raise InvalidLaunchSpec(f"field {name!r} is not a mapping")
        return cls(**fields)


_SCALARS = {"str": str, "int": int, "bool": bool}


def _fields_of(kind: type, data: Any, prefix: str) -> dict[str, Any]:
    """``data``'s fields for dataclass ``kind``: every required field present,
    no unknown field, and str/int/bool fields of their type."""
    if not isinstance(data, dict):
        raise InvalidLaunchSpec(f"{prefix.rstrip('.') or 'the spec'} is not a mapping")
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidLaunchSpec(f"unknown field '{prefix}{unknown[0]}'")
    for name, spec_field in known.items():
        required = spec_field.default is spec_field.default_factory is MISSING
        if name not in data:
            if required:
                raise InvalidLaunchSpec(f"field '{prefix}{name}' is missing")
            continue
        expected = _SCALARS.get(str(spec_field.type))
        value = data[name]
        # bool is an int to isinstance; a flag where a number belongs is wrong.
        if expected and (
            not isinstance(value, expected)
            or (isinstance(value, bool) and expected is not bool)
        ):
            raise InvalidLaunchSpec(
                f"field '{prefix}{name}' is not {expected.__name__}"
            )
    return dict(data)


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


STOPPED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})


@dataclass(frozen=True)
class ListedRuntime:
    """One runtime as a backend's list call saw it, with no call per runtime.

    ``phase`` is PENDING or RUNNING while the runtime exists and has not
    stopped (not a readiness verdict: that is ``observe`` and the probe),
    SUCCEEDED or FAILED once it stopped (``exit_code`` when the backend
    knows it, 128 + N for a runtime killed by signal N, as shells report
    it), UNKNOWN when the list cannot tell: never to be read as stopped.
    """

    ref: RuntimeRef
    phase: Phase = Phase.UNKNOWN
    message: str = ""
    exit_code: int | None = None

    @property
    def stopped(self) -> bool:
        """Stopped, or being removed by someone (a terminating pod): either
        way it no longer serves its worker."""
        return self.phase in STOPPED_PHASES or self.phase == Phase.TERMINATING


def describe_exit(code: int | None) -> str:
    """``exit code 137 (SIGKILL)``; the signal is named for 128 + N codes."""
    if code is None:
        return "exit code unknown"
    try:
        return f"exit code {code} ({signal.Signals(code - 128).name})"
    except ValueError:
        return f"exit code {code}"


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
    def list_runtimes(self) -> list[ListedRuntime]:
        """Every runtime this backend manages with its phase, found by label
        in one list call (never one call per worker), including runtimes
        that stopped and were not removed yet. Raises ``BackendError`` if
        the list could not be had: the reconciler must not read an outage
        as "nothing runs"."""

    def list_managed(self) -> list[RuntimeRef]:
        """The refs of ``list_runtimes`` (same call, same errors)."""
        return [listed.ref for listed in self.list_runtimes()]

    @abc.abstractmethod
    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        """The last ``tail`` lines of the runtime's output ("" if gone)."""
