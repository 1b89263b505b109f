"""Access server: an admin with ``workers.access_server`` confirms, gets a
grant for that one worker, lands in the user's IDE through the proxy, and
the access is in the worker's timeline for the owner to see."""

import httpx
import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.factories import UserFactory
from tests.integration.proxy_support import MODEL_BACKEND, recorded_worker
from workers import states
from workers.models import WorkerEvent

pytest_plugins = ["tests.integration.proxy_support"]
pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


def staff(*codenames):
    user = UserFactory(username="support", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def logged_in(user) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.5")
    client.force_login(user, backend=MODEL_BACKEND)
    return client


def test_it_confirms_grants_records_and_opens_the_ide(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    support = staff("view_worker", "access_server")
    client = logged_in(support)
    confirm = client.get(f"/w-access/{worker.id}/")
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "runs as alice" in page and "overwrite each other" in page
    assert "tell alice" in page
    assert not WorkerEvent.objects.filter(worker=worker, kind="action").exists()

    opened = client.post(f"/w-access/{worker.id}/")
    assert opened.status_code == 302
    assert opened["Location"] == worker.workspace.open_url
    event = WorkerEvent.objects.get(worker=worker, kind="action", actor=support)
    assert event.actor_type == "admin"
    assert "support" in event.reason and "127.0.0.5" in event.reason

    cookies = {"sessionid": client.cookies["sessionid"].value}
    through = httpx.get(
        f"{app_url}{worker.workspace.base_url}api/status", cookies=cookies
    )
    assert through.status_code == 200
    assert dict(recorder.received[-1]["headers"])["authorization"].startswith("token ")


def test_the_console_row_offers_access_server_for_a_running_worker(recorder, alice):
    worker = recorded_worker(alice, recorder)
    client = logged_in(staff("view_worker", "access_server"))
    page = client.get("/admin/notebook-workers/").content.decode()
    assert f'href="/w-access/{worker.id}/"' in page and "Access server" in page


def test_the_row_has_no_access_server_link_without_the_permission(recorder, alice):
    worker = recorded_worker(alice, recorder)
    client = logged_in(staff("view_worker", "manage_worker"))
    page = client.get("/admin/notebook-workers/").content.decode()
    assert f'id="worker-{worker.id}"' in page
    assert "/w-access/" not in page and "Access server" not in page


def test_it_refuses_staff_without_the_permission(recorder, alice):
    worker = recorded_worker(alice, recorder)
    client = logged_in(staff("view_worker"))
    assert client.get(f"/w-access/{worker.id}/").status_code == 403
    assert client.post(f"/w-access/{worker.id}/").status_code == 403
    assert not WorkerEvent.objects.filter(worker=worker, kind="action").exists()


def test_a_stopped_worker_has_no_server_to_access(recorder, alice):
    worker = recorded_worker(alice, recorder, status=states.STOPPED)
    client = logged_in(staff("view_worker", "access_server"))
    assert client.post(f"/w-access/{worker.id}/").status_code == 409
    assert not WorkerEvent.objects.filter(worker=worker, kind="action").exists()


def test_a_grant_does_not_outlive_the_permission(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    support = staff("view_worker", "access_server")
    client = logged_in(support)
    client.post(f"/w-access/{worker.id}/")
    cookies = {"sessionid": client.cookies["sessionid"].value}
    url = f"{app_url}{worker.workspace.base_url}api/status"
    assert httpx.get(url, cookies=cookies).status_code == 200
    support.user_permissions.clear()
    assert httpx.get(url, cookies=cookies).status_code == 404
