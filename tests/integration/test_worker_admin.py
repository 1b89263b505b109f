import pytest
from django.urls import reverse

from tests.factories import WorkerFactory

pytestmark = pytest.mark.django_db


def test_worker_events_are_append_only_in_the_admin(client, admin_user, default_class):
    worker = WorkerFactory()
    event = worker.events.create(kind="action", actor_type="admin", reason="checked")
    client.force_login(admin_user)
    assert client.get(reverse("admin:workers_workerevent_add")).status_code == 403
    change = client.post(
        reverse("admin:workers_workerevent_change", args=[event.pk]),
        {"reason": "edited"},
    )
    assert change.status_code == 403
    event.refresh_from_db()
    assert event.reason == "checked"


def test_the_worker_admin_never_shows_the_access_token(
    client, admin_user, default_class
):
    worker = WorkerFactory(access_token="tok-very-secret-123")
    client.force_login(admin_user)
    html = client.get(reverse("admin:workers_worker_change", args=[worker.pk])).content
    assert b"tok-very-secret-123" not in html
    assert reverse("console:console").encode() in html


def test_the_admin_index_links_the_console_and_reads_well(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Notebook Workers" in html and reverse("console:console") in html
    assert "Resource classes" in html and "classs" not in html
