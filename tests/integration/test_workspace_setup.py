"""The setup step (workers/setup/workspace_setup.py) run as the runtime runs
it: a subprocess, against a real git repository and a real package index on
loopback. No database."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.setup_support import (
    GitHttpServer,
    PackageIndex,
    Remote,
    alpha_beta_index,
    git,
    make_wheel,
)
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

    def __init__(
        self,
        tmp_path: Path,
        url: str,
        index: PackageIndex,
        *,
        python: str = sys.executable,
        git_hosts: tuple[str, ...] = (),
    ):
        self.python_path = python
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
            "git_secret_hosts": list(git_hosts),
        }
        self.path = tmp_path / "setup.json"

    def run(self, env: dict | None = None, **changes) -> subprocess.CompletedProcess:
        self.config.update(changes)
        self.path.write_text(json.dumps(self.config))
        env = {
            "PATH": f"{Path(self.python_path).parent}:/usr/bin:/bin",
            "NOTEBOOK_FLEET_SETUP_GIT_SECRET": GIT_TOKEN,
            **(env or {}),
        }
        argv = [self.python_path, str(setup_step.SCRIPT), "--config", str(self.path)]
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


@pytest.fixture(scope="module")
def python_without_uv(tmp_path_factory):
    """An image's Python without uv: a fresh venv (pip only), alone on PATH
    with /usr/bin and /bin."""
    venv = tmp_path_factory.mktemp("no-uv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    assert not (venv / "bin/uv").exists()
    for directory in ("/usr/bin", "/bin"):
        assert not Path(directory, "uv").exists()
    return str(venv / "bin/python")


@pytest.fixture(params=["uv", "pip"])
def installer(request) -> tuple[str, str]:
    """The installer the step picks, and the Python that makes it pick it:
    one with uv beside it, or one without (pip)."""
    if request.param == "uv":
        return "uv", sys.executable
    return "pip", request.getfixturevalue("python_without_uv")


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


def test_offline_installs_from_the_cache_without_the_index(
    tmp_path, remote, index, installer
):
    _, python = installer
    step = Step(tmp_path, remote.url, index, python=python)
    assert step.run().returncode == 0
    other = Step(tmp_path / "second", remote.url, index, python=python)
    other.config["cache_dir"] = step.config["cache_dir"]
    index.requests.clear()
    done = other.run(fetch_policy="offline")
    assert done.returncode == 0, done.stdout
    assert other.python("import alpha, beta; print(beta.VERSION)") == "1.0"
    assert index.requests == []


def test_offline_with_a_missing_package_fails_naming_it(
    tmp_path, remote, index, installer
):
    name, python = installer
    step = Step(tmp_path, remote.url, index, python=python)
    assert step.run().returncode == 0  # alpha and beta are in the cache now
    remote.commit({"requirements.txt": "alpha\ngamma-missing\n"})
    index.requests.clear()
    done = step.run(fetch_policy="offline")
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    failure = setup_step.failure(done.stdout)
    assert failure.startswith(f"setup failed: {name} failed")
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


def test_mirror_credentials_reach_the_index_and_never_the_output(
    tmp_path, remote, index, installer
):
    step = Step(tmp_path, remote.url, index, python=installer[1])
    done = step.run(
        env={"NOTEBOOK_FLEET_SETUP_INDEX_SECRET": "bot:mirror-pass-123"},
        fetch_policy="mirror",
    )
    assert done.returncode == 0, done.stdout
    basic = "Basic " + base64.b64encode(b"bot:mirror-pass-123").decode()
    assert set(index.authorizations) == {basic}  # every request, the mirror's
    assert "mirror-pass-123" not in done.stdout + done.stderr
    assert step.python("import beta; print(beta.VERSION)") == "1.0"


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


@pytest.fixture
def private(tmp_path, remote):
    """``remote`` served over git's smart HTTP on loopback, behind basic auth
    that wants ``GIT_TOKEN``."""
    user, password = GIT_TOKEN.split(":")
    with GitHttpServer(tmp_path, username=user, password=password) as server:
        yield server


def _files(repo: Path) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): p.read_text()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_a_private_repository_clones_with_the_project_token(
    tmp_path, remote, index, private
):
    step = Step(tmp_path, private.url(remote.bare), index, git_hosts=[private.host])
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert git("rev-parse", "HEAD", cwd=step.repo) == git(
        "rev-parse", "HEAD", cwd=remote.work
    )
    assert private.expected in private.authorizations  # the token was sent
    assert private.authorizations[0] == ""  # only after the server asked
    assert "tok-9f8e7d6c5b4a" not in done.stdout + done.stderr


def test_wrong_credentials_fail_plainly_and_keep_the_checkout(
    tmp_path, remote, index, private
):
    step = Step(tmp_path, private.url(remote.bare), index, git_hosts=[private.host])
    assert step.run().returncode == 0
    (step.repo / "notes.md").write_text("my unsaved work\n")
    head, files = git("rev-parse", "HEAD", cwd=step.repo), _files(step.repo)
    remote.commit({"notes.md": "v2 upstream\n", "new.py": "X = 2\n"})
    done = step.run(env={"NOTEBOOK_FLEET_SETUP_GIT_SECRET": "user:wrong-0a1b2c3d"})
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    failure = setup_step.failure(done.stdout)
    assert failure.startswith(
        "setup failed: the repository refused the credentials (the project's git "
        "secret): ask a project manager to check or replace the deploy key or token."
    )
    assert "Authentication failed" in failure  # git's own line, below
    assert "wrong-0a1b2c3d" not in done.stdout + done.stderr
    assert git("rev-parse", "HEAD", cwd=step.repo) == head
    assert _files(step.repo) == files
    assert git("status", "--porcelain", cwd=step.repo) == "M notes.md"


def test_a_clone_with_wrong_credentials_leaves_nothing_behind(
    tmp_path, remote, index, private
):
    step = Step(tmp_path, private.url(remote.bare), index, git_hosts=[private.host])
    done = step.run(env={"NOTEBOOK_FLEET_SETUP_GIT_SECRET": "user:wrong-0a1b2c3d"})
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert "the repository refused the credentials" in done.stdout
    assert list(step.workspace.iterdir()) == []


def test_the_project_token_clones_from_the_host_and_port_it_is_bound_to(
    tmp_path, remote, index, private
):
    """Bound to 127.0.0.1:<port> the token clones; bound to 127.0.0.1 alone
    (the standard port, 80 for http) the same URL gets no token."""
    step = Step(tmp_path, private.url(remote.bare), index, git_hosts=[private.host])
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert private.expected in private.authorizations
    shutil.rmtree(step.workspace)
    step.workspace.mkdir()
    private.authorizations.clear()
    done = step.run(git_secret_hosts=["127.0.0.1"])
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert setup_step.failure(done.stdout).startswith(
        "setup failed: this project's git credentials are only for 127.0.0.1; "
        f"{private.host} is not one of them."
    )
    assert private.authorizations and set(private.authorizations) == {""}


def test_the_project_token_never_goes_to_a_host_it_is_not_bound_to(
    tmp_path, remote, index, private
):
    """The step holds the token (a gateway that sent it anyway) but the
    repository is on another host than the one an admin bound it to: git
    runs without it, and the failure says so plainly."""
    step = Step(
        tmp_path, private.url(remote.bare), index, git_hosts=["git.example.invalid"]
    )
    done = step.run()
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert setup_step.failure(done.stdout).startswith(
        "setup failed: this project's git credentials are only for "
        f"git.example.invalid; {private.host} is not one of them. The repository "
        "asked for credentials: use a repository on one of those hosts, or ask a "
        f"platform admin to bind the credentials to {private.host} too."
    )
    assert private.authorizations  # git asked, and was turned away
    assert not any(a for a in private.authorizations)  # never with a token
    assert list(step.workspace.iterdir()) == []
    assert "tok-9f8e7d6c5b4a" not in done.stdout + done.stderr


def test_a_private_repository_without_a_project_secret_says_so(
    tmp_path, remote, index, private
):
    step = Step(tmp_path, private.url(remote.bare), index)
    done = step.run(env={"NOTEBOOK_FLEET_SETUP_GIT_SECRET": ""})
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert setup_step.failure(done.stdout).startswith(
        "setup failed: the repository asked for credentials and the project has "
        "no git secret"
    )


def test_plain_http_is_refused_unless_local_sources_are_allowed(
    tmp_path, remote, index, private
):
    step = Step(tmp_path, private.url(remote.bare), index)
    done = step.run(allow_local_repository=False)
    assert done.returncode == setup_step.EXIT_SETUP_FAILED
    assert "transport 'http' not allowed" in done.stdout
    assert private.authorizations == []


def test_a_checkout_config_that_runs_commands_is_refused_with_the_secret_kept(
    step, tmp_path
):
    """A user writes .git/config in their workspace; the next start's git
    must not run it next to the project's credentials."""
    assert step.run().returncode == 0
    leak = tmp_path / "leak"
    git(
        "config",
        "core.fsmonitor",
        f'echo "$NF_GIT_PASSWORD" > {leak}; false',
        cwd=step.repo,
    )
    done = step.run()
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout
    assert "remote/.git/config sets core.fsmonitor" in done.stdout
    assert not leak.exists()


