"""The Redis channel layer exactly as settings configure it, on the real Redis,
under the console's socket: an idle socket outlives the layer's blocking
receive, an error closes the socket and takes its channel out of the groups,
and an exhausted connection pool refuses a handshake with a close code."""

import copy

import pytest
import redis.asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import connections

from console import consumers
from console.consumers import INTERNAL_ERROR, TRY_AGAIN
from tests.factories import WorkerFactory
from tests.integration.console_support import open_console_socket, session_cookie
from workers.realtime import STAFF_GROUP, publish_worker_changed

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]
# Three times the layer's blocking receive (RedisChannelLayer.brpop_timeout).
IDLE_SECONDS = 15


@pytest.fixture(autouse=True)
async def _close_consumer_connections():
    yield
    await database_sync_to_async(connections.close_all)()


def host_config() -> dict:
    return settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]


async def group_members(group: str) -> set[str]:
    """The channels in ``group``: the layer's sorted set, read directly."""
    key = get_channel_layer()._group_key(group)
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    try:
        return {m.decode() for m in await client.zrange(key, 0, -1)}
    finally:
        await client.aclose()


async def console_socket(user):
    cookie = await database_sync_to_async(session_cookie)(user)
    return await open_console_socket(cookie)


async def publish(worker) -> None:
    await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)


async def test_the_layer_reads_longer_than_it_blocks():
    """The host keys reach redis-py's pool, and its read timeout outlasts
    the BZPOPMIN that waits for a process's messages."""
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    pool = layer.connection(0).connection_pool
    assert pool.connection_kwargs["socket_timeout"] == host_config()["socket_timeout"]
    assert host_config()["socket_timeout"] > RedisChannelLayer.brpop_timeout


@pytest.mark.slow
async def test_a_socket_idle_past_the_blocking_receive_gets_the_next_change(
    admin_user, default_class
):
    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    socket, accepted, _ = await console_socket(admin_user)
    assert accepted
    assert await socket.receive_nothing(timeout=IDLE_SECONDS, interval=0.2)
    await publish(worker)
    assert f'id="worker-{worker.id}"' in await socket.receive_from(timeout=5)
    await socket.disconnect()


async def test_an_error_closes_the_socket_and_leaves_no_channel_in_its_groups(
    admin_user, default_class, monkeypatch
):
    def render_fails(**kwargs):
        raise RuntimeError("the template broke")

    monkeypatch.setattr(consumers, "render_rows", render_fails)
    worker = await database_sync_to_async(WorkerFactory)(status="ready")
    before = await group_members(STAFF_GROUP)
    socket, accepted, _ = await console_socket(admin_user)
    joined = await group_members(STAFF_GROUP) - before
    assert accepted and len(joined) == 1
    await publish(worker)
    closed = await socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": INTERNAL_ERROR}
    assert not joined & await group_members(STAFF_GROUP)
    await socket.disconnect()


@pytest.fixture
def tiny_pool(settings):
    """The settings' layer with a pool of two connections."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["max_connections"] = 2
    settings.CHANNEL_LAYERS = layers  # channels drops its cached layer
    yield


async def test_an_exhausted_pool_refuses_the_handshake_with_a_close_code(
    tiny_pool, admin_user, default_class
):
    pool = get_channel_layer().connection(0).connection_pool
    held = [await pool.get_connection() for _ in range(pool.max_connections)]
    try:
        socket, accepted, code = await console_socket(admin_user)
    finally:
        for connection in held:
            await pool.release(connection)
    assert (accepted, code) == (False, TRY_AGAIN)
    await socket.disconnect()
