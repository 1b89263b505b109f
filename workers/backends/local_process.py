"""Process plumbing for the local backend: spawn in its own session with
rlimits, recognise a process again by pid *and* start time, stop a whole
process group. No knowledge of specs or records here."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil


def free_port(host: str) -> int:
    """A port the kernel just handed out on ``host``. Another process may take
    it before the runtime binds; the runtime then exits and observe says so."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _rlimits(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def spawn(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    memory_bytes: int,
) -> subprocess.Popen:
    """Start ``command`` as the leader of a new session (so its process group
    id is its pid) with an address-space limit of ``memory_bytes``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - argv list, no shell
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_rlimits(memory_bytes),  # only setrlimit: fork-safe
        )


def record_exit(popen: subprocess.Popen, path: Path) -> None:
    """Wait for ``popen`` in a daemon thread, then write its exit code to
    ``path`` as a shell reports it (128 + N when killed by signal N).

    The exit status of a process can only be had by its parent, so this is
    the one record of how a runtime ended that other processes (reconcile,
    a restarted control plane) can read. It also reaps the child at once:
    no zombie is left waiting for the next ``Popen``. Nothing is written
    once ``path``'s directory is gone (the runtime was terminated)."""

    def wait() -> None:
        code = popen.wait()
        with contextlib.suppress(OSError):
            path.write_text(str(128 - code if code < 0 else code))

    threading.Thread(target=wait, name=f"reap-{popen.pid}", daemon=True).start()


def read_exit(path: Path) -> int | None:
    """The exit code ``record_exit`` wrote; None when unknown (still
    running, or its parent died before it)."""
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def process_create_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def find_process(pid: int, create_time: float) -> psutil.Process | None:
    """The live process ``pid`` if it is still the one started at
    ``create_time``; None if it exited, is a zombie, or the pid was recycled."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


def stop_group(proc: psutil.Process, grace_seconds: float) -> None:
    """TERM the process group led by ``proc`` and every descendant, KILL what
    is left after ``grace_seconds``. Descendants are collected first so a
    child that left the group (setsid) is stopped too."""
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    _signal_all(proc.pid, family, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=grace_seconds)
    if alive:
        _signal_all(proc.pid, alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace_seconds)


def _signal_all(pgid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