def test_pip_installs_online_where_the_image_has_no_uv(
    tmp_path, remote, index, python_without_uv
):
    step = Step(tmp_path, remote.url, index, python=python_without_uv)
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert "setup: installing with pip (this image has no uv)" in done.stdout
    assert step.python("import alpha, beta; print(alpha.VERSION)") == "1.0"
    assert any(r.startswith("/simple/alpha") for r in index.requests)
    wheels = sorted(p.name for p in (tmp_path / "cache/wheels").iterdir())
    assert wheels == ["alpha-1.0-py3-none-any.whl", "beta-1.0-py3-none-any.whl"]


PYPROJECT = """[project]
name = "analysis"
version = "0.1"
dependencies = ["beta==1.0"]
"""


def _fresh_remote(root: Path, files: dict[str, str]) -> Remote:
    root.mkdir()
    remote = Remote(root)
    remote.commit(files)
    return remote


def _installed(step: Step) -> list[str]:
    code = "import importlib.util as u; print(*[m for m in ('alpha', 'beta', 'gamma')"
    return step.python(code + " if u.find_spec(m)])").split()


def test_pyproject_dependencies_install_without_a_requirements_txt(tmp_path, index):
    remote = _fresh_remote(tmp_path / "src", {"pyproject.toml": PYPROJECT})
    step = Step(tmp_path, remote.url, index)
    done = step.run()
    assert done.returncode == 0, done.stdout
    assert "setup: installing 1 packages" in done.stdout
    assert _installed(step) == ["beta"]


