"""accounts.sessions: Django's database sessions, read without the ORM,
behave as Django's own: same rows, same expiry, same sign-in."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends import db as django_db
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_it_reads_what_djangos_engine_wrote_and_the_other_way_round():
    ours = SessionStore()
    ours["cart"] = [1, 2]
    ours.create()
    assert django_db.SessionStore(ours.session_key).load() == {"cart": [1, 2]}
    theirs = django_db.SessionStore()
    theirs["who"] = "alice"
    theirs.create()
    with CaptureQueriesContext(connection) as queries:
        assert SessionStore(theirs.session_key).load() == {"who": "alice"}
    assert len(queries) == 1 and "expire_date" in queries[0]["sql"]


def test_an_expired_or_unknown_session_is_empty_and_gets_a_new_key():
    store = SessionStore()
    store["x"] = 1
    store.create()
    old_key = store.session_key
    Session.objects.filter(pk=old_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    expired = SessionStore(old_key)
    assert expired.load() == {}
    assert expired.session_key is None
    expired["y"] = 2
    expired.save()
    assert expired.session_key != old_key
    assert SessionStore("no-such-session-key-abcdefgh").load() == {}


def test_signing_in_and_out_through_the_pages(client, alice, settings):
    assert settings.SESSION_ENGINE == "accounts.sessions"
    alice.set_password("pw-alice-123456")
    alice.save()
    response = client.post(
        "/login/", {"username": alice.username, "password": "pw-alice-123456"}
    )
    assert response.status_code == 302
    assert client.get("/workspaces/").status_code == 200
    key = client.cookies["sessionid"].value
    assert Session.objects.filter(pk=key).exists()
    client.post("/logout/")
    assert not Session.objects.filter(pk=key).exists()
    assert client.get("/workspaces/").status_code == 302  # to the login page
