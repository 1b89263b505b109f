"""scripts/start-dockerd.sh after an engine crash: a pid file left behind
(its pid dead, or reused by another process) and a socket nobody answers
on. Runs a second, private engine in its own directory (the shared one is
never touched) and stops it at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import pytest

from tests.backends.conftest import REPO
from tests.conftest import missing_service

pytestmark = pytest.mark.needs_docker
SCRIPT = REPO / "scripts" / "start-dockerd.sh"


def run_script(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "NOTEBOOK_FLEET_DOCKERD_DIR": str(directory)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def stop_engine(directory: Path) -> None:
    """TERM the private engine (only if the pid file names ours), then wait."""
    pidfile = directory / "dockerd.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if f"--pidfile={pidfile}".encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)


@pytest.fixture
def engine_dir():
    if not shutil.which("dockerd"):
        missing_service("needs dockerd (apt-get install docker.io)")
    # Short: dockerd's and containerd's unix sockets live under it.
    directory = Path(tempfile.mkdtemp(prefix="nbf-dd-", dir="/tmp"))
    yield directory
    stop_engine(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def foreign_process():
    """A live process that is not dockerd: a crashed engine's pid, reused."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("stale", ["dead", "reused"])
def test_it_starts_the_engine_over_a_stale_pid_file(engine_dir, foreign_process, stale):
    pid = dead_pid() if stale == "dead" else foreign_process.pid
    (engine_dir / "dockerd.pid").write_text(str(pid))
    Path(engine_dir / "exec" / "containerd").mkdir(parents=True)
    (engine_dir / "exec" / "containerd" / "containerd.pid").write_text(str(pid))
    (engine_dir / "docker.sock").write_text("")  # stands for the dead socket

    started = run_script(engine_dir)

    assert started.returncode == 0, started.stderr
    url = f"unix://{engine_dir}/docker.sock"
    assert started.stdout.strip() == f"export NOTEBOOK_RUNTIME_DOCKER_URL={url}"
    assert "removing stale pid file" in started.stderr
    assert docker.DockerClient(base_url=url).ping()
    assert foreign_process.poll() is None  # the pid's new owner was left alone

    again = run_script(engine_dir)  # idempotent: finds the engine answering
    assert again.returncode == 0, again.stderr
    assert "starting dockerd" not in again.stderr
