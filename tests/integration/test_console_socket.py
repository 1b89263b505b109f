"""The console's websocket on the real ASGI app with the Redis channel layer:
staff only, re-rendered rows as htmx out-of-band swaps, bursts coalesced, and
closed when its login session ends or its user may no longer see rows."""

import asyncio

import channels.consumer
import pytest
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client

from accounts.models import User
from console import consumers
from console.consumers import REFUSED, SIGNED_OUT
from tests.factories import WorkerFactory
from tests.integration.console_support import (
    login_cookie,
    open_console_socket,
    session_cookie,
)
from workers.realtime import publish_worker_changed
from workers.services import worker_transition

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]


@pytest.fixture(autouse=True)
async def _close_consumer_connections():
    """The consumer's reads leave a connection open in asgiref's sync
    thread; close it there so the test database can be dropped."""
    yield
    await database_sync_to_async(connections.close_all)()


async def connect(user=None):
    cookie = None
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
    socket, connected, _ = await open_console_socket(cookie)
    return socket, connected


async def fail(worker) -> None:
    await database_sync_to_async(worker_transition)(
        worker_id=worker.id,
        expected=worker.status,
        to="failed",
        actor_type="system",
        reason="test",
        fields={"error_code": "timeout"},
    )


async def test_staff_see_a_committed_status_change_as_an_oob_row(
    admin_user, default_class
):
    worker = await database_sync_to_async(WorkerFactory)(
        status="starting", name="<b>bold</b>"
    )
    socket, connected = await connect(admin_user)
    assert connected
    await fail(worker)  # the real transition path publishes on commit
    html = await socket.receive_from(timeout=5)
    await socket.disconnect()
    assert html.startswith(f'<tr id="worker-{worker.id}"')
    assert 'hx-swap-oob="true"' in html and "badge status-failed" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html


async def test_a_burst_goes_out_as_one_message(admin_user, default_class, monkeypatch):
    # A coalescing window wide enough that three publishes (each a thread
    # hop, slow on a loaded machine) always land in it: the test is about the
    # coalescing, not about how fast three publishes are.
    monkeypatch.setattr(consumers, "COALESCE_SECONDS", 1.0)
    first, second = [
        await database_sync_to_async(WorkerFactory)(status="ready") for _ in range(2)
    ]
    socket, _ = await connect(admin_user)
    for worker in (first, second, first):
        await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
    html = await socket.receive_from(timeout=5)
    assert html.count("<tr ") == 2
    assert f'id="worker-{first.id}"' in html and f'id="worker-{second.id}"' in html
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_a_change_costs_one_read_whatever_the_number_of_sockets(
    admin_user, default_class, monkeypatch
):
    """Ten sockets of two login sessions in one process: one hop to the
    database thread, in it one re-check per session and one render. A hop
    or a read per socket took seconds per change at 1,000 sockets
    (bench/ws_latency_bench.py)."""
    calls: list[str] = []

    def counted(name, real):
        def call(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        return call

    async def hop_to_close_connections() -> None:
        calls.append("hop")  # channels' dispatch does this per message

    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    sockets = []
    for _ in range(2):
        cookie = await database_sync_to_async(session_cookie)(admin_user)
        for _ in range(5):
            socket, accepted, _ = await open_console_socket(cookie)
            assert accepted
            sockets.append(socket)
    for name in ("console_standing", "render_rows"):
        monkeypatch.setattr(consumers, name, counted(name, getattr(consumers, name)))
    monkeypatch.setattr(
        consumers, "database_sync_to_async", counted("hop", database_sync_to_async)
    )
    monkeypatch.setattr(
        channels.consumer, "aclose_old_connections", hop_to_close_connections
    )
    # A plain thread: no database_sync_to_async hop of the test's own.
    await asyncio.to_thread(publish_worker_changed, worker.id, worker.owner_id)
    for socket in sockets:
        assert f'id="worker-{worker.id}"' in await socket.receive_from(timeout=5)
    assert sorted(calls) == [
        "console_standing",
        "console_standing",
        "hop",
        "render_rows",
    ]
    for socket in sockets:
        await socket.disconnect()


@pytest.mark.parametrize("who", ["anonymous", "alice"])
async def test_non_staff_sockets_are_refused(personas, default_class, who):
    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    socket, connected = await connect(None if who == "anonymous" else personas.alice)
    assert not connected
    await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
    await asyncio.sleep(0.2)
    assert await socket.receive_nothing(timeout=0.2)


def logged_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def test_logging_out_closes_that_sessions_sockets_at_once(
    admin_user, default_class
):
    """Nothing is published: the logout alone closes the socket, and only
    the sockets of that session (the same user's other browser stays)."""
    client = await database_sync_to_async(logged_in_client)(admin_user)
    socket, accepted, _ = await open_console_socket(login_cookie(client))
    other, other_accepted, _ = await open_console_socket(
        await database_sync_to_async(session_cookie)(admin_user)
    )
    assert accepted and other_accepted
    response = await database_sync_to_async(client.post)("/logout/")
    assert response.status_code == 302
    assert await socket.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": SIGNED_OUT,
    }
    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
    assert f'id="worker-{worker.id}"' in await other.receive_from(timeout=5)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
    await other.disconnect()


def deactivate(user) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def end_sessions(user) -> None:
    """The session is gone without a logout signal (expired, cleared)."""
    Session.objects.all().delete()


def remove_staff(user) -> None:
    User.objects.filter(pk=user.pk).update(is_staff=False)


@pytest.mark.parametrize(
    ("change", "code"),
    [(deactivate, SIGNED_OUT), (end_sessions, SIGNED_OUT), (remove_staff, REFUSED)],
)
async def test_the_next_push_rechecks_the_session_and_the_user(
    admin_user, default_class, change, code
):
    """Within seconds of opening, not after a revalidation period: the user
    and session are read again before every push."""
    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    socket, connected = await connect(admin_user)
    assert connected
    await database_sync_to_async(change)(admin_user)
    await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
    assert await socket.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": code,
    }
    await socket.disconnect()


async def test_a_client_gone_mid_push_ends_its_socket_quietly(monkeypatch, caplog):
    """ASGI servers raise an OSError from send() once the client has gone;
    the other sockets still get their rows and nothing is logged as an
    error."""
    sent = []

    class Socket(consumers.WorkersConsoleConsumer):
        def __init__(self, gone: bool):
            super().__init__()
            self.session_key, self.gone = "s", gone

        def outcome(self, batch):
            return "<tr></tr>"

        async def send(self, text_data=None, bytes_data=None, close=False):
            if self.gone:
                raise OSError("client disconnected")
            sent.append(text_data)

    monkeypatch.setattr(consumers, "read_batch", lambda batch: None)
    gone, staying = Socket(gone=True), Socket(gone=False)
    await consumers.push([gone, staying], frozenset({"w"}))
    assert sent == ["<tr></tr>"]
    assert gone.closed and not staying.closed
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
