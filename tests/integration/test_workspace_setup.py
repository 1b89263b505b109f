"""The setup step (workers/setup/workspace_setup.py) run as the runtime runs
it: a subprocess, against a real git repository and a real package index on
loopback. No database."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.setup_support import PackageIndex, Remote, alpha_beta_index, git
from workers.backends import setup_step
from workers.setup.watched import directory_bytes
from workers.setup.workspace_setup import installer_config

GIT_TOKEN = "user:tok-9f8e7d6c5b4a"  # noqa: S105 - a test credential


@pytest.fixture
def remote(tmp_path):
    remote = Remote(tmp_path)
    remote.commit({"requirements.txt": "alpha\nbeta==1.0\n", "notes.md": "v1\n"})
    return remote


@pytest.fixture
def index(tmp_path):
    with alpha_beta_index(tmp_path) as index:
        yield index


class Step:
    """Runs the setup step for one workspace directory."""

    def __init__(self, tmp_path: Path, url: str, index: PackageIndex):
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir(parents=True)
        self.config = {
            "repository_url": url,
            "repository_ref": "",
            "requirements_path": "",
            "kernel_name": "demo",
            "fetch_policy": "online",
            "index_url": index.url,
            "kernel_packages": [],
            "allow_local_repository": True,
            "max_repository_bytes": 100 * 1024 * 1024,
            "timeout_seconds": 120,
            "cache_dir": str(tmp_path / "cache"),
        }
        self.path = tmp_path / "setup.json"

    def run(self, env: dict | None = None, **changes) -> subprocess.CompletedProcess:
        self.config.update(changes)
        self.path.write_text(json.dumps(self.config))
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "NOTEBOOK_FLEET_SETUP_GIT_SECRET": GIT_TOKEN,
            **(env or {}),
        }
        argv = [sys.executable, str(setup_step.SCRIPT), "--config", str(self.path)]
        return subprocess.run(  # noqa: S603
            [*argv, "--workspace", str(self.workspace)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    @property
    def repo(self) -> Path:
        return self.workspace / "remote"

    def python(self, code: str) -> str:
        venv_python = self.workspace / ".venv" / "bin" / "python"
        return subprocess.run(  # noqa: S603
            [str(venv_python), "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()


@pytest.fixture
def step(tmp_path, remote, index):
    return Step(tmp_path, remote.url, index)


def test_it_clones_installs_and_registers_the_kernel(step, remote, index):
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert "setup: cloning" in done.stdout
    assert "setup: installing 2 packages" in done.stdout
    assert git("rev-parse", "HEAD", cwd=step.repo) == git(
        "rev-parse", "HEAD", cwd=remote.work
    )
    assert step.python("import alpha, beta; print(alpha.VERSION)") == "1.0"
    kernel = step.workspace / ".local/share/jupyter/kernels/demo/kernel.json"
    assert json.loads(kernel.read_text())["argv"][0] == str(
        step.workspace / ".venv/bin/python"
    )
    assert GIT_TOKEN not in done.stdout + done.stderr
    assert "tok-9f8e7d6c5b4a" not in done.stdout + done.stderr


def test_it_skips_installing_when_the_requirements_hash_is_unchanged(step, index):
    assert step.run().returncode == 0
    index.requests.clear()
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert "setup: cache hit" in done.stdout
    assert index.requests == []


def test_it_keeps_local_changes_and_does_not_update(step, remote):
    assert step.run().returncode == 0
    before = git("rev-parse", "HEAD", cwd=step.repo)
    (step.repo / "notes.md").write_text("my unsaved work\n")
    remote.commit({"notes.md": "v2 upstream\n"})
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert "kept your local changes; not updated to the default branch" in done.stdout
    assert (step.repo / "notes.md").read_text() == "my unsaved work\n"
    assert git("rev-parse", "HEAD", cwd=step.repo) == before


def test_it_switches_ref_on_a_clean_tree(step, remote):
    assert step.run().returncode == 0
    feature = remote.commit({"feature.py": "X = 1\n"}, branch="feature")
    done = step.run(repository_ref="feature")
    assert done.returncode == 0, done.stdout
    assert git("rev-parse", "HEAD", cwd=step.repo) == feature
    assert (step.repo / "feature.py").is_file()
    assert f"checked out {feature}" in done.stdout


def test_offline_installs_from_the_cache_without_the_index(step, tmp_path, index):
    assert step.run().returncode == 0
    other = Step(tmp_path / "second", step.config["repository_url"], index)
    other.config["cache_dir"] = step.config["cache_dir"]
    index.requests.clear()
    done = other.run(fetch_policy="offline")
    assert done.returncode == 0, done.stdout
    assert other.python("import beta; print(beta.VERSION)") == "1.0"
    assert index.requests == []


def test_offline_with_a_missing_package_fails_naming_it(step, remote, index):
    assert step.run().returncode == 0  # alpha and beta are in the cache now
    remote.commit({"requirements.txt": "alpha\ngamma-missing\n"})
    index.requests.clear()
    done = step.run(fetch_policy="offline")
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    failure = setup_step.failure(done.stdout)
    assert failure.startswith("setup failed: uv failed")
    assert "gamma-missing" in failure
    assert index.requests == []
    assert not (
        step.workspace / ".venv" / ".notebook-fleet-requirements.sha256"
    ).exists()


def test_a_requirement_pointing_outside_the_fetch_policy_is_refused(step, remote):
    remote.commit(
        {"requirements.txt": "--extra-index-url https://pypi.org/simple\nalpha\n"}
    )
    done = step.run(fetch_policy="mirror")
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    assert "outside the project's mirror fetch policy" in done.stdout
    assert not (step.workspace / ".venv").exists()


def test_mirror_config_names_only_the_mirror_and_sends_its_credentials(
    step, index, tmp_path
):
    args, env = installer_config(
        policy="mirror",
        index_url=index.url,
        cache_dir=tmp_path,
        index_secret="bot:mirror-pass-123",
    )
    urls = [v for v in [*args, *env.values()] if "://" in v]
    assert urls == [index.url.replace("http://", "http://bot:mirror-pass-123@")]
    assert "--no-config" in args and "pypi.org" not in json.dumps([args, env])


def test_mirror_credentials_reach_the_index_and_never_the_output(step, index):
    done = step.run(
        env={"NOTEBOOK_FLEET_SETUP_INDEX_SECRET": "bot:mirror-pass-123"},
        fetch_policy="mirror",
    )
    assert done.returncode == 0, done.stdout
    basic = "Basic " + base64.b64encode(b"bot:mirror-pass-123").decode()
    assert basic in index.authorizations
    assert "mirror-pass-123" not in done.stdout + done.stderr


def test_git_refuses_file_transport_unless_an_admin_allowed_it(step):
    done = step.run(allow_local_repository=False)
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    assert "transport 'file' not allowed" in done.stdout
    assert not step.repo.exists()


def test_a_repository_over_the_size_limit_leaves_nothing_behind(step):
    done = step.run(max_repository_bytes=1)
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    assert "over the limit" in done.stdout
    assert list(step.workspace.iterdir()) == []


ENVIRONMENT_YML = """name: demo
channels:
  - conda-forge
