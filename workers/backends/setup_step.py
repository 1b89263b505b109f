"""The setup step as a backend sees it: the config file, the command that
runs ``workers/setup/workspace_setup.py`` before the IDE, the step's
secrets, and what its output says. No Django here (backends never touch it).

Locally the setup script execs the IDE itself once done, so the backend
keeps one process per runtime; the step's secrets are popped from the
environment before that exec. Container backends run it as a step of its
own instead (a setup container, an init container): the script and its
siblings (``FILES``), the config and the secrets travel as files into that
step only, never into the IDE's container.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .base import BackendError, ErrorCode, LaunchSpec
from .spec import WORKSPACE_PATH

SCRIPT = Path(__file__).resolve().parent.parent / "setup" / "workspace_setup.py"
# The script and the modules it imports, shipped together.
FILES = (
    "workspace_setup.py",
    "repository.py",
    "failure.py",
    "watched.py",
    "conda_env.py",
)
# Inside a setup container / init container.
CONTAINER_DIR = "/opt/notebook-fleet/setup"
CONTAINER_CACHE = "/opt/notebook-fleet/cache"
SECRET_FILES = {  # workspace_setup.SECRET_FILES, by environment name
    "NOTEBOOK_FLEET_SETUP_GIT_SECRET": "git-secret",
    "NOTEBOOK_FLEET_SETUP_INDEX_SECRET": "index-secret",
}
EXIT_SETUP_FAILED = 86  # workspace_setup.EXIT_SETUP_FAILED
PROGRESS_PREFIX = "setup: "
FAILED_PREFIX = "setup failed: "
Unseal = Callable[[str], str]


def wanted(spec: LaunchSpec) -> bool:
    return bool(spec.setup.repository_url)


def config_text(spec: LaunchSpec, *, cache_dir: str, **extra: str) -> str:
    """The step's configuration as JSON: no secret, sealed or not."""
    config = dataclasses.asdict(spec.setup)
    for sealed in ("git_secret_sealed", "index_secret_sealed"):
        config.pop(sealed)
    config["cache_dir"] = str(cache_dir)
    return json.dumps({**config, **extra})


def write_config(spec: LaunchSpec, path: Path, *, cache_dir: Path) -> None:
    """The step's non-secret configuration, readable by its owner only."""
    path.write_text(config_text(spec, cache_dir=str(cache_dir)))
    os.chmod(path, 0o600)


def script_files() -> dict[str, str]:
    """The setup script and its siblings, by file name."""
    return {name: (SCRIPT.parent / name).read_text() for name in FILES}


def container_command(python: str, *, termination_log: str = "") -> list[str]:
    """The setup step of a container backend: the shipped files, config and
    secrets in ``CONTAINER_DIR``, the workspace at its usual path."""
    command = [
        python,
        f"{CONTAINER_DIR}/workspace_setup.py",
        "--config",
        f"{CONTAINER_DIR}/setup.json",
        "--secrets-dir",
        CONTAINER_DIR,
        "--workspace",
        WORKSPACE_PATH,
    ]
    return command + (["--termination-log", termination_log] if termination_log else [])


def command(config: Path, workspace: Path, ide: list[str]) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "--config",
        str(config),
        "--workspace",
        str(workspace),
        "--",
        *ide,
    ]


def secrets(spec: LaunchSpec, unseal: Unseal | None) -> dict[str, str]:
    """The step's credentials, unsealed; only the step's environment gets
    them (the script pops them before the IDE starts)."""
    if unseal is None:
        return {}
    try:
        values = {
            "NOTEBOOK_FLEET_SETUP_GIT_SECRET": unseal(spec.setup.git_secret_sealed),
            "NOTEBOOK_FLEET_SETUP_INDEX_SECRET": unseal(spec.setup.index_secret_sealed),
        }
    except Exception as exc:  # noqa: BLE001 - any unseal failure: same answer
        raise BackendError(
            ErrorCode.DEPENDENCY_SETUP_FAILED, str(exc), retryable=False
        ) from exc
    return {name: value for name, value in values.items() if value}


def secret_files(spec: LaunchSpec, unseal: Unseal | None) -> dict[str, str]:
    """``secrets`` by the file name the script reads them from."""
    return {SECRET_FILES[k]: v for k, v in secrets(spec, unseal).items()}


def progress(output: str) -> list[str]:
    """The step's progress lines so far, oldest first."""
    return [ln for ln in output.splitlines() if ln.startswith(PROGRESS_PREFIX)]


def failure(output: str, max_lines: int = 20) -> str:
    """The failure block the step printed last ("" when it did not fail)."""
    lines = output.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith(FAILED_PREFIX)]
    if not starts:
        return ""
    return "\n".join(lines[starts[-1] :][:max_lines])
