"""The workspace setup step: check out the repository, install its
dependencies into ``<workspace>/.venv``, register that environment as a
Jupyter kernel, then (optionally) exec the IDE.

Standard library only, so the same file runs on the control plane's host
(local backend), in a container before the IDE (docker) or as an init
container (kubernetes)::

    python workspace_setup.py --config setup.json --workspace DIR [-- IDE ARGV]
    python -m workers.setup.workspace_setup ...

Contract:
- Progress goes to stdout as ``setup: <text>`` lines; a failure ends with a
  ``setup failed: <reason>`` line followed by the failing command's last
  lines, and exit status ``EXIT_SETUP_FAILED``. Every line is redacted.
- Secrets come from ``SECRET_ENV`` only (never argv or the config file) and
  are removed from the environment before the IDE is exec'd.
- Local changes are never destroyed: a dirty tree, or local commits the
  remote does not have, keep the checkout as it is ("kept your local
  changes"). A failed clone leaves no directory behind.
- A hash of the requirement file, the fetch policy and the kernel packages
  is written last; the same hash next time skips the install entirely.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

EXIT_SETUP_FAILED = 86
GIT_SECRET_ENV = "NOTEBOOK_FLEET_SETUP_GIT_SECRET"  # noqa: S105 - a name
INDEX_SECRET_ENV = "NOTEBOOK_FLEET_SETUP_INDEX_SECRET"  # noqa: S105
SECRET_ENV = (GIT_SECRET_ENV, INDEX_SECRET_ENV)
REQUIREMENT_FILES = ("requirements.txt", "pyproject.toml", "environment.yml")
HASH_FILE = ".notebook-fleet-requirements.sha256"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^\s/@]{1,256}@")
# requirements.txt lines that fetch from somewhere of their own choosing.
_OUTSIDE_POLICY = re.compile(
    r"^\s*(?:-i\b|--index-url|--extra-index-url|-f\b|--find-links|--trusted-host"
    r"|-e\b|--editable|-r\b|--requirement|-c\b|--constraint)|://| @ "
)


class SetupFailed(Exception):
    def __init__(self, reason: str, output: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.output = output


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return _USERINFO.sub(r"\1[REDACTED]@", text)


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


def _with_credentials(url: str, secret: str) -> str:
    if not secret:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{secret}@{rest}"


class Setup:
    def __init__(self, config: dict, workspace: Path, secrets: dict[str, str]):
        self.config = config
        self.workspace = workspace
        self.git_secret = secrets.get(GIT_SECRET_ENV, "")
        self.index_secret = secrets.get(INDEX_SECRET_ENV, "")
        self.secrets = tuple(
            s for v in secrets.values() if v for s in (v, *v.split(":", 1))
        )
        timeout = config.get("timeout_seconds") or 600
        self.deadline = time.monotonic() + timeout
        self.cache_dir = Path(config["cache_dir"])
        name = config["repository_url"].rstrip("/").rsplit("/", 1)[-1]
        name = name.rsplit(":", 1)[-1].removesuffix(".git") or "repository"
        self.repo = workspace / name

    def say(self, text: str) -> None:
        print(f"setup: {redact(text, self.secrets)}", flush=True)

    def run(self, argv: list[str], *, env: dict, cwd: Path | None = None) -> str:
        """``argv``'s output; ``SetupFailed`` with its last lines on failure
        or when the setup deadline passes."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SetupFailed("the setup timeout was reached")
        try:
            done = subprocess.run(  # noqa: S603 - argv list, no shell
                argv,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=remaining,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SetupFailed(f"{Path(argv[0]).name} hit the setup timeout") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise SetupFailed(f"{Path(argv[0]).name} failed", "\n".join(output))
        return done.stdout

    # --- repository ---------------------------------------------------------

    def git(self, *args: str, cwd: Path | None = None, env: dict) -> str:
        allowed = ["https", "ssh"] + (
            ["file"] if self.config.get("allow_local_repository") else []
        )
        config = ["-c", "protocol.allow=never", "-c", "core.hooksPath=/dev/null"]
        for proto in allowed:
            config += ["-c", f"protocol.{proto}.allow=always"]
        return self.run(["git", *config, *args], env=env, cwd=cwd)

    def git_env(self, scratch: Path) -> dict[str, str]:
        """Git's environment: no prompts, no user or system config, and the
        credentials through GIT_ASKPASS or an ssh key file in ``scratch``."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "LANG": "C.UTF-8",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        }
        secret = self.git_secret
        if secret.startswith("-----BEGIN"):
            key = scratch / "key"
            key.write_text(secret.strip() + "\n")
            key.chmod(0o600)
            env["GIT_SSH_COMMAND"] += f" -o IdentitiesOnly=yes -i {key}"
        elif secret:
            user, _, password = secret.rpartition(":")
            askpass = scratch / "askpass"
            askpass.write_text(
                '#!/bin/sh\ncase "$1" in Username*) echo "$NF_GIT_USER";;'
                ' *) echo "$NF_GIT_PASSWORD";; esac\n'
            )
            askpass.chmod(0o700)
            env.update(
                GIT_ASKPASS=str(askpass),
                NF_GIT_USER=user or "x-access-token",
                NF_GIT_PASSWORD=password,
            )
        return env

    def checkout(self) -> None:
        url, ref = self.config["repository_url"], self.config.get("repository_ref", "")
        with tempfile.TemporaryDirectory(prefix="nf-git-") as scratch:
            env = self.git_env(Path(scratch))
            if (self.repo / ".git").is_dir():
                self.update(url, ref, env)
            else:
                self.clone(url, ref, env)
            head = self.git("rev-parse", "HEAD", cwd=self.repo, env=env).strip()
        self.say(f"checked out {head} of {url}")

    def clone(self, url: str, ref: str, env: dict) -> None:
        if self.repo.exists():
            raise SetupFailed(
                f"{self.repo.name} exists in the workspace and is not a git "
                "checkout; rename it so the repository can be cloned"
            )
        self.say(f"cloning {url}")
        partial = self.repo.with_name(f".{self.repo.name}.cloning")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            self.git("clone", "--quiet", "--", url, str(partial), env=env)
            self.check_size(partial, env)
            self.switch(partial, ref, env)
        except SetupFailed:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(self.repo)

    def update(self, url: str, ref: str, env: dict) -> None:
        self.say("fetching")
        self.git(
            "fetch",
            "--quiet",
            "--prune",
            "--",
            url,
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
            cwd=self.repo,
            env=env,
        )
        self.check_size(self.repo, env)
        if self.git("status", "--porcelain", cwd=self.repo, env=env).strip():
            self.say(
                f"kept your local changes; not updated to {ref or 'the default branch'}"
            )
            return
        self.switch(self.repo, ref, env)

    def switch(self, repo: Path, ref: str, env: dict) -> None:
        """Check out ``ref`` on a clean tree: a remote branch as a local
        tracking branch, fast-forward only; a tag or commit detached."""
        ref = ref or self._default_branch(repo, env)
        remote = f"refs/remotes/origin/{ref}"
        if not self._exists(repo, remote, env):
            self.git(
                "checkout",
                "--quiet",
                "--detach",
                f"{ref}^{{commit}}",
                "--",
                cwd=repo,
                env=env,
            )
            return
        if self._exists(repo, f"refs/heads/{ref}", env):
            self.git("checkout", "--quiet", ref, "--", cwd=repo, env=env)
            try:
                self.git("merge", "--ff-only", "--quiet", remote, cwd=repo, env=env)
            except SetupFailed:
                self.say(f"kept your local changes; not updated to {ref}")
        else:
            self.git(
                "checkout",
                "--quiet",
                "-b",
                ref,
                "--track",
                remote,
                "--",
                cwd=repo,
                env=env,
            )

    def _exists(self, repo: Path, name: str, env: dict) -> bool:
        try:
            self.git("rev-parse", "--verify", "--quiet", name, cwd=repo, env=env)
        except SetupFailed:
            return False
        return True

    def _default_branch(self, repo: Path, env: dict) -> str:
        head = self.git(
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
            cwd=repo,
            env=env,
        )
        return head.strip().removeprefix("origin/")

    def check_size(self, repo: Path, env: dict) -> None:
        limit = self.config.get("max_repository_bytes") or 0
        stats = self.git("count-objects", "-v", cwd=repo, env=env)
        kib = sum(
            int(line.split(":")[1])
            for line in stats.splitlines()
            if line.startswith(("size:", "size-pack:"))
        )
        if limit and kib * 1024 > limit:
            raise SetupFailed(
                f"the repository is {kib // 1024} MiB, over the limit of "
                f"{limit // 1024 // 1024} MiB (NOTEBOOK_RUNTIME_SETUP_MAX_REPOSITORY_BYTES)"
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
        if path.name == "environment.yml" or path.suffix in (".yml", ".yaml"):
            raise SetupFailed(
                f"{path.name} needs conda or micromamba, which this runtime does "
                "not run; add a requirements.txt or set the requirements path"
            )
        if path.suffix == ".toml":
            project = tomllib.loads(path.read_text()).get("project", {})
            lines = list(project.get("dependencies", []))
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
        return shutil.which("uv")

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
        policy = self.config.get("fetch_policy", "online")
        cache = self.cache_dir
        cache.mkdir(parents=True, exist_ok=True)
        args, env = installer_config(
            policy=policy,
            index_url=self.config.get("index_url", ""),
            cache_dir=cache,
            index_secret=self.index_secret,
        )
        env = {**self.base_env(), **env}
        uv = self.uv()
        if uv:
            argv = [uv, "pip", "install", "--python", str(python), *args, *packages]
        else:  # pip: the same policy in pip's words
            argv = [
                str(python),
                "-m",
                "pip",
                "install",
                "--cache-dir",
                str(cache / "pip"),
            ]
            argv += ["--no-index"] if policy == "offline" else []
            env["PIP_INDEX_URL"] = env.pop("UV_DEFAULT_INDEX", "")
            env["PIP_CONFIG_FILE"] = os.devnull
            argv += packages
        self.run(argv, env=env, cwd=self.workspace)

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
    parser.add_argument("ide", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    secrets = {name: os.environ.pop(name, "") for name in SECRET_ENV}
    setup = Setup(json.loads(args.config.read_text()), args.workspace, secrets)
    try:
        setup.checkout()
        setup.install()
    except SetupFailed as exc:
        print(f"setup failed: {redact(exc.reason, setup.secrets)}", flush=True)
        for line in redact(exc.output, setup.secrets).splitlines():
            print(f"  | {line}", flush=True)
        return EXIT_SETUP_FAILED
    ide = [a for a in args.ide if a != "--"] if args.ide else []
    if ide:  # the secrets were popped: the IDE's environment never has them
        sys.stdout.flush()
        os.execve(ide[0], ide, dict(os.environ))  # noqa: S606
    return 0


if __name__ == "__main__":
    sys.exit(main())
