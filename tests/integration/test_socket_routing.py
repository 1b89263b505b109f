"""Websocket handshakes to paths no app serves: refused cleanly, at most INFO."""

import logging

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from config.asgi import application
from config.routing import NOT_FOUND

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_postgres]
UNKNOWN_PATHS = [
    "/ws/nope/",
    "/ws/admin/notebook-workers",  # the console's path without its slash
    "/ws/",
    "/",
    "/ws/admin/notebook-workers/extra/",
]


@pytest.fixture(autouse=True)
async def _close_consumer_connections():
    yield
    await database_sync_to_async(connections.close_all)()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def handshake(path: str, user=None) -> tuple[bool, object]:
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    socket = WebsocketCommunicator(application, path, headers=headers)
    try:
        return await socket.connect(timeout=5)
    finally:
        await socket.disconnect()


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("who", ["anonymous", "admin"])
async def test_an_unknown_socket_path_is_refused_and_logged_at_most_as_info(
    personas, caplog, path, who
):
    caplog.set_level(logging.DEBUG)
    user = personas.admin if who == "admin" else None
    connected, code = await handshake(path, user)
    assert (connected, code) == (False, NOT_FOUND)
    assert "no route for" in caplog.text
    assert not [r for r in caplog.records if r.levelno > logging.INFO]


async def test_the_console_path_itself_still_connects(personas):
    connected, _ = await handshake("/ws/admin/notebook-workers/", personas.admin)
    assert connected
