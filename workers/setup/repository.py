"""The repository half of the setup step: clone when absent, fetch and
check the ref out on a clean tree when present, never destroying local
changes; git confined to https and ssh (file, and plain http to a loopback
server, only where an admin allowed local sources), without prompts, hooks
or user configuration, and in an existing checkout only when its own
``.git/config`` holds nothing that runs a command or sends the credentials
elsewhere; the project's credentials handed to git only for a repository on
a host they are bound to (``git_secret_hosts``: a workspace's URL is its
user's to choose, the hosts are a platform admin's); credentials the server
refuses, or asks for where the project has none for that host, said in
plain words; the size limit watched while git downloads.

A mixin of ``workspace_setup.Setup``, which provides ``config``, ``repo``,
``git_secret``, ``run`` and ``say``. Standard library only: shipped next to
``workspace_setup.py``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

if __package__:
    from .failure import SetupFailed
else:  # run as a file next to its siblings (containers, init containers)
    from failure import SetupFailed

# What git prints when the server (https or ssh) turned the credentials down
# or asked for some the step does not have (prompts are disabled).
_REFUSED = re.compile(
    r"Authentication failed for|could not read (?:Username|Password) for"
    r"|terminal prompts disabled|returned error: 403|Permission denied \(publickey"
)
# The repository configuration an existing checkout may carry into the step.
# Anything else is refused: a checkout's .git/config is the user's to write,
# and keys such as core.fsmonitor, core.sshCommand, filter.*, url.*.insteadOf
# or credential.helper would run commands, or send the project's credentials
# elsewhere, from inside the step that holds them. Allowed: keys that only
# shape output or bookkeeping; remote.* is never used for a network call (the
# step fetches the workspace's URL explicitly); alias.* cannot run either, as
# git ignores an alias named like a built-in and the step runs only built-ins.
_SAFE_CONFIG = re.compile(
    r"^(?:core\.(?:repositoryformatversion|filemode|bare|logallrefupdates"
    r"|ignorecase|precomposeunicode|symlinks|autocrlf|eol|safecrlf|quotepath)"
    r"|extensions\.objectformat"
    r"|remote\..+\.(?:url|pushurl|fetch|push|tagopt|prune)"
    r"|branch\..+\.(?:remote|pushremote|merge|rebase|description)"
    r"|(?:user|author|committer|color|advice|column|help|i18n|init|log|status"
    r"|pull|push|alias|rerere)\..+)$"
)
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Host names as git's transports dial them (RFC 1123, lowercased): anything
# else (percent-escapes, a trailing dot, '_') gets no credentials.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_PORT = re.compile(r"^[0-9]{1,5}$")
_SSH_USER = re.compile(r"^[a-z0-9._][a-z0-9._-]*$")
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22}


class RepositoryCheckout:
    """The checkout methods of ``Setup`` (see the module docstring)."""

    def too_big(self, size: int, when: str) -> str:
        return (
            f"the repository reached {_size(size)} {when}, over the limit of "
            f"{_size(self.max_repository_bytes)} "
            "(NOTEBOOK_RUNTIME_SETUP_MAX_REPOSITORY_BYTES); the workspace's "
            "files were left as they were"
        )

    def git(
        self, *args: str, cwd: Path | None = None, env: dict, watch: Path | None = None
    ) -> str:
        config = ["-c", "protocol.allow=never", "-c", "core.hooksPath=/dev/null"]
        for proto in self.transports():
            config += ["-c", f"protocol.{proto}.allow=always"]
        if "http" in self.transports():
            config += ["-c", "http.followRedirects=false"]
        try:
            return self.run(["git", *config, *args], env=env, cwd=cwd, watch=watch)
        except SetupFailed as exc:
            if _REFUSED.search(exc.output):
                raise SetupFailed(self.refused(), exc.output) from exc
            raise

    def transports(self) -> list[str]:
        """https and ssh; where an admin allowed local sources, also file and
        plain http to a server on this host's loopback (no network between)."""
        if not self.config.get("allow_local_repository"):
            return ["https", "ssh"]
        url = urlsplit(self.config["repository_url"])
        loopback = url.scheme == "http" and url.hostname in _LOOPBACK
        return ["https", "ssh", "file"] + (["http"] if loopback else [])

    @property
    def git_hosts(self) -> list[str]:
        """The hosts the project's git secret is bound to (a platform admin
        sets them with the secret); none when the project has no secret."""
        return list(self.config.get("git_secret_hosts") or ())

    @property
    def git_credentials(self) -> str:
        """The project's git secret when the repository is on one of
        ``git_hosts``, else "": git then runs without credentials."""
        if credentials_allowed(self.config["repository_url"], self.git_hosts):
            return self.git_secret
        return ""

    def refused(self) -> str:
        if self.git_credentials:
            return (
                "the repository refused the credentials (the project's git "
                "secret): ask a project manager to check or replace the deploy "
                "key or token. The workspace's files were left as they were"
            )
        host = repository_host(self.config["repository_url"])
        if self.git_hosts:
            return (
                f"this project's git credentials are only for "
                f"{', '.join(self.git_hosts)}; {host} is not one of them. The "
                "repository asked for credentials: use a repository on one of "
                f"those hosts, or ask a platform admin to bind the credentials "
                f"to {host} too. The workspace's files were left as they were"
            )
        return (
            "the repository asked for credentials and the project has no git "
            f"secret for {host}: ask a project manager to add a deploy key or "
            "token, with the git host it is for. The workspace's files were "
            "left as they were"
        )

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
        secret = self.git_credentials
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
            self.git(
                "clone", "--quiet", "--", url, str(partial), env=env, watch=partial
            )
            self.check_size(partial, env)
            self.switch(partial, ref, env)
        except SetupFailed:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(self.repo)

    def update(self, url: str, ref: str, env: dict) -> None:
        self.check_local_config(env)
        self.say("fetching")
        try:
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
                watch=self.repo / ".git",
            )
        except SetupFailed:
            _remove_partial_packs(self.repo / ".git")
            raise
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

    def check_local_config(self, env: dict) -> None:
        """``SetupFailed`` naming the first key of the checkout's own git
        configuration (includes followed) outside ``_SAFE_CONFIG``."""
        listed = self.git(
            "config", "--list", "--null", "--show-scope", cwd=self.repo, env=env
        )
        fields = listed.split("\0")
        for scope, entry in zip(fields[::2], fields[1::2], strict=False):
            key = entry.split("\n", 1)[0]
            if scope != "command" and not _SAFE_CONFIG.match(key.lower()):
                raise SetupFailed(
                    f"{self.repo.name}/.git/config sets {key}, which the setup step "
                    "does not run next to the project's credentials: remove it "
                    f"(git config --unset {key}) and start again. The "
                    "workspace's files were left as they were"
                )

    @property
    def max_repository_bytes(self) -> int:
        return self.config.get("max_repository_bytes") or 0

    def check_size(self, repo: Path, env: dict) -> None:
        """The limit once more on git's own count: the download watch
        samples, so a burst between two samples is caught here."""
        stats = self.git("count-objects", "-v", cwd=repo, env=env)
        kib = sum(
            int(line.split(":")[1])
            for line in stats.splitlines()
            if line.startswith(("size:", "size-pack:"))
        )
        if self.max_repository_bytes and kib * 1024 > self.max_repository_bytes:
            raise SetupFailed(self.too_big(kib * 1024, "after downloading"))


