"""The setup step as a backend sees it: the config file, the command that
runs ``workers/setup/workspace_setup.py`` before the IDE, the step's
secrets, and what its output says. No Django here (backends never touch it).

The setup script execs the IDE itself once done, so a backend keeps one
process (or container command) per runtime; the step's secrets are popped
from the environment before that exec.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .base import BackendError, ErrorCode, LaunchSpec

SCRIPT = Path(__file__).resolve().parent.parent / "setup" / "workspace_setup.py"
EXIT_SETUP_FAILED = 86  # workspace_setup.EXIT_SETUP_FAILED
PROGRESS_PREFIX = "setup: "
FAILED_PREFIX = "setup failed: "
Unseal = Callable[[str], str]


def wanted(spec: LaunchSpec) -> bool:
    return bool(spec.setup.repository_url)


def write_config(spec: LaunchSpec, path: Path, *, cache_dir: Path) -> None:
    """The step's non-secret configuration, readable by its owner only."""
    config = dataclasses.asdict(spec.setup)
    for sealed in ("git_secret_sealed", "index_secret_sealed"):
        config.pop(sealed)
    config["cache_dir"] = str(cache_dir)
    path.write_text(json.dumps(config))
    os.chmod(path, 0o600)


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
