"""Who may use Admin → Notebook Workers, per persona (README "Who may do what").

Viewing (page, row, detail, socket) needs active staff with
``workers.view_worker``; actions need ``workers.manage_worker`` as well,
read again when the action runs. Superusers hold every permission.
"""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.db import connections
from django.test import Client

from config.asgi import application
from tests.factories import UserFactory, WorkerFactory
from tests.integration.console_support import CONSOLE
from workers.models import WorkerEvent
from workers.realtime import publish_worker_changed

pytestmark = [pytest.mark.needs_postgres]
SOCKET = "/ws/admin/notebook-workers/"
# persona → (may view, may act)
ACCESS = {
    "admin": (True, True),
    "operator": (True, False),
    "clerk": (False, False),  # staff without any permission
    "manager": (False, False),  # IDE_MANAGE is about workspaces, not the console
    "alice": (False, False),
}


@pytest.fixture
def people(personas):
    return {
        "admin": personas.admin,
        "operator": personas.operator,
        "clerk": UserFactory(username="clerk", is_staff=True),
        "manager": personas.manager,
        "alice": personas.alice,
    }


@pytest.fixture
def worker(default_class):
    return WorkerFactory(status="ready", name="perm-ws")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def grant(user, codename: str) -> None:
    perm = Permission.objects.get(content_type__app_label="workers", codename=codename)
    user.user_permissions.add(perm)


def revoke(user, codename: str) -> None:
    perm = Permission.objects.get(content_type__app_label="workers", codename=codename)
    user.user_permissions.remove(perm)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ACCESS)
@pytest.mark.parametrize("path", ["", "{id}/", "{id}/row/"])
def test_viewing_needs_the_view_permission(people, worker, who, path):
    client = client_for(people[who])
    response = client.get(CONSOLE + path.format(id=worker.id))
    may_view, _ = ACCESS[who]
    assert response.status_code == (200 if may_view else 403)
    assert (str(worker.id)[:8] in response.content.decode()) is may_view
    if not may_view:
        assert "Can view worker" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["", "{id}/", "{id}/row/", "{id}/stop/"])
def test_anonymous_users_are_sent_to_log_in(client, worker, path):
    response = client.get(CONSOLE + path.format(id=worker.id))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("who", ACCESS)
def test_acting_needs_the_manage_permission(people, worker, who):
    client = client_for(people[who])
    response = client.post(f"{CONSOLE}{worker.id}/stop/", HTTP_HX_REQUEST="true")
    _, may_act = ACCESS[who]
    worker.refresh_from_db()
    assert response.status_code == (200 if may_act else 403)
    assert (worker.status == "stopping") is may_act
    assert WorkerEvent.objects.filter(worker=worker).exists() is may_act


@pytest.mark.django_db
def test_buttons_show_only_to_those_who_may_act(people, worker):
    stop_form = f'formaction="{worker.id}/stop/"'  # relative to the console
    as_admin = client_for(people["admin"]).get(CONSOLE).content.decode()
    as_operator = client_for(people["operator"]).get(CONSOLE).content.decode()
    assert stop_form in as_admin
    assert 'id="worker-' in as_operator and stop_form not in as_operator


