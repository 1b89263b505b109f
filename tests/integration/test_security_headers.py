"""Response headers: Content-Security-Policy (django-csp), Permissions-Policy
(django-permissions-policy) and ``Cache-Control: no-store`` on private pages."""

import pytest
from django.test import Client

from tests.factories import WorkerFactory
from tests.integration.console_support import CONSOLE

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.fixture
def worker(default_class):
    return WorkerFactory(status="ready")


@pytest.fixture
def as_admin(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def as_alice(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_the_login_page_has_the_policies(client):
    response = client.get("/login/")
    csp = directives(response)
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in v for values in csp.values() for v in values)
    policy = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "usb", "payment"):
        assert f"{feature}=()" in policy
    assert "no-store" in response["Cache-Control"]  # LoginView's own never_cache


@pytest.mark.parametrize("secure, origin", [(False, "ws://"), (True, "wss://")])
def test_the_console_may_open_its_websocket(as_admin, secure, origin):
    response = as_admin.get(CONSOLE, secure=secure)
    assert response.status_code == 200
    assert directives(response)["connect-src"] == ["'self'", f"{origin}testserver"]


@pytest.mark.parametrize("path", ["", "{id}/", "{id}/row/"])
def test_console_pages_are_never_stored(as_admin, worker, path):
    response = as_admin.get(CONSOLE + path.format(id=worker.id))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "Content-Security-Policy" in response and "Permissions-Policy" in response


@pytest.mark.parametrize("path", ["/workspaces/", "/account/tokens/"])
def test_user_pages_are_never_stored(as_alice, path):
    response = as_alice.get(path)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "Content-Security-Policy" in response and "Permissions-Policy" in response


def test_the_admin_is_never_stored(as_admin):
    response = as_admin.get("/admin/workers/worker/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_static_files_keep_their_caching(as_alice):
    response = as_alice.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_anonymous_public_responses_are_left_alone(client):
    response = client.get("/healthz")
    assert "no-store" not in response.get("Cache-Control", "")