def test_requirement_files_are_read_in_order_txt_pyproject_environment(tmp_path, index):
    make_wheel(index.directory, "gamma")
    remote = _fresh_remote(
        tmp_path / "src",
        {
            "requirements.txt": "alpha\n",
            "pyproject.toml": PYPROJECT,
            "environment.yml": "dependencies:\n  - pip\n  - pip:\n    - gamma\n",
        },
    )
    found = []
    for stage in ("all", "no-txt", "no-pyproject"):
        if stage == "no-txt":
            git("rm", "--quiet", "requirements.txt", cwd=remote.work)
        if stage == "no-pyproject":
            git("rm", "--quiet", "pyproject.toml", cwd=remote.work)
        if stage != "all":
            git("commit", "--quiet", "-m", stage, cwd=remote.work)
            git("push", "--quiet", "origin", "main", cwd=remote.work)
        step = Step(tmp_path / stage, remote.url, index)
        done = step.run()
        assert done.returncode == 0, done.stdout
        found.append(_installed(step))
    assert found == [["alpha"], ["beta"], ["gamma"]]


def test_a_malformed_pyproject_toml_fails_plainly(tmp_path, index):
    remote = _fresh_remote(tmp_path / "src", {"pyproject.toml": "[project\n"})
    step = Step(tmp_path, remote.url, index)
    done = step.run()
    assert done.returncode == setup_step.EXIT_SETUP_FAILED, done.stdout + done.stderr
    assert setup_step.failure(done.stdout).startswith(
        "setup failed: pyproject.toml is not valid TOML:"
    )
    assert "Traceback" not in done.stderr
    assert not (step.workspace / ".venv").exists()
