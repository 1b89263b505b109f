"""Login throttling (django-axes): a username+address pair is locked after
``AXES_FAILURE_LIMIT`` failures for the cool-off, with the reason on the
login page. Runs on SQLite and PostgreSQL alike (no service marker)."""

from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
LOCKED = "Too many failed logins for this account from your address; try again in 15 minutes."
OTHER_ADDRESS = "::1"  # loopback, but not the test client's 127.0.0.1


@pytest.fixture
def carol():
    return UserFactory(username="carol")


def log_in(client: Client, username: str, password: str, path: str = ""):
    return client.post(
        path or reverse("login"),
        {"username": username, "password": password, "next": "/workspaces/"},
    )


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def fail_many(client: Client, username: str, times: int = 30) -> None:
    for _ in range(times):
        log_in(client, username, "wrong-password")


def test_the_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_thirty_wrong_passwords_lock_out_the_right_one(client, carol):
    fail_many(client, "carol")
    response = log_in(client, "carol", PASSWORD)
    assert response.status_code == 429
    html = response.content.decode()
    assert LOCKED in html
    assert 'name="password"' in html  # the login page, not a bare error
    assert 'value="carol"' in html and 'value="/workspaces/"' in html
    assert not signed_in(client)


def test_the_lock_starts_at_the_limit(client, carol):
    fail_many(client, "carol", times=settings.AXES_FAILURE_LIMIT - 1)
    below = log_in(client, "carol", PASSWORD)
    assert below.status_code == 302 and signed_in(client)

    fresh = Client()
    fail_many(fresh, "carol", times=settings.AXES_FAILURE_LIMIT - 1)
    reached = log_in(fresh, "carol", "wrong-password")
    assert reached.status_code == 429 and LOCKED in reached.content.decode()


def test_other_users_and_other_addresses_are_unaffected(client, carol, alice):
    fail_many(client, "carol")
    assert log_in(client, "carol", PASSWORD).status_code == 429

    same_address = Client()
    assert log_in(same_address, "alice", PASSWORD).status_code == 302
    assert signed_in(same_address)

    other_address = Client(REMOTE_ADDR=OTHER_ADDRESS)
    assert log_in(other_address, "carol", PASSWORD).status_code == 302
    assert signed_in(other_address)


def test_the_right_password_works_after_the_cool_off(client, carol):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fail_many(client, "carol")
        assert log_in(client, "carol", PASSWORD).status_code == 429
        clock.shift(settings.AXES_COOLOFF_TIME - timedelta(seconds=30))
        assert log_in(client, "carol", PASSWORD).status_code == 429
        # That attempt, during the lockout, started the cool-off again.
        clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
        response = log_in(client, "carol", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/workspaces/"
    assert signed_in(client)


def test_the_admin_login_is_locked_too(client, admin_user):
    fail_many(client, "admin", times=settings.AXES_FAILURE_LIMIT)
    response = log_in(client, "admin", PASSWORD, path=reverse("admin:login"))
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert not signed_in(client)


@pytest.mark.django_db(transaction=True)
async def test_a_lockout_under_asgi_shows_the_same_page():
    """The async middleware path calls the lockout page differently."""
    await sync_to_async(UserFactory)(username="carol")
    await sync_to_async(fail_many)(Client(), "carol")
    response = await AsyncClient().post(
        reverse("login"), {"username": "carol", "password": PASSWORD}
    )
    await sync_to_async(connections.close_all)()
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
