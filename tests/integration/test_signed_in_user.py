"""accounts.middleware: the signed-in user read in one statement in the
common case, and Django's own ``get_user`` for everything else, so every
sign-out Django makes still happens."""

import pytest
from django.contrib import auth
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.middleware import MODEL_BACKEND

pytestmark = pytest.mark.django_db

PAGE = "/workspaces/"


@pytest.fixture
def djangos_way(monkeypatch):
    """Counts the requests that went Django's way."""
    calls = []
    original = auth.get_user

    def counted(request):
        calls.append(request.path)
        return original(request)

    monkeypatch.setattr(auth, "get_user", counted)
    return calls


def signed_in(client, user, backend=MODEL_BACKEND):
    client.force_login(user, backend=backend)
    return client


def session_of(client) -> dict:
    return Session.objects.get(pk=client.cookies["sessionid"].value).get_decoded()


def test_the_common_case_is_one_statement_and_the_same_user(client, alice, djangos_way):
    signed_in(client, alice)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PAGE)
    assert response.status_code == 200
    assert djangos_way == []
    user = response.wsgi_request.user
    assert user.pk == alice.pk and user.is_authenticated
    # Every field as the ORM loads it (types too: UUID, datetimes, booleans).
    alice.refresh_from_db()
    for field in alice._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(alice, field.attname)
        assert type(getattr(user, field.attname)) is type(getattr(alice, field.attname))
    user_reads = [q for q in queries if 'FROM "accounts_user"' in q["sql"]
                  or "FROM accounts_user" in q["sql"]]  # fmt: skip
    assert len(user_reads) == 1


def test_a_changed_password_signs_other_sessions_out(client, alice, djangos_way):
    signed_in(client, alice)
    assert client.get(PAGE).status_code == 200
    alice.set_password("a-new-password-4821")
    alice.save()
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert djangos_way == [PAGE]
    assert not Session.objects.filter(pk=client.cookies["sessionid"].value).exists()


def test_an_inactive_or_removed_user_is_signed_out(client, alice, bob):
    signed_in(client, alice)
    alice.is_active = False
    alice.save()
    assert client.get(PAGE).status_code == 302
    other = signed_in(type(client)(), bob)
    bob.delete()
    assert other.get(PAGE).status_code == 302


def test_a_session_under_a_fallback_secret_is_kept_and_signed_again(
    client, alice, settings, djangos_way
):
    signed_in(client, alice)
    old_hash = session_of(client)[HASH_SESSION_KEY]
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-" + "x" * 40
    # Its hash was made under the old secret: only the fallback verifies it.
    assert client.get(PAGE).status_code == 200
    assert djangos_way == [PAGE]
    assert session_of(client)[HASH_SESSION_KEY] != old_hash
    # Signed again under the new secret: the common case from now on.
    assert client.get(PAGE).status_code == 200
    assert djangos_way == [PAGE]


def test_a_session_of_another_backend_goes_djangos_way(
    client, alice, settings, djangos_way
):
    # A backend that, unlike ModelBackend, lets inactive users in: its rule,
    # not the common case's, must decide.
    backend = "django.contrib.auth.backends.AllowAllUsersModelBackend"
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, backend]
    alice.is_active = False
    alice.save()
    signed_in(client, alice, backend=backend)
    response = client.get(PAGE)
    assert djangos_way == [PAGE]
    assert response.status_code == 200
    assert response.wsgi_request.user.pk == alice.pk
