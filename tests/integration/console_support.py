"""Shared data for the Notebook Workers console tests."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.factories import ProjectFactory, WorkerFactory, WorkspaceFactory
from workers.models import Worker

CONSOLE = "/admin/notebook-workers/"


@dataclass
class Fleet:
    workers: list[Worker]
    alice_project: object
    bob_project: object


def make_fleet(alice, bob) -> Fleet:
    """Twelve workers over every status, two owners, two spaces, three
    backends; two of them stale (one starting, one busy)."""
    long_ago = timezone.now() - timedelta(
        seconds=settings.NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS + 60
    )
    a_ws = WorkspaceFactory(project=ProjectFactory(personal_owner=alice), name="a-ws")
    b_ws = WorkspaceFactory(project=ProjectFactory(personal_owner=bob), name="b-ws")
    specs = [
        (a_ws, "ready", "docker", {}),
        (a_ws, "busy", "docker", {"status_changed_at": long_ago}),
        (a_ws, "starting", "kubernetes", {"status_changed_at": long_ago}),
        (a_ws, "starting", "kubernetes", {}),
        (a_ws, "stopping", "local", {"error_code": "gateway_unreachable"}),
        (a_ws, "stopped", "docker", {}),
        (a_ws, "failed", "kubernetes", {"error_code": "timeout"}),
        (b_ws, "ready", "kubernetes", {}),
        (b_ws, "busy", "local", {"last_activity_at": timezone.now()}),
        (b_ws, "stopped", "local", {}),
        (b_ws, "failed", "docker", {}),
        (b_ws, "failed", "local", {}),
    ]
    workers = [
        WorkerFactory(workspace=ws, status=status, backend=backend, **extra)
        for ws, status, backend, extra in specs
    ]
    return Fleet(workers, a_ws.project, b_ws.project)


# --- The console's websocket (tests/integration/test_console_socket.py) --------
SOCKET = "/ws/admin/notebook-workers/"


def login_cookie(client) -> bytes:
    """The Cookie header of a test client's login session."""
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def session_cookie(user) -> bytes:
    """A new login session for ``user`` (call it through database_sync_to_async)."""
    client = Client()
    client.force_login(user)
    return login_cookie(client)


async def open_console_socket(cookie: bytes | None = None):
    """The console socket on the real ASGI app: (communicator, accepted,
    close code when refused)."""
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    headers = [(b"origin", b"http://127.0.0.1")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    socket = WebsocketCommunicator(application, SOCKET, headers=headers)
    accepted, detail = await socket.connect(timeout=5)
    return socket, accepted, None if accepted else detail
