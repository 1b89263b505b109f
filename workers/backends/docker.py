"""Docker backend: one container per worker, through the ``docker`` SDK.

The container never runs privileged, drops every capability, adds none,
cannot gain privileges, and gets no host path from a LaunchSpec: the only
bind mounts are ``extra_binds`` from trusted operator configuration (tests
use them to lend the host's Python to a minimal image). A root shell is UID
0 and nothing more. The workspace home is the named volume
``nbf-ws-<workspace-id>``; it outlives every container.

``network="host"`` (operator config, single-host setups and tests) shares
the host's network: the backend then picks a free loopback port per worker.
Any other network (or the default bridge) is reached at the container's IP.

A workspace with a repository runs its setup step first, in a container of
its own (``docker_setup``): the IDE container is created at launch and
started once that step succeeded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import docker
import requests
from docker import errors as docker_errors
from docker.models.containers import Container

from . import naming, setup_step
from .base import (
    BackendError,
    ErrorCode,
    LaunchSpec,
    ListedRuntime,
    Observation,
    Phase,
    RuntimeBackend,
    RuntimeRef,
    describe_exit,
)
from .docker_options import PORT_LABEL, container_options
from .docker_setup import DEFAULT_CACHE_VOLUME, DockerSetup, is_setup
from .docker_volumes import project_volumes_ensure
from .local_process import free_port, port_open
from .spec import validate_spec

TRANSPORT_ERRORS = (requests.exceptions.RequestException, docker_errors.DockerException)
# The list API's "Status" of a stopped container: "Exited (137) 5 seconds ago".
EXITED_STATUS = re.compile(r"^Exited \((?P<code>-?\d+)\)")
LISTED_PHASE = {
    "created": Phase.PENDING,
    "restarting": Phase.PENDING,
    "running": Phase.RUNNING,
    "paused": Phase.RUNNING,
    "exited": Phase.FAILED,
    "dead": Phase.FAILED,
}


class DockerBackend(RuntimeBackend):
    name = "docker"

    def __init__(
        self,
        base_url: str,
        *,
        network: str = "",
        launcher: tuple[str, ...] = ("jupyter", "lab"),
        extra_binds: Sequence[str] = (),
        timeout: float = 30.0,
        grace_seconds: int = 10,
        setup_image: str = "",
        setup_python: str = "python3",
        dependency_cache_volume: str = DEFAULT_CACHE_VOLUME,
        unseal: setup_step.Unseal | None = None,
    ):
        self.base_url = base_url
        self.network = network
        self.launcher = launcher
        self.extra_binds = tuple(extra_binds)
        self.timeout = timeout
        self.grace_seconds = grace_seconds
        self.setup = DockerSetup(
            image=setup_image,
            python=setup_python,
            cache_volume=dependency_cache_volume,
            unseal=unseal,
        )
        self._client: docker.DockerClient | None = None

    # --- contract -----------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        """Create and start the container, or adopt this worker's existing
        one (a stopped one is replaced). CONFLICT when the name belongs to
        another worker; IMAGE_PULL_FAILED when the image is neither present
        nor pullable; DEVICE_CLASS_UNAVAILABLE when the engine has no GPU
        driver (the unstartable container is removed again). With a setup
        step, the IDE container is only created here and the step started
        (again, if a launch was cut short before it)."""
        validate_spec(spec)
        client = self._connected()
        setup = setup_step.wanted(spec)
        existing = self._adoptable(client, spec)
        if existing is not None and not (setup and existing.status == "created"):
            return self._ref(existing)
        port = free_port("127.0.0.1") if self.network == "host" else spec.port
        options = container_options(
            spec,
            port=port,
            network=self.network,
            launcher=self.launcher,
            extra_binds=self.extra_binds,
        )
        project_volumes_ensure(client, spec)
        container = existing or self._create(client, spec, options)
        if setup:
            self._start_setup(client, spec, options, container)
        else:
            self._start(container)
        return self._ref(container)

    def observe(self, ref: RuntimeRef) -> Observation:
        """created → PENDING; running → RUNNING once the port accepts
        connections; exited or dead → FAILED whatever the exit code (see
        ``stopped_observation``); missing → NOT_FOUND; engine unreachable
        → UNKNOWN."""
        try:
            client = self._connected()
            container = client.containers.get(ref.name)
            step = None
            if container.status == "created":  # maybe still in its setup step
                step = self.setup.observe(client, container)
        except docker_errors.NotFound:
            return Observation(Phase.NOT_FOUND, message="no such container")
        except (BackendError, *TRANSPORT_ERRORS) as exc:
            return Observation(Phase.UNKNOWN, message=f"Docker engine: {exc}")
        return step or self._observation(container)

    def terminate(self, ref: RuntimeRef) -> None:
        """Stop (TERM, KILL after the grace period) and remove the container
        and its setup container; named volumes stay. Already gone is
        success."""
        try:
            client = self._connected()
            self.setup.remove(client, ref.name)  # first: it may start the IDE
            container = client.containers.get(ref.name)
            container.stop(timeout=self.grace_seconds)
            container.remove(v=False, force=True)
        except docker_errors.NotFound:
            return
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    def list_runtimes(self) -> list[ListedRuntime]:
        """One ``GET /containers/json?all=1&filters=label=managed-by`` call
        (sparse: no per-container inspect); stopped containers are FAILED
        with the exit code the list's status line shows."""
        try:
            containers = self._connected().containers.list(
                all=True, sparse=True, filters={"label": naming.MANAGED_SELECTOR}
            )
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
        return [self._listed(c) for c in containers if not is_setup(c)]

    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        try:
            client = self._connected()
            container = client.containers.get(ref.name)
            if container.status == "created":  # the setup step's output
                return self.setup.logs(client, ref.name, tail)
            return container.logs(tail=tail).decode(errors="replace")
        except docker_errors.NotFound:
            return ""
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    # --- helpers --------------------------------------------------------------

    def _connected(self) -> docker.DockerClient:
        """The SDK client, made on first use (version negotiation needs the
        engine); GATEWAY_UNREACHABLE (retryable) while the engine is down."""
        if self._client is None:
            try:
                self._client = docker.DockerClient(
                    base_url=self.base_url, version="auto", timeout=self.timeout
                )
            except TRANSPORT_ERRORS as exc:
                raise _unreachable(exc) from exc
        return self._client

    def _adoptable(self, client: docker.DockerClient, spec: LaunchSpec):
        name = naming.runtime_name(spec.worker_id)
        try:
            container = client.containers.get(name)
        except docker_errors.NotFound:
            return None
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
        _check_ours(container, spec)
        if container.status in ("created", "running", "restarting"):
            return container
        container.remove(v=False, force=True)  # stopped: start afresh
        self.setup.remove(client, name)  # and set up afresh
        return None

    def _create(
        self, client: docker.DockerClient, spec: LaunchSpec, options: dict[str, Any]
    ) -> Container:
        try:
            return client.containers.create(**options)
        except docker_errors.ImageNotFound:
            self._pull(client, spec.image)
            return client.containers.create(**options)
        except docker_errors.APIError as exc:
            if exc.status_code != 409:
                raise _api_error(exc) from exc
            container = client.containers.get(options["name"])
            _check_ours(container, spec)
            return container
        except TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc

    def _start_setup(
        self,
        client: docker.DockerClient,
        spec: LaunchSpec,
        options: dict[str, Any],
        container: Container,
    ) -> None:
        """Start the setup step; if that fails, remove what this launch
        made, so a retry starts clean."""
        try:
            self.setup.start(client, spec, options)
        except (BackendError, *TRANSPORT_ERRORS) as exc:
            self.setup.remove(client, container.name)
            container.remove(v=False, force=True)
            if isinstance(exc, BackendError):
                raise
            if isinstance(exc, docker_errors.APIError):
                raise _api_error(exc) from exc
            raise _unreachable(exc) from exc

    def _pull(self, client: docker.DockerClient, image: str) -> None:
        try:
            client.images.pull(image)
        except TRANSPORT_ERRORS as exc:
            raise BackendError(
                ErrorCode.IMAGE_PULL_FAILED,
                f"image {image} is not on the engine and could not be pulled: {exc}",
            ) from exc

    def _start(self, container: Container) -> None:
        try:
            container.start()
        except docker_errors.APIError as exc:
            container.remove(v=False, force=True)
            raise _api_error(exc) from exc

    def _ref(self, container: Container) -> RuntimeRef:
        labels = _labels(container)
        return RuntimeRef(
            self.name,
            labels.get(naming.WORKER_ID_KEY, ""),
            _name(container),
            extra={"id": container.id, "port": int(labels.get(PORT_LABEL, "0") or 0)},
        )

    def _listed(self, container: Container) -> ListedRuntime:
        status = container.attrs.get("State", "")
        status = status if isinstance(status, str) else status.get("Status", "")
        phase = LISTED_PHASE.get(status, Phase.UNKNOWN)
        if phase is not Phase.FAILED:
            return ListedRuntime(self._ref(container), phase)
        match = EXITED_STATUS.match(container.attrs.get("Status", ""))
        code = int(match["code"]) if match else None
        message = f"container {status}, {describe_exit(code)}"
        return ListedRuntime(self._ref(container), phase, message, code)

    def _observation(self, container: Container) -> Observation:
        state = container.attrs.get("State", {})
        status = state.get("Status", "")
        if status in ("created", "restarting"):
            return Observation(Phase.PENDING, message=f"container {status}")
        if status in ("exited", "dead"):
            return stopped_observation(state)
        host, port = self._address(container)
        endpoint = f"http://{host}:{port}{_base_url(container)}" if host else ""
        if host and port_open(host, port):
            return Observation(Phase.RUNNING, endpoint, "listening")
        return Observation(
            Phase.PENDING, endpoint, "container started; waiting for port"
        )

    def _address(self, container: Container) -> tuple[str, int]:
        port = int(_labels(container).get(PORT_LABEL, "0") or 0)
        if self.network == "host":
            return "127.0.0.1", port
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        for name, network in networks.items():
            if not self.network or name == self.network:
                return network.get("IPAddress", ""), port
        return "", port


