"""Real parts for the setup step's tests: a git repository made with the git
CLI, tiny wheels written in the wheel format, and a simple index (PEP 503)
served over HTTP on 127.0.0.1 that records every request."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(  # noqa: S603
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


class Remote:
    """A bare repository (the remote, as ``file://`` URL) and a work clone
    the test commits through."""

    def __init__(self, root: Path):
        self.bare = root / "remote.git"
        self.work = root / "author"
        git("init", "--quiet", "--bare", "-b", "main", str(self.bare), cwd=root)
        git("clone", "--quiet", str(self.bare), str(self.work), cwd=root)
        git("checkout", "--quiet", "-b", "main", cwd=self.work)

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str], *, branch: str = "main") -> str:
        if git("branch", "--list", branch, cwd=self.work):
            git("checkout", "--quiet", branch, cwd=self.work)
        else:
            git("checkout", "--quiet", "-b", branch, cwd=self.work)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", f"update {sorted(files)}", cwd=self.work)
        git("push", "--quiet", "origin", branch, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def make_wheel(directory: Path, name: str, version: str = "1.0") -> Path:
    """A pure-Python wheel whose module ``name`` has ``VERSION``."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{path},sha256={digest.rstrip(b'=').decode()},{len(text)}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def _normal(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


class PackageIndex:
    """A PEP 503 simple index of the wheels in ``directory`` on loopback.
    ``requests`` lists every path asked for; ``auth`` seen as sent. With
    ``delay`` set, every answer waits that long (or until the index closes):
    a slow index."""

    def __init__(self, directory: Path, *, extra: tuple[Path, ...] = ()):
        self.directory = directory
        self.directories = (directory, *extra)
        self.requests: list[str] = []
        self.authorizations: list[str] = []
        self.delay = 0.0
        self.closing = threading.Event()
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self, head: bool = False):  # noqa: N802
                index.requests.append(self.path)
                index.authorizations.append(self.headers.get("Authorization", ""))
                index.closing.wait(index.delay)
                body, kind = index.answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                # As PyPI answers: index pages for 10 minutes, files forever.
                immutable = kind == "application/zip"
                self.send_header(
                    "Cache-Control",
                    "max-age=31536000, immutable" if immutable else "max-age=600",
                )
                self.send_header("Content-Length", str(len(body or b"not found")))
                self.end_headers()
                if not head:
                    self.wfile.write(body or b"not found")

            def do_HEAD(self):  # noqa: N802
                self.do_GET(head=True)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/simple"

    def answer(self, path: str) -> tuple[bytes | None, str]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:1] == ["files"] and len(parts) == 2:
            found = [d / parts[1] for d in self.directories if (d / parts[1]).is_file()]
            return (found[0].read_bytes() if found else None), "application/zip"
        if parts[:1] == ["simple"] and len(parts) == 2:
            wheels = [
                w
                for d in self.directories
                for w in sorted(d.glob(f"[{parts[1][:1]}{parts[1][:1].upper()}]*.whl"))
                if _normal(w.name.split("-")[0]) == parts[1]
            ]
            if not wheels:
                return None, "text/html"
            links = "".join(
                f'<a href="/files/{w.name}#sha256='
                f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{w.name}</a>\n'
                for w in wheels
            )
            return f"<html><body>{links}</body></html>".encode(), "text/html"
        return None, "text/html"

    def __enter__(self) -> PackageIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def alpha_beta_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """A package index on loopback serving two small wheels, alpha and beta:
    the requirements most setup tests install."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "alpha")
    make_wheel(wheels, "beta")
    with PackageIndex(wheels) as index:
        yield index


class GitHttpServer:
    """Git's smart HTTP protocol on loopback: ``git http-backend`` run as a
    CGI program for the bare repositories under ``root``, behind HTTP basic
    auth. A request without the right ``Authorization`` gets 401 and a
    ``WWW-Authenticate`` challenge, as a forge answers a private repository.
    ``authorizations`` lists the header of every request, as sent."""

    def __init__(self, root: Path, *, username: str, password: str):
        self.root = root
        self.expected = (
            "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        )
        self.authorizations: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.handle(self)

            def do_POST(self):  # noqa: N802
                server.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: what a project's git secret is bound to."""
        return f"127.0.0.1:{self.server.server_port}"

    def url(self, bare: Path) -> str:
        name = bare.relative_to(self.root)
        return f"http://{self.host}/{name}"

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        authorization = request.headers.get("Authorization", "")
        self.authorizations.append(authorization)
        if authorization != self.expected:
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="git"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        status, headers, body = self.backend(request)
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def backend(self, request) -> tuple[int, list[tuple[str, str]], bytes]:
        path, _, query = request.path.partition("?")
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "REQUEST_METHOD": request.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
            "REMOTE_USER": "git",
            "REMOTE_ADDR": "127.0.0.1",
        }
        out = subprocess.run(  # noqa: S603
            ["git", "http-backend"],
            env=env,
            input=body,
            capture_output=True,
            check=True,
        ).stdout
        head, _, body = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        return status, headers, body

    def __enter__(self) -> GitHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