dependencies:
  - python=3.11
  - alpha=1.0  # a conda pin: alpha==1.0.*
  - pip
  - pip:
    - beta==1.0
"""


def test_environment_yml_installs_with_uv_without_conda(step, remote, index):
    remote.commit({"environment.yml": ENVIRONMENT_YML})
    done = step.run(requirements_path="environment.yml")
    assert done.returncode == 0, done.stdout
    assert "setup: installing 2 packages" in done.stdout
    assert step.python("import alpha, beta; print(alpha.VERSION, beta.VERSION)") == (
        "1.0 1.0"
    )


def test_environment_yml_conda_only_packages_are_refused_by_name(step, remote):
    remote.commit(
        {
            "environment.yml": "dependencies: [alpha, cudatoolkit=11.8, conda-forge::gdal]"
        }
    )
    done = step.run(requirements_path="environment.yml")
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    failure = setup_step.failure(done.stdout)
    assert "needs conda for cudatoolkit=11.8, conda-forge::gdal" in failure
    assert not (step.workspace / ".venv").exists()


MIB = 1024 * 1024


def _commit_random(remote: Remote, mib: int) -> None:
    """Incompressible content: the pack is as big as the file."""
    (remote.work / "blob.bin").write_bytes(os.urandom(mib * MIB))
    git("add", "-A", cwd=remote.work)
    git("commit", "--quiet", "-m", "big", cwd=remote.work)
    git("push", "--quiet", "origin", "main", cwd=remote.work)


def test_a_clone_past_the_size_limit_is_stopped_while_it_downloads(step, remote):
    _commit_random(remote, 24)
    done = step.run(max_repository_bytes=2 * MIB)
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert "while downloading; stopped" in done.stdout
    assert "over the limit of 2.0 MiB" in done.stdout
    assert list(step.workspace.iterdir()) == []


def test_a_fetch_past_the_size_limit_is_stopped_and_the_checkout_kept(step, remote):
    assert step.run(max_repository_bytes=2 * MIB).returncode == 0
    head = git("rev-parse", "HEAD", cwd=step.repo)
    files = sorted(p.name for p in step.repo.iterdir())
    _commit_random(remote, 24)
    done = step.run(max_repository_bytes=2 * MIB)
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert "while downloading; stopped" in done.stdout
    assert git("rev-parse", "HEAD", cwd=step.repo) == head
    assert sorted(p.name for p in step.repo.iterdir()) == files
    assert directory_bytes(step.repo / ".git") < 2 * MIB  # no partial pack left
