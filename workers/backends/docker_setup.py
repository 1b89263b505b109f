"""The setup step on Docker: a container of its own that runs before the
IDE's, the way Kubernetes runs an init container.

``launch`` creates the IDE container without starting it, then the setup
container ``<runtime>-setup``: the same image (its Python is the one the
workspace's venv and kernel will run on; ``setup_image`` overrides it, and
must then have that Python at the same path), the same limits and lockdown,
the workspace volume, and the shared dependency cache volume mounted
read-write here only. The script, its config and the unsealed credentials
are copied into the created container as files (``put_archive``), so they
are in no container's environment, and the script deletes the credential
files once read. ``observe`` moves the step on: while it runs the worker is
PENDING with its progress lines; a failure is FAILED with
``dependency_setup_failed`` and the failure block; success starts the IDE
container (starting a started container is a no-op, so observing twice is
harmless). The setup container stays, exited, until ``terminate`` removes
it with the IDE's: its log is what a failed start shows.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

from docker import errors as docker_errors
from docker.models.containers import Container
from docker.types import Mount

from . import naming, setup_step
from .base import BackendError, ErrorCode, LaunchSpec, Observation, Phase, describe_exit
from .docker_options import WORKER_USER
from .spec import WORKSPACE_PATH

ROLE_KEY = f"{naming.LABEL_PREFIX}/role"
ROLE_SETUP = "setup"
DEFAULT_CACHE_VOLUME = "nbf-dependency-cache"
WORKER_UID, WORKER_GID = (int(part) for part in WORKER_USER.split(":"))


def setup_name(runtime_name: str) -> str:
    return f"{runtime_name}-setup"


def is_setup(container: Container) -> bool:
    attrs = container.attrs
    labels = attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}
    return labels.get(ROLE_KEY) == ROLE_SETUP


class DockerSetup:
    """The setup step of one Docker backend (see the module docstring)."""

    def __init__(
        self,
        *,
        image: str = "",
        python: str = "python3",
        cache_volume: str = DEFAULT_CACHE_VOLUME,
        unseal: setup_step.Unseal | None = None,
    ):
        self.image = image
        self.python = python
        self.cache_volume = cache_volume
        self.unseal = unseal

    def options(self, spec: LaunchSpec, ide: dict[str, Any]) -> dict[str, Any]:
        """The setup container's ``containers.create`` arguments, from the
        IDE container's ``ide``: its limits and lockdown; its workspace
        volume and operator binds but not the project volumes; none of its
        environment (the access token stays in the IDE's)."""
        mounts = [
            m
            for m in ide["mounts"]
            if m["Target"] == WORKSPACE_PATH or m["Type"] == "bind"
        ]
        mounts.append(
            Mount(setup_step.CONTAINER_CACHE, self.cache_volume, type="volume")
        )
        return {
            **ide,
            "name": setup_name(ide["name"]),
            "image": self.image or spec.image,
            "command": setup_step.container_command(self.python),
            "environment": {"HOME": WORKSPACE_PATH, "LANG": "C.UTF-8"},
            "labels": {**ide["labels"], ROLE_KEY: ROLE_SETUP},
            "user": WORKER_USER,  # the workspace's files belong to its user
            "mounts": mounts,
        }

    def start(self, client, spec: LaunchSpec, ide: dict[str, Any]) -> None:
        """Create, fill and start the setup container; idempotent (one that
        exists is started if it never was, else left alone). Raises
        ``BackendError`` (DEPENDENCY_SETUP_FAILED when the credentials
        cannot be unsealed)."""
        options = self.options(spec, ide)
        try:
            container = client.containers.get(options["name"])
        except docker_errors.NotFound:
            container = self._create(client, options)
        if container.status != "created":
            return
        files = self._files(spec)
        if not container.put_archive("/", files):
            raise BackendError(
                ErrorCode.INTERNAL,
                f"could not copy the setup files into {container.name}",
            )
        container.start()

    def _create(self, client, options: dict[str, Any]) -> Container:
        try:
            return client.containers.create(**options)
        except docker_errors.ImageNotFound as exc:
            raise BackendError(
                ErrorCode.IMAGE_PULL_FAILED,
                f"the setup image {options['image']} is not on the engine; pull it "
                "or set NOTEBOOK_RUNTIME_DOCKER_SETUP_IMAGE",
            ) from exc

    def _files(self, spec: LaunchSpec) -> bytes:
        """The tar copied to ``/``: the script, config and secrets in the
        setup directory (the script's user only), and the cache's
        subdirectories made the user's (a new volume's root is root's)."""
        config = setup_step.config_text(
            spec, cache_dir=setup_step.CONTAINER_CACHE, link_mode="copy"
        )
        entries: dict[str, tuple[str | None, int]] = {
            "opt/notebook-fleet": (None, 0o755),
            setup_step.CONTAINER_DIR.lstrip("/"): (None, 0o700),
            f"{setup_step.CONTAINER_CACHE.lstrip('/')}/uv": (None, 0o755),
            f"{setup_step.CONTAINER_CACHE.lstrip('/')}/pip": (None, 0o755),
        }
        folder = setup_step.CONTAINER_DIR.lstrip("/")
        for name, text in setup_step.script_files().items():
            entries[f"{folder}/{name}"] = (text, 0o644)
        entries[f"{folder}/setup.json"] = (config, 0o600)
        for name, secret in setup_step.secret_files(spec, self.unseal).items():
            entries[f"{folder}/{name}"] = (secret, 0o400)
        return _tar(entries)

    def observe(self, client, ide: Container) -> Observation | None:
        """The worker while its IDE container is still only created: None
        when it has no setup container (nothing to say), else the step's
        progress or failure; a finished step starts the IDE container."""
        try:
            step = client.containers.get(setup_name(ide.name))
        except docker_errors.NotFound:
            return None
        output = step.logs(tail=200).decode(errors="replace")
        lines = tuple(setup_step.progress(output))
        state = step.attrs.get("State", {})
        status = state.get("Status", "")
        if status in ("created", "running", "restarting"):
            message = lines[-1] if lines else f"setup container {status}"
            return Observation(Phase.PENDING, message=message, events=lines)
        code = state.get("ExitCode")
        if code == 0 and not state.get("OOMKilled"):
            ide.start()
            return Observation(
                Phase.PENDING, message="setup done; IDE container started", events=lines
            )
        return Observation(
            Phase.FAILED,
            message=_failure(output, state),
            events=lines,
            error_code=ErrorCode.DEPENDENCY_SETUP_FAILED,
        )

    def logs(self, client, runtime_name: str, tail: int) -> str:
        try:
            step = client.containers.get(setup_name(runtime_name))
        except docker_errors.NotFound:
            return ""
        return step.logs(tail=tail).decode(errors="replace")

    def remove(self, client, runtime_name: str) -> None:
        """Remove the setup container (already gone is fine)."""
        try:
            client.containers.get(setup_name(runtime_name)).remove(v=False, force=True)
        except docker_errors.NotFound:
            return


def _failure(output: str, state: dict[str, Any]) -> str:
    """The script's own failure block, else how the container ended and its
    last lines (a crash, the image without Python, out of memory)."""
    block = setup_step.failure(output)
    if block and state.get("ExitCode") == setup_step.EXIT_SETUP_FAILED:
        return block
    how = describe_exit(state.get("ExitCode"))
    if state.get("OOMKilled"):
        how += ", out of memory"
    tail = "\n".join(f"  | {line}" for line in output.strip().splitlines()[-10:])
    return f"setup failed: the setup container ended, {how}\n{tail}".rstrip()


def _tar(entries: dict[str, tuple[str | None, int]]) -> bytes:
    """A tar of directories (text None) and files, owned by the worker user."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (text, mode) in entries.items():
            info = tarfile.TarInfo(path)
            info.mode, info.uid, info.gid = mode, WORKER_UID, WORKER_GID
            info.mtime = int(time.time())
            if text is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = text.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
