"""Who may call /api/v1/: personal API tokens (Bearer; shown once, stored
hashed, expiring, revocable, never in a URL, never logged) and the browser
session with CSRF enforced; and the API tokens page."""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_create
from tests.factories import ProjectFactory, WorkerFactory, WorkspaceFactory
from tests.integration.api_support import API, ApiClient
from workers import states

pytest_plugins = ["tests.integration.api_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def running(alice):
    workspace = WorkspaceFactory(project=ProjectFactory(personal_owner=alice))
    WorkerFactory(workspace=workspace, status=states.READY)
    return workspace


def refused(response, *words):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail


# --- Tokens ------------------------------------------------------------------


def test_a_valid_token_authenticates_and_is_stored_only_hashed(api, api_token, alice):
    assert api.get(f"{API}/ide").status_code == 200
    stored = ApiToken.objects.get(user=alice)
    assert api_token.startswith(f"nf_{stored.key_id}_")
    assert api_token not in {stored.token_hash, stored.key_id, stored.name}
    assert len(stored.token_hash) == 64


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "nf_00000000_" + t.split("_", 2)[2],  # unknown id
        lambda t: "garbage",
        lambda t: "",
    ],
)
def test_a_wrong_token_is_401(api_token, mangle):
    refused(
        ApiClient(token=None).get(
            f"{API}/ide", HTTP_AUTHORIZATION=f"Bearer {mangle(api_token)}"
        ),
        "invalid",
    )


def test_an_expired_token_is_401(api, alice):
    _, raw = api_token_create(user=alice, name="old", expires_in_days=1)
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        refused(ApiClient(token=raw).get(f"{API}/ide"), "expired")


def test_a_revoked_token_is_401(alice, api_token):
    client = ApiClient(token=api_token)
    assert client.get(f"{API}/ide").status_code == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    refused(client.get(f"{API}/ide"), "revoked")


def test_a_deactivated_users_token_is_401(alice, api):
    alice.is_active = False
    alice.save()
    refused(api.get(f"{API}/ide"))


@pytest.mark.parametrize("param", ["token", "access_token"])
def test_a_token_in_the_query_string_is_refused_even_with_a_session(
    alice, api_token, param
):
    client = ApiClient()
    client.force_login(alice)
    response = client.get(f"{API}/ide", {param: api_token})
    refused(response, "URL", "Authorization: Bearer")
    assert ApiToken.objects.get().last_used_at is None


def test_a_bad_bearer_token_never_falls_back_to_the_session(alice):
    client = ApiClient(token="nf_00000000_nope")
    client.force_login(alice)
    refused(client.get(f"{API}/ide"))


def test_no_credentials_is_401_saying_what_to_send():
    refused(ApiClient().get(f"{API}/ide"), "Authorization: Bearer")
    refused(ApiClient().post(f"{API}/ide"), "Authorization: Bearer")


def test_last_used_is_written_at_most_once_a_minute(api, alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        api.get(f"{API}/ide")
    assert ApiToken.objects.get().last_used_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        api.get(f"{API}/ide")
    assert ApiToken.objects.get().last_used_at == start
    later = start + timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        api.get(f"{API}/ide")
    assert ApiToken.objects.get().last_used_at == later


def test_a_token_is_never_logged(api_token, caplog, settings):
    # ninja's own HttpBearer logs an unexpected scheme's header in DEBUG.
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG)
    client = ApiClient()
    client.get(f"{API}/ide", HTTP_AUTHORIZATION=f"Token {api_token}")
    client.get(f"{API}/ide", HTTP_AUTHORIZATION=f"Bearer {api_token}x")
    client.get(f"{API}/ide", {"access_token": api_token})
    secret = api_token.split("_", 2)[2]
    assert caplog.records
    assert not any(secret in record.getMessage() for record in caplog.records)


# --- CSRF: enforced for the session, not needed with a token -----------------


def test_a_session_post_without_csrf_is_403_and_changes_nothing(alice, running):
    client = ApiClient(enforce_csrf_checks=True)
    client.force_login(alice)
    for method, path in [
        ("post", f"{API}/ide/{running.id}/stop"),
        ("delete", f"{API}/ide/{running.id}"),
        ("post", f"{API}/ide"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 403, (method, path)
        assert "CSRF" in response.json()["detail"]
    assert running.workers.get().status == states.READY


def test_a_session_post_with_the_csrf_token_is_accepted(alice, running, tasks):
    client = ApiClient(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/account/tokens/")  # sets the CSRF cookie, as any page does
    csrf = client.cookies["csrftoken"].value
    response = client.post(f"{API}/ide/{running.id}/stop", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 202
    assert running.workers.get().status == states.STOPPING


def test_a_session_get_needs_no_csrf_token(alice, running):
    client = ApiClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(f"{API}/ide/{running.id}").status_code == 200


def test_a_token_post_needs_no_csrf_token(api_token, running, tasks):
    client = ApiClient(enforce_csrf_checks=True, token=api_token)
    assert client.post(f"{API}/ide/{running.id}/stop").status_code == 202


# --- The API tokens page -------------------------------------------------------


@pytest.fixture
def page(alice, client):
    client.force_login(alice)
    return client


def test_the_page_shows_a_new_token_once(page, alice):
    response = page.post("/account/tokens/", {"name": "nightly", "expires_in_days": 7})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["new_token"]
    assert raw.startswith("nf_") and raw in response.content.decode()
    token = ApiToken.objects.get(user=alice)
    assert token.name == "nightly"
    assert (
        timedelta(days=6, hours=23)
        < token.expires_at - timezone.now()
        <= timedelta(days=7)
    )
    listing = page.get("/account/tokens/").content.decode()
    assert "nightly" in listing and token.prefix in listing and raw not in listing
    assert ApiClient(token=raw).get(f"{API}/ide").status_code == 200


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"name": "x", "expires_in_days": 366},
            "expires_in_days",
            "less than or equal to 365",
        ),
        (
            {"name": "x", "expires_in_days": 0},
            "expires_in_days",
            "greater than or equal to 1",
        ),
        ({"name": "", "expires_in_days": 7}, "name", "required"),
        ({"name": "x" * 10_000, "expires_in_days": 7}, "name", "at most 100"),
    ],
)
def test_the_page_refuses_bad_input_at_the_field(page, data, field, message):
    response = page.post("/account/tokens/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not ApiToken.objects.exists()


def test_the_page_lists_last_use_and_revokes(page, alice, api):
    api.get(f"{API}/ide")
    token = ApiToken.objects.get(user=alice)
    listing = page.get("/account/tokens/").content.decode()
    assert (
        "never" not in listing.split(f'id="api-token-{token.id}"')[1].split("</tr>")[0]
    )
    response = page.post(f"/account/tokens/{token.id}/revoke", follow=True)
    assert "is revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    refused(api.get(f"{API}/ide"))


def test_the_page_refuses_a_nul_byte_in_the_name(page):
    response = page.post("/account/tokens/", {"name": "a\x00b", "expires_in_days": 7})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_another_users_token_cannot_be_revoked(page, bob):
    _, _ = api_token_create(user=bob, name="bobs", expires_in_days=5)
    theirs = ApiToken.objects.get(user=bob)
    assert page.post(f"/account/tokens/{theirs.id}/revoke").status_code == 404
    assert "bobs" not in page.get("/account/tokens/").content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_page_needs_a_login(client):
    assert client.get("/account/tokens/").status_code == 302
    assert (
        client.post("/account/tokens/", {"name": "x", "expires_in_days": 1}).status_code
        == 302
    )
    assert not ApiToken.objects.exists()
