"""The embedded default backend: one JupyterLab (or code-server) process per
worker on a loopback port.

State lives in ``state_dir`` as one JSON record per worker (pid, process start
time, port), so a restarted control plane finds its runtimes again, and a
recycled pid is never mistaken for a runtime (the start time must match).
The workspace directory ``<workspaces_dir>/<workspace-id>/`` is the runtime's
working directory and outlives it, like a volume. Memory is capped with
``RLIMIT_AS``; CPU limits and GPUs are not enforced here (no cgroups): use
the docker or kubernetes backend where that matters.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import setup_step
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
from .local_process import (
    find_process,
    free_port,
    port_open,
    process_create_time,
    read_exit,
    record_exit,
    spawn,
    stop_group,
)
from .naming import runtime_labels, runtime_name
from .spec import ide_command, invalid, runtime_environment, validate_spec

DEFAULT_LAUNCHER = (sys.executable, "-m", "jupyterlab")


class LocalBackend(RuntimeBackend):
    """Runtimes as local processes. Thread- and process-safe: launch and
    terminate hold a per-worker file lock in ``state_dir``."""

    name = "local"

    def __init__(
        self,
        workspaces_dir: str | os.PathLike,
        *,
        state_dir: str | os.PathLike | None = None,
        launcher: tuple[str, ...] = DEFAULT_LAUNCHER,
        host: str = "127.0.0.1",
        public_host: str = "",
        grace_seconds: float = 5.0,
        dependency_cache_dir: str | os.PathLike | None = None,
        unseal: setup_step.Unseal | None = None,
    ):
        self.workspaces_dir = Path(workspaces_dir)
        default_state = self.workspaces_dir.parent / "local-runtimes"
        self.state_dir = Path(state_dir) if state_dir else default_state
        self.launcher = launcher
        self.host = host
        self.public_host = public_host or host
        self.grace_seconds = grace_seconds
        default_cache = self.workspaces_dir.parent / "dependency-cache"
        self.dependency_cache_dir = Path(dependency_cache_dir or default_cache)
        self.unseal = unseal

    # --- contract -----------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        """Start the process, or return the live one this worker already has.
        Raises INVALID_SPEC for kinds this host cannot run and CONFLICT when
        another worker's live runtime uses the same workspace directory."""
        validate_spec(spec)
        self._check_supported(spec)
        with self._locked(spec.worker_id):
            record = self._read(spec.worker_id)
            if record and self._process(record):
                return self._ref(record)
            self._check_workspace_free(spec)
            port = free_port(self.host)
            record = self._start(spec, self._command(spec, port=port), port)
            self._write(record)
            return self._ref(record)

    def observe(self, ref: RuntimeRef) -> Observation:
        """NOT_FOUND without a record; RUNNING once the port accepts
        connections; FAILED when the process ended (with its exit code when
        known); UNKNOWN when the state directory cannot be read."""
        try:
            record = self._read(ref.worker_id)
        except OSError as exc:
            return Observation(Phase.UNKNOWN, message=f"state unreadable: {exc}")
        if record is None:
            return Observation(Phase.NOT_FOUND, message="no such runtime")
        # Setup lines ride along in every phase, so none printed between
        # two polls is lost when the IDE answers or the step fails.
        setup_lines = (
            setup_step.progress(self._tail(record, 200)) if record.get("setup") else []
        )
        events = tuple(record.get("events", ())) + tuple(setup_lines)
        if self._process(record) is None:
            return self._ended_observation(record, events)
        endpoint = self._endpoint(record)
        if port_open(self.host, record["port"]):
            return Observation(
                Phase.RUNNING, endpoint=endpoint, events=events, message="listening"
            )
        return Observation(
            Phase.PENDING,
            endpoint=endpoint,
            events=events,
            message=setup_lines[-1]
            if setup_lines
            else "process started; waiting for its port",
        )

    def _ended_observation(self, record: dict, events: tuple) -> Observation:
        """FAILED; a failed setup step says so with its own last lines."""
        code = read_exit(self._exit_path(record["worker_id"]))
        failure = setup_step.failure(self._tail(record, 200))
        # The exit code is written by a reaper thread and may lag the exit.
        if failure and code in (None, setup_step.EXIT_SETUP_FAILED):
            return Observation(
                Phase.FAILED,
                message=failure,
                events=events,
                error_code=ErrorCode.DEPENDENCY_SETUP_FAILED,
            )
        tail = self._tail(record, 5).strip().splitlines()
        detail = tail[-1] if tail else "no output"
        return Observation(
            Phase.FAILED, message=f"{_ended(code)}: {detail}", events=events
        )

    def terminate(self, ref: RuntimeRef) -> None:
        """TERM the process group, KILL after the grace period, drop the
        record. The workspace directory stays. Already gone is success."""
        with self._locked(ref.worker_id):
            record = self._read(ref.worker_id)
            if record is None:
                return
            proc = self._process(record)
            if proc is not None:
                stop_group(proc, self.grace_seconds)
            self._record_path(ref.worker_id).unlink(missing_ok=True)
            shutil.rmtree(self._runtime_dir(ref.worker_id), ignore_errors=True)

    def list_runtimes(self) -> list[ListedRuntime]:
        """Every worker with a record (one directory scan): RUNNING while its
        process lives, FAILED with the exit code once it ended (a record
        stays until ``terminate``). Raises GATEWAY_UNREACHABLE if the state
        directory cannot be read."""
        try:
            paths = sorted(self.state_dir.glob("*.json"))
            records = [json.loads(p.read_text()) for p in paths]
        except (OSError, ValueError) as exc:
            raise BackendError(
                ErrorCode.GATEWAY_UNREACHABLE,
                f"cannot read {self.state_dir}: {exc}",
                retryable=True,
            ) from exc
        return [self._listed(r) for r in records]

    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        record = self._read(ref.worker_id)
        return self._tail(record, tail) if record else ""

    # --- helpers --------------------------------------------------------------

    def _check_supported(self, spec: LaunchSpec) -> None:
        if spec.ide_kind == "custom":
            raise invalid("the local backend runs no images; use docker or kubernetes")
        if spec.ide_kind == "code-server" and not shutil.which("code-server"):
            raise invalid("code-server is not installed on this host")

    def _command(self, spec: LaunchSpec, *, port: int) -> list[str]:
        workdir = self.workspaces_dir / spec.workspace_id
        return ide_command(
            spec,
            launcher=self.launcher,
            ip=self.host,
            port=port,
            root_dir=str(workdir),
            as_root=os.geteuid() == 0,
        )

    def _start(self, spec: LaunchSpec, command: list[str], port: int) -> dict:
        workdir = self.workspaces_dir / spec.workspace_id
        workdir.mkdir(parents=True, exist_ok=True)
        runtime_dir = self._runtime_dir(spec.worker_id)
        runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._exit_path(spec.worker_id).unlink(missing_ok=True)  # a relaunch
        env = self._environment(spec, port, workdir, runtime_dir)
        if setup_step.wanted(spec):
            config = runtime_dir / "setup.json"
            setup_step.write_config(spec, config, cache_dir=self.dependency_cache_dir)
            command = setup_step.command(config, workdir, command)
            env = {**env, **setup_step.secrets(spec, self.unseal)}
        log_path = runtime_dir / "output.log"
        popen = spawn(
            command,
            cwd=workdir,
            env=env,
            log_path=log_path,
            memory_bytes=spec.resources.memory_limit_bytes,
        )
        create_time = process_create_time(popen.pid)
        record_exit(popen, self._exit_path(spec.worker_id))
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "worker_id": spec.worker_id,
            "workspace_id": spec.workspace_id,
            "pid": popen.pid,
            "create_time": create_time,
            "port": port,
            "base_url": spec.base_url,
            "ide_kind": spec.ide_kind,
            "labels": runtime_labels(spec),
            "setup": setup_step.wanted(spec),
            "log": str(log_path),
            "events": [f"{started} started pid {popen.pid} on port {port}"],
        }

    def _environment(
        self, spec: LaunchSpec, port: int, workdir: Path, runtime_dir: Path
    ) -> dict[str, str]:
        """A clean environment: the control plane's own variables (database
        URL, secret key) never reach a user's runtime."""
        launcher_bin = str(Path(self.launcher[0]).parent)
        return {
            "PATH": f"{launcher_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(workdir),
            "JUPYTER_RUNTIME_DIR": str(runtime_dir / "jupyter"),
            **runtime_environment(spec, port=port),
        }

    def _check_workspace_free(self, spec: LaunchSpec) -> None:
        for path in self.state_dir.glob("*.json"):
            other = json.loads(path.read_text())
            if other["worker_id"] == spec.worker_id:
                continue
            if other["workspace_id"] == spec.workspace_id and self._process(other):
                raise BackendError(
                    ErrorCode.CONFLICT,
                    f"workspace {spec.workspace_id} is in use by worker "
                    f"{other['worker_id']}; stop that worker first",
                )

    def _process(self, record: dict[str, Any]):
        return find_process(record["pid"], record["create_time"])

    def _listed(self, record: dict[str, Any]) -> ListedRuntime:
        ref = self._ref(record)
        if self._process(record) is not None:
            return ListedRuntime(ref, Phase.RUNNING)
        code = read_exit(self._exit_path(record["worker_id"]))
        return ListedRuntime(ref, Phase.FAILED, _ended(code), code)

    def _ref(self, record: dict[str, Any]) -> RuntimeRef:
        return RuntimeRef(
            backend=self.name,
            worker_id=record["worker_id"],
            name=runtime_name(record["worker_id"]),
            extra={
                "pid": record["pid"],
                "port": record["port"],
                "create_time": record["create_time"],
                "labels": record.get("labels", {}),
            },
        )

    def _endpoint(self, record: dict[str, Any]) -> str:
        return f"http://{self.public_host}:{record['port']}{record['base_url']}"

    def _tail(self, record: dict[str, Any], lines: int) -> str:
        try:
            with open(record["log"], "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 256 * 1024))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""

    def _record_path(self, worker_id: str) -> Path:
        return self.state_dir / f"{runtime_name(worker_id)}.json"

    def _runtime_dir(self, worker_id: str) -> Path:
        return self.state_dir / runtime_name(worker_id)

    def _exit_path(self, worker_id: str) -> Path:
        return self._runtime_dir(worker_id) / "exit-code"

    def _read(self, worker_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._record_path(worker_id).read_text())
        except FileNotFoundError:
            return None

    def _write(self, record: dict[str, Any]) -> None:
        path = self._record_path(record["worker_id"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    @contextlib.contextmanager
    def _locked(self, worker_id: str) -> Iterator[None]:
        """An exclusive flock per worker: it also excludes other threads of
        this process, since each call opens its own file description."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_dir / f"{runtime_name(worker_id)}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _ended(code: int | None) -> str:
    return f"process ended, {describe_exit(code)}"
