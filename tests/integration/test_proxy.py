"""The embedded proxy in front of a recording stand-in runtime: who gets
through, what the runtime receives, what comes back, and the pages for
everything that is not forwarded. The real ASGI app runs under uvicorn."""

import http.client
import time

import httpx
import pytest

from proxy.selectors import GRANTS_SESSION_KEY
from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.proxy_support import (
    TOKEN,
    forward_with_platform_secrets,
    recorded_worker,
    session_cookie,
)
from workers import states

pytest_plugins = ["tests.integration.proxy_support"]

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


def get(url: str, user=None, **kwargs) -> httpx.Response:
    cookies = session_cookie(user) if user else {}
    return httpx.get(url, cookies=cookies, timeout=10, **kwargs)


def test_it_forwards_the_owners_request_with_the_token_and_no_platform_secrets(
    app_url, recorder, alice
):
    _, seen = forward_with_platform_secrets(app_url, recorder, alice)
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_it_keeps_runtime_cookies_inside_the_prefix(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    prefix = worker.workspace.base_url
    recorder.reply_headers = [
        ("Set-Cookie", "_xsrf=abc"),
        ("Set-Cookie", f"inside=1; Path={prefix}lab"),
        ("Set-Cookie", "platform=1; Path=/"),
        ("Set-Cookie", "admin=1; Path=/admin/"),
        ("Set-Cookie", "wide=1; Domain=example.org; Path=" + prefix),
        ("Set-Cookie", f"sessionid=forged; Path={prefix}"),
    ]
    response = get(f"{app_url}{prefix}lab", alice)
    cookies = response.headers.get_list("set-cookie")
    assert cookies == [f"_xsrf=abc; Path={prefix}", f"inside=1; Path={prefix}lab"]


@pytest.mark.parametrize(
    "location, expected",
    [
        ("https://evil.example/steal", "{prefix}"),
        ("//evil.example/", "{prefix}"),
        ("/admin/", "{prefix}"),
        ("../../admin/", "{prefix}"),
        ("{upstream}{prefix}tree", "{prefix}tree"),
        ("{app}{prefix}lab?reset", "{prefix}lab?reset"),
        ("lab/tree", "{prefix}lab/tree"),
    ],
)
def test_it_never_redirects_out_of_the_prefix(
    app_url, recorder, alice, location, expected
):
    worker = recorded_worker(alice, recorder)
    values = {
        "prefix": worker.workspace.base_url,
        "upstream": f"http://127.0.0.1:{recorder.port}",
        "app": app_url,
    }
    recorder.status = 302
    recorder.reply_headers = [("Location", location.format(**values))]
    response = get(f"{app_url}{values['prefix']}x", alice)
    assert response.status_code == 302
    assert response.headers["location"] == expected.format(**values)


def test_another_users_workspace_is_a_404_and_never_reaches_the_runtime(
    app_url, recorder, alice, bob
):
    worker = recorded_worker(alice, recorder)
    response = get(f"{app_url}{worker.workspace.base_url}api/status", bob)
    assert response.status_code == 404
    assert "No such workspace" in response.text
    assert recorder.received == []


def test_anonymous_is_sent_to_the_login_page(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    path = f"{worker.workspace.base_url}lab"
    response = get(f"{app_url}{path}")
    assert response.status_code == 302
    assert response.headers["location"] == f"/login/?next={path}"
    assert recorder.received == []


@pytest.mark.parametrize(
    "suffix, status",
    [
        ("x/api/status", 404),  # /w/<id>x is not /w/<id>
        ("/../../admin/", 400),
        ("/%2e%2e/%2e%2e/admin/", 400),
        ("/api/%2E%2E/%2e%2e/x", 400),
        ("/api%2f..%2f..%2fadmin", 400),
        ("/files/a%5c..%5cb", 400),
        ("/files/%00", 400),
        ("/./api/status", 400),
    ],
)
def test_it_refuses_paths_that_leave_the_prefix(
    app_url, recorder, alice, suffix, status
):
    worker = recorded_worker(alice, recorder)
    raw = f"/w/{worker.workspace.id}{suffix}"
    # Clients normalise dot segments; send the raw target as an attacker can.
    connection = http.client.HTTPConnection(app_url.removeprefix("http://"))
    cookie = "; ".join(f"{k}={v}" for k, v in session_cookie(alice).items())
    connection.request("GET", raw, headers={"Cookie": cookie})
    response = connection.getresponse()
    assert response.status == status, response.read()
    assert recorder.received == []


def test_the_bare_prefix_gets_its_slash(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    response = get(f"{app_url}/w/{worker.workspace.id}?a=1", alice)
    assert response.status_code == 302
    assert response.headers["location"] == f"/w/{worker.workspace.id}/?a=1"


def test_a_cross_site_write_is_refused(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    response = httpx.post(
        f"{app_url}{worker.workspace.base_url}api/contents",
        cookies=session_cookie(alice),
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert recorder.received == []


@pytest.mark.parametrize(
    "status, code, text",
    [
        (states.STARTING, 503, "is starting"),
        (states.STOPPING, 409, "is stopping"),
        (states.STOPPED, 409, "is stopped"),
        (states.FAILED, 409, "could not run"),
    ],
)
def test_it_shows_a_page_for_a_workspace_that_is_not_running(
    app_url, recorder, alice, status, code, text
):
    worker = recorded_worker(alice, recorder, status=status)
    response = get(f"{app_url}{worker.workspace.base_url}lab", alice)
    assert response.status_code == code
    assert text in response.text
    refresh = '<meta http-equiv="refresh"' in response.text
    assert refresh == (status == states.STARTING)
    assert recorder.received == []


def test_a_workspace_that_never_started_is_stopped(app_url, alice):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    response = get(f"{app_url}{workspace.base_url}lab", alice)
    assert response.status_code == 409 and "is stopped" in response.text


def test_an_unknown_workspace_is_a_404(app_url, alice):
    response = get(f"{app_url}/w/00000000-0000-4000-8000-000000000000/lab", alice)
    assert response.status_code == 404


def test_the_newest_worker_decides(app_url, recorder, alice):
    old = recorded_worker(alice, recorder)
    WorkerFactory(workspace=old.workspace, status=states.STOPPED)
    response = get(f"{app_url}{old.workspace.base_url}lab", alice)
    assert response.status_code == 409
    assert recorder.received == []


def test_a_runtime_that_does_not_answer_gets_the_502_page(app_url, alice):
    from tests.integration.proxy_support import free_port

    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    worker = WorkerFactory(
        workspace=workspace,
        endpoint=f"http://127.0.0.1:{free_port()}{workspace.base_url}",
        access_token=TOKEN,
    )
    response = get(f"{app_url}{workspace.base_url}lab", alice)
    assert response.status_code == 502
    assert "is not answering" in response.text and "stop and start" in response.text
    assert TOKEN not in response.text
    deadline = time.monotonic() + 15  # the probe runs after the page is sent
    while worker.health != "unreachable" and time.monotonic() < deadline:
        time.sleep(0.2)
        worker.refresh_from_db()
    assert worker.health == "unreachable"


def test_the_token_is_scrubbed_from_html_pages(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    # The recorder echoes the request, which carried the token: as HTML,
    # the proxy must take it out.
    recorder.reply_headers = [("Content-Type", "text/html")]
    response = get(f"{app_url}{worker.workspace.base_url}lab", alice)
    assert response.status_code == 200
    assert TOKEN not in response.text and "authorization" in response.text


def test_an_admin_needs_a_grant_for_that_worker(app_url, recorder, alice, admin_user):
    from django.contrib.sessions.backends.db import SessionStore

    worker = recorded_worker(alice, recorder)
    cookies = session_cookie(admin_user)
    url = f"{app_url}{worker.workspace.base_url}api/status"
    assert httpx.get(url, cookies=cookies).status_code == 404
    session = SessionStore(cookies["sessionid"])
    session[GRANTS_SESSION_KEY] = {str(worker.id): 4102444800}
    session.save()
    assert httpx.get(url, cookies=cookies).status_code == 200
    WorkerFactory(
        workspace=worker.workspace, status=states.READY, endpoint=worker.endpoint
    )
    assert httpx.get(url, cookies=cookies).status_code == 404  # a new worker


@pytest.mark.parametrize("who", ["anonymous", "bob", "cross-site alice"])
def test_a_socket_is_refused_before_it_reaches_the_runtime(
    app_url, recorder, alice, bob, who
):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    worker = recorded_worker(alice, recorder)
    user = {"anonymous": None, "bob": bob}.get(who, alice)
    headers = {"Origin": "https://evil.example"} if who.startswith("cross") else {}
    if user:
        cookie = session_cookie(user)
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookie.items())
    url = f"ws{app_url.removeprefix('http')}{worker.workspace.base_url}api/kernels/k/channels"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=headers, open_timeout=10)
    assert refused.value.response.status_code == 403
    assert recorder.received == []


def test_a_password_change_ends_the_session_for_the_proxy_too(app_url, recorder, alice):
    worker = recorded_worker(alice, recorder)
    cookies = session_cookie(alice)
    url = f"{app_url}{worker.workspace.base_url}api/status"
    assert httpx.get(url, cookies=cookies).status_code == 200
    alice.set_password("a-new-password-for-alice")
    alice.save()
    response = httpx.get(url, cookies=cookies)
    assert response.status_code == 302 and response.headers["location"].startswith(
        "/login/"
    )
    assert len(recorder.received) == 1


def test_an_expired_or_deactivated_session_is_not_let_through(app_url, recorder, alice):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    worker = recorded_worker(alice, recorder)
    cookies = session_cookie(alice)
    url = f"{app_url}{worker.workspace.base_url}api/status"
    Session.objects.filter(pk=cookies["sessionid"]).update(expire_date=timezone.now())
    assert httpx.get(url, cookies=cookies).status_code == 302
    cookies = session_cookie(alice)
    alice.is_active = False
    alice.save()
    assert httpx.get(url, cookies=cookies).status_code == 302
    assert recorder.received == []
