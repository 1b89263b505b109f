import pytest
from django.urls import reverse

from tests.factories import WorkerFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_the_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("workspaces:list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_layout_sends_csrf_with_htmx_and_loads_pinned_htmx(client, alice):
    client.force_login(alice)
    html = client.get(reverse("workspaces:list")).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "vendor/htmx/htmx-2.0.11.min.js" in html and "htmx-ext-ws-2.0.4" in html
    assert "Admin → Notebook Workers" not in html  # staff only


def test_staff_see_the_admin_navigation(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("workspaces:list")).content.decode()
    assert reverse("console:console") in html


def test_whitenoise_serves_vendored_htmx(client):
    response = client.get("/static/vendor/htmx/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert b"htmx" in b"".join(response.streaming_content)


def test_users_see_only_their_own_workspaces(client, alice, bob, default_class):
    mine = WorkspaceFactory(project__personal_owner=alice, name="alice-ws")
    WorkspaceFactory(project__personal_owner=bob, name="bob-ws")
    WorkerFactory(
        workspace=mine, status="failed", error_detail="boom <script>x</script>"
    )
    client.force_login(alice)
    html = client.get(reverse("workspaces:list")).content.decode()
    assert "alice-ws" in html and "bob-ws" not in html
    assert "Error" in html and "<script>x</script>" not in html


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_logout_is_post_only(client, alice):
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302


def test_the_idle_warning_banner_shows_before_the_idle_stop(
    client, alice, default_class
):
    from datetime import timedelta

    from django.utils import timezone

    from workers import states

    ws = WorkspaceFactory(project__personal_owner=alice, name="sleepy")
    stop_at = timezone.now() + timedelta(minutes=5)
    WorkerFactory(
        workspace=ws,
        status="ready",
        next_action=states.NEXT_IDLE_STOP,
        next_action_at=stop_at,
    )
    quiet = WorkspaceFactory(project__personal_owner=alice, name="busy-one")
    WorkerFactory(
        workspace=quiet,
        status="ready",
        next_action=states.NEXT_IDLE_STOP,
        next_action_at=timezone.now() + timedelta(minutes=50),
    )
    client.force_login(alice)
    html = client.get(reverse("workspaces:list")).content.decode()
    assert f'id="idle-warning-{ws.id}"' in html
    assert f'id="idle-warning-{quiet.id}"' not in html  # outside the warning window
