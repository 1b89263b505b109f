"""The workspace setup step: check out the repository, install its
dependencies into ``<workspace>/.venv``, register that environment as a
Jupyter kernel, then (optionally) exec the IDE.

Standard library only, so the same file runs on the control plane's host
(local backend), in a container before the IDE (docker) or as an init
container (kubernetes)::

    python workspace_setup.py --config setup.json --workspace DIR [-- IDE ARGV]
    python -m workers.setup.workspace_setup ...

Its sibling modules (``setup_step.FILES``) travel with it.

Contract:
- Progress goes to stdout as ``setup: <text>`` lines; a failure ends with a
  ``setup failed: <reason>`` line followed by the failing command's last
  lines, and exit status ``EXIT_SETUP_FAILED``. Every line is redacted.
- Secrets come from ``SECRET_ENV`` or from files in ``--secrets-dir``
  (``SECRET_FILES``; containers), never argv or the config file; they are
  removed from the environment before the IDE is exec'd, and their files
  deleted where the directory allows it.
- ``--termination-log`` (Kubernetes) receives the failure block too, so the
  pod's status carries it.
- A clone or fetch that grows the repository past ``max_repository_bytes``
  is stopped while it downloads; the workspace's files stay as they were.
- Local changes are never destroyed: a dirty tree, or local commits the
  remote does not have, keep the checkout as it is ("kept your local
  changes"). A failed clone leaves no directory behind.
- A hash of the requirement file, the fetch policy and the kernel packages
  is written last; the same hash next time skips the install entirely.
- Packages install with uv where the image has it, with pip otherwise
  (said in the progress); pip goes through a wheelhouse in the dependency
  cache, so ``offline`` works with it too (``pip_config``).
- Every command runs under the setup timeout (``timeout_seconds``); one
  that passes it is stopped and the failure names the setting.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

if __package__:
    from .conda_env import EnvironmentFileError, read_environment
    from .failure import SetupFailed, redact
    from .repository import RepositoryCheckout
    from .watched import Finished, run_watched
else:  # run as a file next to its siblings (containers, init containers)
    from conda_env import EnvironmentFileError, read_environment
    from failure import SetupFailed, redact
    from repository import RepositoryCheckout
    from watched import Finished, run_watched

EXIT_SETUP_FAILED = 86
GIT_SECRET_ENV = "NOTEBOOK_FLEET_SETUP_GIT_SECRET"  # noqa: S105 - a name
INDEX_SECRET_ENV = "NOTEBOOK_FLEET_SETUP_INDEX_SECRET"  # noqa: S105
SECRET_ENV = (GIT_SECRET_ENV, INDEX_SECRET_ENV)
# --secrets-dir file name -> the secret it holds.
SECRET_FILES = {"git-secret": GIT_SECRET_ENV, "index-secret": INDEX_SECRET_ENV}
REQUIREMENT_FILES = ("requirements.txt", "pyproject.toml", "environment.yml")
HASH_FILE = ".notebook-fleet-requirements.sha256"
WHEELHOUSE = "wheels"  # in the dependency cache: what pip installs from
# requirements.txt lines that fetch from somewhere of their own choosing.
_OUTSIDE_POLICY = re.compile(
    r"^\s*(?:-i\b|--index-url|--extra-index-url|-f\b|--find-links|--trusted-host"
    r"|-e\b|--editable|-r\b|--requirement|-c\b|--constraint)|://| @ "
)


def installer_config(
    *, policy: str, index_url: str, cache_dir: Path, index_secret: str = ""
) -> tuple[list[str], dict[str, str]]:
    """uv's arguments and environment for ``policy``: the policy is the
    installer's configuration. ``online`` and ``mirror`` name exactly one
    index (the configured one or the mirror, with its credentials in the
    environment only); ``offline`` forbids the network and reads the cache.
    User and repository uv configuration is ignored (``--no-config``)."""
    args = ["--no-config", "--index-strategy", "first-index"]
    env = {"UV_CACHE_DIR": str(cache_dir / "uv"), "UV_NO_CONFIG": "1"}
    if policy == "offline":
        args.append("--offline")
    if index_url:
        env["UV_DEFAULT_INDEX"] = _with_credentials(index_url, index_secret)
    elif policy != "offline":
        raise SetupFailed(f"the {policy} fetch policy has no index URL configured")
    return args, env


def pip_config(
    *, policy: str, index_url: str, cache_dir: Path, index_secret: str = ""
) -> tuple[list[str] | None, list[str], dict[str, str]]:
    """pip's ``(download, install, env)`` for ``policy``, where uv is
    missing. pip's own cache cannot install without an index, so the cache
    keeps a wheelhouse: ``online`` and ``mirror`` fill it from their one
    index (``download``: ``pip wheel``, sources built once), then every
    policy installs from it alone (``--no-index --find-links``); ``offline``
    has no download step. No pip configuration file is read."""
    wheels = str(cache_dir / WHEELHOUSE)
    env = {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_CACHE_DIR": str(cache_dir / "pip"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",  # it would ask pypi.org
        "PIP_NO_INPUT": "1",
    }
    install = ["install", "--no-index", "--find-links", wheels]
    if policy == "offline":
        return None, install, env
    if not index_url:
        raise SetupFailed(f"the {policy} fetch policy has no index URL configured")
    env["PIP_INDEX_URL"] = _with_credentials(index_url, index_secret)
    return ["wheel", "--find-links", wheels, "--wheel-dir"], install, env


def _with_credentials(url: str, secret: str) -> str:
    if not secret:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{secret}@{rest}"


class Setup(RepositoryCheckout):
    def __init__(self, config: dict, workspace: Path, secrets: dict[str, str]):
        self.config = config
        self.workspace = workspace
        self.git_secret = secrets.get(GIT_SECRET_ENV, "")
        self.index_secret = secrets.get(INDEX_SECRET_ENV, "")
        self.secrets = tuple(
            s for v in secrets.values() if v for s in (v, *v.split(":", 1))
        )
        self.timeout = config.get("timeout_seconds") or 600
        self.deadline = time.monotonic() + self.timeout
        self.cache_dir = Path(config["cache_dir"])
        name = config["repository_url"].rstrip("/").rsplit("/", 1)[-1]
        name = name.rsplit(":", 1)[-1].removesuffix(".git") or "repository"
        self.repo = workspace / name

    def say(self, text: str) -> None:
        print(f"setup: {redact(text, self.secrets)}", flush=True)

    def run(
        self,
        argv: list[str],
        *,
        env: dict,
        cwd: Path | None = None,
        watch: Path | None = None,
    ) -> str:
        """``argv``'s standard output. ``SetupFailed`` with its last lines
        when it fails, is missing, passes the setup deadline, or grows
        ``watch`` past the repository size limit."""
        program = "pip" if argv[1:3] == ["-m", "pip"] else Path(argv[0]).name
        if self.deadline <= time.monotonic():
            raise SetupFailed(self.timed_out(f"before {program} could run"))
        try:
            done = run_watched(
                argv,
                env=env,
                cwd=cwd,
                deadline=self.deadline,
                watch=watch,
                limit=self.max_repository_bytes if watch else 0,
            )
        except FileNotFoundError as exc:
            raise SetupFailed(
                f"{program} is not installed in this image; the setup step needs "
                "git and Python (uv optional): use an image that has them"
            ) from exc
        if done.stopped == "size":
            raise SetupFailed(self.too_big(done.size, "while downloading; stopped"))
        if done.stopped == "timeout":
            raise SetupFailed(
                self.timed_out(f"while {program} ran; {program} was stopped"),
                _tail(done),
            )
        if done.returncode != 0:
            raise SetupFailed(f"{program} failed", _tail(done))
        return done.stdout

    def timed_out(self, when: str) -> str:
        return (
            f"the setup step reached its timeout of {self.timeout} s "
            f"(NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS) {when}. A slow git server "
            "or package index, or a very large repository or requirements file, "
            "causes this: ask an admin to check them, or to raise the setting "
            "(it stays below NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS)"
        )

    # --- dependencies ---------------------------------------------------------

    def requirements(self) -> Path | None:
        configured = self.config.get("requirements_path", "")
        names = [configured] if configured else REQUIREMENT_FILES
        for name in names:
            path = (self.repo / name).resolve()
            if not path.is_relative_to(self.repo.resolve()):
                raise SetupFailed(f"{name} is outside the repository")
            if path.is_file():
                return path
        if configured:
            raise SetupFailed(
                f"the requirements file {configured} is not in the repository"
            )
        return None

    def packages(self, path: Path) -> list[str]:
        """The requirements ``path`` names; ``SetupFailed`` for a line that
        would fetch from outside the fetch policy (an index, a URL, a path)."""
        if path.suffix in (".yml", ".yaml"):
            lines = self.environment_requirements(path)
        elif path.suffix == ".toml":
            lines = self.project_requirements(path)
        else:
            lines = [ln.split(" #")[0].strip() for ln in path.read_text().splitlines()]
            lines = [ln for ln in lines if ln and not ln.startswith("#")]
        policy = self.config.get("fetch_policy", "online")
        for number, line in enumerate(lines, 1):
            if _OUTSIDE_POLICY.search(line):
                raise SetupFailed(
                    f"{path.name} entry {number} ({redact(line, self.secrets)}) "
                    f"fetches from outside the project's {policy} fetch policy; "
                    "list package names and versions only"
                )
        return lines

    def project_requirements(self, path: Path) -> list[str]:
        """``[project] dependencies`` of a pyproject.toml (the project itself
        is not installed); a note when there are none to read."""
        try:
            project = tomllib.loads(path.read_text()).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SetupFailed(f"{path.name} is not valid TOML: {exc}") from exc
        dependencies = project.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(
            isinstance(d, str) for d in dependencies
        ):
            raise SetupFailed(
                f"{path.name}: [project] dependencies must be a list of strings"
            )
        if "dependencies" in project.get("dynamic", []) or not dependencies:
            self.say(
                f"{path.name} lists no [project] dependencies to install "
                "(dynamic ones and other tools' tables are not read)"
            )
        return dependencies

    def environment_requirements(self, path: Path) -> list[str]:
        """A conda environment file's requirements for uv (no conda runs
        here): the ``pip:`` section and the conda entries PyPI also has;
        ``SetupFailed`` naming the entries only conda can install."""
        try:
            environment = read_environment(path.read_text())
        except EnvironmentFileError as exc:
            raise SetupFailed(f"{path.name}: {exc}") from exc
        if environment.conda_only:
            raise SetupFailed(
                f"{path.name} needs conda for {', '.join(environment.conda_only)}; "
                "this runtime installs Python packages with uv, without conda: "
                "remove them (or use pip names), or add a requirements.txt"
            )
        if environment.python:
            self.say(f"{path.name}: using the image's Python, not {environment.python}")
        return environment.requirements

    def install(self) -> None:
        path = self.requirements()
        kernel_packages = list(self.config.get("kernel_packages", []))
        packages = self.packages(path) if path else []
        venv = self.workspace / ".venv"
        digest = self.digest(path, kernel_packages)
        marker = venv / HASH_FILE
        if marker.is_file() and marker.read_text() == digest:
            self.say("cache hit: dependencies unchanged, nothing to install")
            return
        marker.unlink(missing_ok=True)
        self.say(f"installing {len(packages) + len(kernel_packages)} packages")
        python = self.make_venv(venv)
        if packages or kernel_packages:
            self.pip_install(python, [*packages, *kernel_packages])
        self.write_kernel_spec(python)
        marker.write_text(digest)
        self.say("dependencies installed")

    def digest(self, path: Path | None, kernel_packages: list[str]) -> str:
        h = hashlib.sha256()
        keys = ("fetch_policy", "index_url", "kernel_name")
        h.update(
            json.dumps([self.config.get(k) for k in keys] + kernel_packages).encode()
        )
        h.update(sys.version.encode())
        if path is not None:
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        return h.hexdigest()

    def uv(self) -> str | None:
        """uv on PATH, or installed next to this Python (a venv's bin)."""
        beside = Path(sys.executable).parent / "uv"
        return shutil.which("uv") or (str(beside) if beside.is_file() else None)

    def base_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workspace),
            "LANG": "C.UTF-8",
        }

    def make_venv(self, venv: Path) -> Path:
        python = venv / "bin" / "python"
        if python.exists():
            return python
        uv = self.uv()
        argv = (
            [
                uv,
                "venv",
                "--quiet",
                "--no-config",
                "--python",
                sys.executable,
                str(venv),
            ]
            if uv
            else [sys.executable, "-m", "venv", str(venv)]
        )
        self.run(argv, env=self.base_env())
        return python

    def pip_install(self, python: Path, packages: list[str]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        source = {
            "policy": self.config.get("fetch_policy", "online"),
            "index_url": self.config.get("index_url", ""),
            "cache_dir": self.cache_dir,
            "index_secret": self.index_secret,
        }
        uv = self.uv()
        if uv is None:
            self.say("installing with pip (this image has no uv)")
            self.pip_wheelhouse_install(python, packages, source)
            return
        self.say("installing with uv")
        args, env = installer_config(**source)
        env = {**self.base_env(), **env}
        if self.config.get("link_mode"):  # the cache is on another volume
            env["UV_LINK_MODE"] = self.config["link_mode"]
        argv = [uv, "pip", "install", "--python", str(python), *args, *packages]
        self.run(argv, env=env, cwd=self.workspace)

    def pip_wheelhouse_install(
        self, python: Path, packages: list[str], source: dict
    ) -> None:
        """``pip_config``'s two steps. Wheels are built into a directory of
        their own, then renamed into the wheelhouse one by one, so another
        workspace's offline install never reads half a wheel."""
        download, install, env = pip_config(**source)
        env = {**self.base_env(), **env}
        pip = [str(python), "-m", "pip"]
        wheelhouse = self.cache_dir / WHEELHOUSE
        wheelhouse.mkdir(exist_ok=True)
        if download is not None:
            with tempfile.TemporaryDirectory(dir=self.cache_dir) as incoming:
                argv = [*pip, *download, incoming, *packages]
                self.run(argv, env=env, cwd=self.workspace)
                for wheel in Path(incoming).glob("*.whl"):
                    os.replace(wheel, wheelhouse / wheel.name)
        self.run([*pip, *install, *packages], env=env, cwd=self.workspace)

    def write_kernel_spec(self, python: Path) -> None:
        """A kernel spec named after the workspace, in the data directory the
        IDE reads (HOME is the workspace), running the workspace's venv."""
        name = self.config.get("kernel_name") or "workspace"
        spec_dir = self.workspace / ".local/share/jupyter/kernels" / name
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [
                str(python),
                "-m",
                "ipykernel_launcher",
                "-f",
                "{connection_file}",
            ],
            "display_name": f"Python ({name})",
            "language": "python",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--secrets-dir", type=Path)
    parser.add_argument("--termination-log", type=Path)
    parser.add_argument("ide", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    secrets = {name: os.environ.pop(name, "") for name in SECRET_ENV}
    if args.secrets_dir:
        secrets.update(read_secret_files(args.secrets_dir))
    setup = Setup(json.loads(args.config.read_text()), args.workspace, secrets)
    try:
        setup.checkout()
        setup.install()
    except SetupFailed as exc:
        report_failure(setup, exc, args.termination_log)
        return EXIT_SETUP_FAILED
    ide = [a for a in args.ide if a != "--"] if args.ide else []
    if ide:  # the secrets were popped: the IDE's environment never has them
        sys.stdout.flush()
        os.execve(ide[0], ide, dict(os.environ))  # noqa: S606
    return 0


def read_secret_files(directory: Path) -> dict[str, str]:
    """The secrets in ``directory``, each file deleted once read where the
    directory allows it (a container's layer; a mounted Secret is
    read-only, and leaves with the init container)."""
    secrets = {}
    for filename, name in SECRET_FILES.items():
        path = directory / filename
        if path.is_file():
            secrets[name] = path.read_text().strip("\n")
            with contextlib.suppress(OSError):
                path.unlink()
    return secrets


def report_failure(setup: Setup, exc: SetupFailed, termination_log: Path | None):
    lines = [f"setup failed: {redact(exc.reason, setup.secrets)}"]
    lines += [f"  | {line}" for line in redact(exc.output, setup.secrets).splitlines()]
    print("\n".join(lines), flush=True)
    if termination_log is not None:  # Kubernetes keeps at most 4096 bytes
        with contextlib.suppress(OSError):
            termination_log.write_text("\n".join(lines)[-4000:])


def _tail(done: Finished, lines: int = 15) -> str:
    return "\n".join((done.stdout + done.stderr).strip().splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