def stopped_observation(state: dict[str, Any]) -> Observation:
    """A stopped container (``State`` of an inspect) is FAILED whatever its
    exit code. A notebook runtime is a server: it never ends by itself while
    its worker should run, and an engine that crashed and restarted reports
    the containers it stopped with code 0, which is no success either."""
    code = state.get("ExitCode")
    notes = []
    if state.get("OOMKilled"):
        notes.append("out of memory")
    if state.get("Error"):
        notes.append(f"engine error: {state['Error']}")
    if code == 0 and not notes:
        notes.append("stopped from outside, e.g. by an engine restart")
    detail = f" ({'; '.join(notes)})" if notes else ""
    return Observation(
        Phase.FAILED, message=f"container exited, {describe_exit(code)}{detail}"
    )


def _check_ours(container: Container, spec: LaunchSpec) -> None:
    if _labels(container).get(naming.WORKER_ID_KEY) != naming.label_value(
        spec.worker_id
    ):
        raise BackendError(
            ErrorCode.CONFLICT,
            f"container {container.name} exists and "
            "is not this worker's; remove it or pick another worker id",
        )


def _labels(container: Container) -> dict[str, str]:
    """Labels of a full or a sparse (list) container object."""
    attrs = container.attrs
    return attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}


def _name(container: Container) -> str:
    names = container.attrs.get("Names") or [container.attrs.get("Name", "")]
    return names[0].lstrip("/")


def _base_url(container: Container) -> str:
    for item in container.attrs.get("Config", {}).get("Env", []) or []:
        if item.startswith("NOTEBOOK_FLEET_BASE_URL="):
            return item.split("=", 1)[1]
    return "/"


def _api_error(exc: docker_errors.APIError) -> BackendError:
    text = str(exc.explanation or exc)
    if "could not select device driver" in text:
        return BackendError(
            ErrorCode.DEVICE_CLASS_UNAVAILABLE,
            f"the Docker engine has no GPU driver: {text}",
        )
    if exc.status_code in (400, 422):
        return BackendError(ErrorCode.INVALID_SPEC, text)
    retryable = (exc.status_code or 500) >= 500
    code = ErrorCode.GATEWAY_UNREACHABLE if retryable else ErrorCode.INTERNAL
    return BackendError(code, f"Docker engine: {text}", retryable=retryable)


def _unreachable(exc: Exception) -> BackendError:
    return BackendError(
        ErrorCode.GATEWAY_UNREACHABLE,
        f"Docker engine unreachable: {exc}",
        retryable=True,
    )
