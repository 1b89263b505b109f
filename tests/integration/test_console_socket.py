"""The console's websocket on the real ASGI app with the Redis channel layer:
staff only, re-rendered rows as htmx out-of-band swaps, bursts coalesced."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from config.asgi import application
from tests.factories import WorkerFactory
from workers.realtime import publish_worker_changed
from workers.services import worker_transition

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]
PATH = "/ws/admin/notebook-workers/"


@pytest.fixture(autouse=True)
async def _close_consumer_connections():
    """The consumer's reads leave a connection open in asgiref's sync
    thread; close it there so the test database can be dropped."""
    yield
    await database_sync_to_async(connections.close_all)()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(user=None) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie))
    socket = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await socket.connect(timeout=5)
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


async def test_a_burst_goes_out_as_one_message(admin_user, default_class):
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


@pytest.mark.parametrize("who", ["anonymous", "alice"])
async def test_non_staff_sockets_are_refused(personas, default_class, who):
    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    socket, connected = await connect(None if who == "anonymous" else personas.alice)
    assert not connected
    await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
    await asyncio.sleep(0.2)
    assert await socket.receive_nothing(timeout=0.2)