def host_and_port(text: str) -> tuple[str, int | None] | None:
    """``text`` as ``host`` or ``host:port`` (an IPv6 address in brackets),
    lowercased; None for anything else: a scheme, a user, a path, a port
    out of range."""
    text = text.lower()
    if text.startswith("["):
        address, bracket, port = text[1:].partition("]")
        try:
            host = f"[{ipaddress.IPv6Address(address).compressed}]"
        except ValueError:
            return None
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port[1:] if port else None
    else:
        host, colon, port = text.partition(":")
        if not _HOST_NAME.match(host):
            return None
        port = port if colon else None
    if port is None:
        return host, None
    if not _PORT.match(port) or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def repository_address(url: str) -> tuple[str, int | None, int] | None:
    """Where git connects for ``url``: its host, its port as written (None
    when it names none) and its transport's standard port; for https,
    http, ``ssh://`` and scp-like ``user@host:path`` URLs. None for any
    other URL (``file://``, a local path) and anything unclear (a user on
    http(s), more than one '@', brackets in the scp form, a transport
    helper's ``name::address``)."""
    if "\\" in url or not url.isprintable() or " " in url:
        return None  # parsers disagree on these: no guess
    if "://" in url:
        scheme, _, rest = url.partition("://")
        scheme = scheme.lower()
        authority = rest.split("/", 1)[0]  # a '?' or '#' in it: no host
    else:  # git's scp-like form: a ':' with no '/' before it (not '::')
        scheme, (authority, colon, _) = "ssh", url.partition(":")
        if not colon or "/" in authority or "::" in url or "[" in authority:
            return None
    if scheme not in _DEFAULT_PORTS:
        return None
    user, at, host = authority.lower().rpartition("@")
    if at and (scheme != "ssh" or not _SSH_USER.match(user)):
        return None
    address = host_and_port(host)
    return None if address is None else (*address, _DEFAULT_PORTS[scheme])


def repository_host(url: str) -> str:
    """``url``'s host as the messages name it: ``host`` or ``host:port``."""
    address = repository_address(url)
    if address is None:
        return f"the host of {url}"
    host, port, _ = address
    return f"{host}:{port}" if port is not None else host


def credentials_allowed(url: str, hosts: Iterable[str]) -> bool:
    """Whether git may get a project's credentials for ``url``: its host is
    one of ``hosts`` (``host`` or ``host:port``), compared case-insensitively
    and exactly (no suffix matching). A bound host without a port stands for
    the transport's standard port (443 for https, 22 for ssh); with a port,
    the URL's port (or its transport's standard one) must be that port."""
    address = repository_address(url)
    if address is None:
        return False
    host, port, standard = address
    for entry in hosts:
        bound = host_and_port(entry.strip())
        if bound and bound[0] == host and (bound[1] or standard) == (port or standard):
            return True
    return False


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MiB"
    return f"{size / 1024:.1f} KiB"


def _remove_partial_packs(git_dir: Path) -> None:
    """What a stopped fetch may leave: a partial pack, or a partial loose
    object when git unpacks a small fetch (SIGTERM does not clean those)."""
    objects = git_dir / "objects"
    for leftover in [*objects.glob("pack/tmp_*"), *objects.glob("??/tmp_obj_*")]:
        leftover.unlink(missing_ok=True)
    for leftover in objects.glob("incoming-*"):
        shutil.rmtree(leftover, ignore_errors=True)
