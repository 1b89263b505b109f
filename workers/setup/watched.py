"""Run one command of the setup step under a deadline and, optionally, a
size watch on a directory: a clone or fetch that grows a repository past its
limit is stopped while it downloads, not judged after it finished.

Standard library only: shipped next to ``workspace_setup.py`` into
containers and init containers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.05
GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    # Why the command was stopped ("" when it ended by itself):
    # "timeout" or "size".
    stopped: str = ""
    size: int = 0  # bytes under the watched directory when it was stopped


def directory_bytes(path: Path) -> int:
    """Apparent size of the files under ``path`` (0 when it is missing).
    Files that vanish mid-walk (git renames its temporary packs) are
    skipped, not an error."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def run_watched(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None,
    deadline: float,
    watch: Path | None = None,
    limit: int = 0,
) -> Finished:
    """Run ``argv`` in its own process group until it ends, ``deadline``
    (``time.monotonic``) passes, or ``watch`` holds more than ``limit``
    bytes; in the last two cases the whole group gets SIGTERM (git removes
    its temporary files on it), then SIGKILL. Raises ``FileNotFoundError``
    when ``argv[0]`` does not exist."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
        stopped, size = _wait(process, deadline, watch, limit)
        out.seek(0)
        err.seek(0)
        return Finished(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            stopped,
            size,
        )


def _wait(
    process: subprocess.Popen, deadline: float, watch: Path | None, limit: int
) -> tuple[str, int]:
    while True:
        try:
            process.wait(timeout=POLL_SECONDS)
            return "", 0
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            _stop(process)
            return "timeout", 0
        if watch is not None and limit:
            size = directory_bytes(watch)
            if size > limit:
                _stop(process)
                return "size", size


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
