"""The workspace pages' websocket on the real ASGI app with the Redis
channel layer: own workspaces only, the same row (or detail panel) partial
the page renders, as an htmx out-of-band swap."""

import re

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.middleware.csrf import _unmask_cipher_token

from config.asgi import application
from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.test_console_socket import session_cookie
from workers.services import worker_transition

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]
pytest_plugins = ["tests.integration.workspace_support"]
PATH = "/ws/workspaces/"
CSRF_SECRET = "abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture(autouse=True)
async def _close_consumer_connections():
    yield
    await database_sync_to_async(connections.close_all)()


async def connect(user=None, query: str = "") -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie + b"; csrftoken=" + CSRF_SECRET.encode()))
    socket = WebsocketCommunicator(application, PATH + query, headers=headers)
    connected, _ = await socket.connect(timeout=5)
    return socket, connected


def starting_worker(world, owner, project, name):
    workspace = WorkspaceFactory(project=project, owner=owner, name=name)
    return WorkerFactory(workspace=workspace, status="starting")


async def ready(worker) -> None:
    await database_sync_to_async(worker_transition)(
        worker_id=worker.id,
        expected="starting",
        to="ready",
        actor_type="backend",
        reason="Runtime running and answering",
    )


async def test_a_users_row_changes_live_as_an_oob_swap(world, alice, bob):
    mine = await database_sync_to_async(starting_worker)(
        world, alice, world.personal, "analysis"
    )
    bobs = await database_sync_to_async(starting_worker)(
        world, bob, world.bobs, "bobs-secret"
    )
    socket, connected = await connect(alice)
    assert connected
    await ready(bobs)  # not alice's: nothing arrives
    assert await socket.receive_nothing(timeout=0.5)
    await ready(mine)
    html = await socket.receive_from(timeout=5)
    await socket.disconnect()
    assert html.startswith(f'<tr id="workspace-{mine.workspace_id}"')
    assert 'hx-swap-oob="true"' in html and "state-running" in html
    assert f'href="/w/{mine.workspace_id}/lab"' in html and "bobs-secret" not in html
    # Its forms post like the page's own: a masked token of the CSRF cookie.
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', html).group(1)
    assert len(token) == 64 and _unmask_cipher_token(token) == CSRF_SECRET


async def test_the_detail_page_gets_its_panel_live(world, alice):
    worker = await database_sync_to_async(starting_worker)(
        world, alice, world.personal, "analysis"
    )
    socket, connected = await connect(alice, f"?workspace={worker.workspace_id}")
    assert connected
    await ready(worker)
    html = await socket.receive_from(timeout=5)
    await socket.disconnect()
    assert html.startswith('<div id="workspace-detail" class="detail" hx-swap-oob')
    assert 'id="detail-state">Running' in html and "Timeline" in html


async def test_anonymous_bad_ids_and_other_users_workspaces_are_refused(
    world, alice, bob
):
    bobs = await database_sync_to_async(starting_worker)(
        world, bob, world.bobs, "bobs-secret"
    )
    for user, query in (
        (None, ""),
        (alice, f"?workspace={bobs.workspace_id}"),
        (alice, "?workspace=not-a-uuid"),
    ):
        socket, connected = await connect(user, query)
        assert not connected, (user, query)


async def test_logging_out_closes_the_sessions_workspace_sockets(world, alice):
    """The logout alone (nothing published) closes the socket at once."""
    from django.test import Client

    from tests.integration.console_support import login_cookie
    from workspaces.consumers import SIGNED_OUT

    def logged_in():
        client = Client()
        client.force_login(alice)
        return client

    client = await database_sync_to_async(logged_in)()
    socket = WebsocketCommunicator(
        application,
        PATH,
        headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", login_cookie(client))],
    )
    connected, _ = await socket.connect(timeout=5)
    assert connected
    response = await database_sync_to_async(client.post)("/logout/")
    assert response.status_code == 302
    assert await socket.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": SIGNED_OUT,
    }


async def test_a_deactivated_user_gets_no_more_rows(world, alice):
    from accounts.models import User
    from workspaces.consumers import SIGNED_OUT

    worker = await database_sync_to_async(starting_worker)(
        world, alice, world.personal, "lab"
    )
    socket, connected = await connect(alice)
    assert connected
    await database_sync_to_async(
        lambda: User.objects.filter(pk=alice.pk).update(is_active=False)
    )()
    await ready(worker)
    assert await socket.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": SIGNED_OUT,
    }


async def test_a_client_gone_before_its_update_is_sent_is_not_an_error(monkeypatch):
    """ASGI servers raise an OSError from send() once the client has gone:
    the coalesced push ends quietly instead of failing its task."""
    from types import SimpleNamespace

    from workspaces import consumers

    class Gone(consumers.WorkspacesConsumer):
        async def send(self, text_data=None, bytes_data=None, close=False):
            raise OSError("client disconnected")

    user = SimpleNamespace(pk=1)
    monkeypatch.setattr(consumers, "COALESCE_SECONDS", 0)
    monkeypatch.setattr(consumers, "session_user", lambda key: user)
    monkeypatch.setattr(consumers, "render_update", lambda **kwargs: "<tr></tr>")
    monkeypatch.setattr(consumers, "csrf_token_for", lambda scope: "t")
    socket = Gone()
    socket.scope, socket.session_key, socket.user = {}, "s", user
    socket.pending, socket.flush_task, socket.detail_of = {"w"}, None, None
    await socket._flush_soon()  # raised OSError before
    assert socket.pending == set()