@pytest.mark.django_db
def test_probe_now_is_in_the_panel_for_those_who_may_act(people, worker):
    """The panel beside the health it refreshes, in the console and on the
    panel's own page (a plain form posting back to that page)."""
    probe = f'formaction="{CONSOLE}{worker.id}/probe/"'
    admin, operator = client_for(people["admin"]), client_for(people["operator"])
    assert "/probe/" not in admin.get(CONSOLE).content.decode()
    panel = admin.get(f"{CONSOLE}{worker.id}/", HTTP_HX_REQUEST="true")
    assert probe in panel.content.decode()
    page = admin.get(f"{CONSOLE}{worker.id}/").content.decode()
    assert probe in page and f'name="next" value="{CONSOLE}{worker.id}/"' in page
    assert probe not in operator.get(f"{CONSOLE}{worker.id}/").content.decode()
    response = admin.post(
        f"{CONSOLE}{worker.id}/probe/", {"next": f"{CONSOLE}{worker.id}/"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"{CONSOLE}{worker.id}/"


@pytest.mark.django_db
def test_a_granted_operator_may_act_and_a_revoked_one_may_not(people, worker):
    operator = people["operator"]
    grant(operator, "manage_worker")
    client = client_for(operator)
    assert f"{worker.id}/stop/" in client.get(CONSOLE).content.decode()
    revoke(operator, "manage_worker")  # after the page showed the button
    response = client.post(f"{CONSOLE}{worker.id}/stop/", HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    worker.refresh_from_db()
    assert worker.status == "ready"


@pytest.mark.django_db
def test_the_action_itself_rechecks_the_permission(people, worker):
    """console.actions.run refuses whoever calls it, not only the view."""
    from django.core.exceptions import PermissionDenied

    from console import actions

    with pytest.raises(PermissionDenied):
        actions.run("stop", worker=worker, actor=people["operator"])
    worker.refresh_from_db()
    assert worker.status == "ready"


@pytest.mark.django_db
def test_the_permissions_exist_and_superusers_hold_them(people):
    codenames = set(
        Permission.objects.filter(content_type__app_label="workers").values_list(
            "codename", flat=True
        )
    )
    assert {"view_worker", "manage_worker", "access_server"} <= codenames
    admin = people["admin"]
    assert admin.has_perms(
        ["workers.view_worker", "workers.manage_worker", "workers.access_server"]
    )
    assert not people["operator"].has_perm("workers.access_server")


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["admin", "operator", "clerk"])
def test_links_to_the_console_show_to_viewers_only(people, who):
    client = client_for(people[who])
    admin_index = client.get("/admin/").content.decode()
    nav = client.get("/workspaces/").content.decode()
    may_view, _ = ACCESS[who]
    assert (f'href="{CONSOLE}">Notebook Workers</a>' in admin_index) is may_view
    assert ("Admin → Notebook Workers" in nav) is may_view


# --- The live socket -----------------------------------------------------------


@pytest.fixture
async def _close_consumer_connections():
    yield
    await database_sync_to_async(connections.close_all)()


def session_cookie(user) -> bytes:
    return f"sessionid={client_for(user).cookies['sessionid'].value}".encode()


async def open_socket(user) -> tuple[WebsocketCommunicator, bool]:
    cookie = await database_sync_to_async(session_cookie)(user)
    headers = [(b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]
    socket = WebsocketCommunicator(application, SOCKET, headers=headers)
    connected, _ = await socket.connect(timeout=5)
    return socket, connected


@pytest.mark.parametrize("who", ACCESS)
@pytest.mark.django_db(transaction=True)
@pytest.mark.needs_redis
@pytest.mark.usefixtures("_close_consumer_connections")
async def test_the_socket_admits_viewers_only(people, worker, who):
    socket, connected = await open_socket(people[who])
    may_view, may_act = ACCESS[who]
    try:
        assert connected is may_view
        if not connected:
            return
        await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
        html = await socket.receive_from(timeout=5)
    finally:
        await socket.disconnect()  # ends the consumer, refused or not
    assert f'id="worker-{worker.id}"' in html
    assert (f"{worker.id}/stop/" in html) is may_act


@pytest.mark.django_db(transaction=True)
@pytest.mark.needs_redis
@pytest.mark.usefixtures("_close_consumer_connections")
async def test_a_socket_closes_once_its_view_permission_is_revoked(people, worker):
    operator = people["operator"]
    socket, connected = await open_socket(operator)
    assert connected
    await database_sync_to_async(revoke)(operator, "view_worker")
    await database_sync_to_async(publish_worker_changed)(worker.id, worker.owner_id)
    output = await socket.receive_output(timeout=5)
    await socket.disconnect()
    assert output == {"type": "websocket.close", "code": 4403}
