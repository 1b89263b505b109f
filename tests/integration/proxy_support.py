"""Fixtures for the workspace proxy tests: the real ASGI app under uvicorn
in a thread, real JupyterLab runtimes from the local backend, a recording
stand-in runtime, and logged-in session cookies."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import uvicorn
from django.conf import settings
from django.test import Client

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.fakes import TaskRecorder
from tests.integration.test_lifecycle_local import local_backend  # noqa: F401
from workers import states
from workers.services import queueing
from workspaces.services import workspace_start, workspace_stop

TOKEN = "runtime-token-" + "x" * 30
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(app="config.asgi:application") -> Iterator[str]:
    """uvicorn on a free loopback port in a thread of this process, so it
    reads the test database and settings. Yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-proxy", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        _close_server_connections()


def _close_server_connections() -> None:
    """The server's lookup threads keep their database connections (as a
    long-running server should); end them so the test database can go."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def app_url(settings) -> Iterator[str]:
    settings.NOTEBOOK_PROXY_RECHECK_SECONDS = 2
    with serve_app() as url:
        yield url


def session_cookie(user) -> dict[str, str]:
    """Cookies of a logged-in browser session for ``user``."""
    client = Client()
    client.force_login(user, backend=MODEL_BACKEND)
    return {
        settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value
    }


# --- real runtimes -------------------------------------------------------------


@pytest.fixture
def tasks(monkeypatch) -> TaskRecorder:
    recorder = TaskRecorder()
    monkeypatch.setattr(queueing, "_send", recorder)
    return recorder


def start_running(workspace, tasks: TaskRecorder):
    """Start ``workspace`` through the services and run the start task until
    the real runtime answers; returns the ready worker."""
    worker = workspace_start(workspace=workspace, actor=workspace.owner)
    tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.READY, list(worker.events.values_list("reason"))
    return worker


def stop(workspace, tasks: TaskRecorder, worker) -> None:
    workspace_stop(workspace=workspace, actor=workspace.owner)
    tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.STOPPED


# --- a recording stand-in runtime -------------------------------------------------


class Recorder(ThreadingHTTPServer):
    """Answers every request with 200 and a JSON echo, plus the headers in
    ``reply_headers``; keeps what it received in ``received``."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.received: list[dict] = []
        self.reply_headers: list[tuple[str, str]] = []
        self.status = 200

    @property
    def port(self) -> int:
        return self.server_address[1]


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": self.headers.items(),
        }
        self.server.received.append(
            {**seen, "body_length": len(body), "peer": self.client_address}
        )
        reply = json.dumps(seen).encode()
        self.send_response(self.server.status)
        for key, value in self.server.reply_headers:
            self.send_header(key, value)
        if not any(k.lower() == "content-type" for k, _ in self.server.reply_headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def recorded_worker(owner, recorder: Recorder, **fields):
    """A ready worker of a new workspace of ``owner`` whose endpoint is the
    recording stand-in."""
    workspace = WorkspaceFactory(owner=owner, project__personal_owner=owner)
    endpoint = f"http://127.0.0.1:{recorder.port}{workspace.base_url}"
    return WorkerFactory(
        workspace=workspace,
        status=fields.pop("status", states.READY),
        endpoint=endpoint,
        access_token=TOKEN,
        **fields,
    )


def forward_with_platform_secrets(base_url: str, recorder: Recorder, owner):
    """GET ``api/status`` of a recorded worker of ``owner`` through the front
    at ``base_url``, carrying every platform credential and forged
    forwarding headers; returns (prefix, headers the runtime saw)."""
    worker = recorded_worker(owner, recorder)
    prefix = worker.workspace.base_url
    cookies = {**session_cookie(owner), "csrftoken": "platform-csrf", "_xsrf": "lab"}
    response = httpx.get(
        f"{base_url}{prefix}api/status?x=1",
        cookies=cookies,
        headers={
            "Authorization": "Bearer platform-api-token",
            "X-Forwarded-Host": "forged.example",
            "X-Forwarded-Prefix": "/admin",
        },
    )
    assert response.status_code == 200
    assert recorder.received[-1]["path"] == f"{prefix}api/status?x=1"
    everything = repr(recorder.received)
    for secret in ("sessionid", "platform-csrf", "platform-api-token", "forged"):
        assert secret not in everything
    seen = {k.lower(): v for k, v in recorder.received[-1]["headers"]}
    assert seen["authorization"] == f"token {TOKEN}"
    assert seen["cookie"] == "_xsrf=lab"
    assert seen["x-forwarded-prefix"] == prefix.rstrip("/")
    assert seen["x-forwarded-host"] == base_url.removeprefix("http://")
    return prefix, seen
