"""The /w/ proxy's requests, bytes and open sockets in /metrics: the real
ASGI app under uvicorn, wrapped in ``ops.proxy_traffic.ProxyTraffic``,
forwarding to loopback runtimes (a recording HTTP server, a WebSocket echo
server); each count compared scrape to scrape with the exact change."""

import threading
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import serve

from ops.proxy_traffic import ProxyTraffic
from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.metrics_support import delta, scraper, value
from tests.integration.proxy_support import (
    TOKEN,
    recorded_worker,
    serve_app,
    session_cookie,
)
from workers import states

pytest_plugins = ["tests.integration.proxy_support"]
pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
REQUESTS = "notebook_proxy_requests_total"
BYTES = "notebook_proxy_bytes_total"
OPEN = "notebook_proxy_open_websockets"


@pytest.fixture
def scrape(client, settings):
    return scraper(client, settings)


@pytest.fixture
def counted_url(settings):
    """The platform's ASGI app with its proxy traffic counted, served on a
    loopback port by uvicorn in a thread of this process (so /metrics read
    through the test client sees this process's counters)."""
    from config.asgi import application

    if not isinstance(application, ProxyTraffic):  # until config/asgi.py does
        application = ProxyTraffic(application)
    settings.NOTEBOOK_PROXY_RECHECK_SECONDS = 2
    with serve_app(application) as url:
        yield url


@pytest.fixture
def echo_runtime():
    """A runtime's WebSocket endpoint: sends every message back."""

    def echo(socket) -> None:
        for message in socket:
            socket.send(message)

    with serve(echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.socket.getsockname()[1]
        server.shutdown()


def cookie_header(user) -> dict[str, str]:
    cookies = session_cookie(user)
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def test_it_counts_requests_by_status_and_body_bytes_each_way(
    counted_url, recorder, alice, scrape
):
    prefix = recorded_worker(alice, recorder).workspace.base_url
    cookies = session_cookie(alice)
    upload = b"x" * 1000
    before = scrape()
    read = httpx.get(f"{counted_url}{prefix}api/status", cookies=cookies)
    written = httpx.put(
        f"{counted_url}{prefix}api/contents/a.txt", content=upload, cookies=cookies
    )
    anonymous = httpx.get(f"{counted_url}{prefix}api/status")
    after = scrape()

    assert (read.status_code, written.status_code) == (200, 200)
    assert anonymous.status_code == 302  # to the login page, by the platform
    assert recorder.received[1]["body_length"] == len(upload)
    assert delta(before, after, REQUESTS, kind="http", status="2xx") == 2
    assert delta(before, after, REQUESTS, kind="http", status="3xx") == 1
    assert delta(before, after, BYTES, direction="upstream") == len(upload)
    answers = (read, written, anonymous)
    downstream = sum(r.num_bytes_downloaded for r in answers)
    assert delta(before, after, BYTES, direction="downstream") == downstream


def test_a_runtime_that_does_not_answer_is_counted_as_5xx(counted_url, alice, scrape):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    WorkerFactory(
        workspace=workspace,
        status=states.READY,
        endpoint="http://127.0.0.1:9/",  # discard port: nothing listens
        access_token=TOKEN,
    )
    before = scrape()
    response = httpx.get(
        f"{counted_url}{workspace.base_url}lab", cookies=session_cookie(alice)
    )
    after = scrape()
    assert response.status_code == 502
    assert delta(before, after, REQUESTS, kind="http", status="5xx") == 1


def wait_for_value(scrape, name: str, wanted: float, seconds: float = 10) -> dict:
    """The first scrape where ``name`` reads ``wanted`` (a socket's end is
    seen by the proxy a moment after the client has closed it)."""
    deadline = time.monotonic() + seconds
    while value(samples := scrape(), name) != wanted:
        assert time.monotonic() < deadline, f"{name} is {value(samples, name)}"
        time.sleep(0.05)
    return samples


def test_it_counts_sockets_while_open_and_their_payload_bytes(
    counted_url, echo_runtime, alice, bob, scrape
):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    WorkerFactory(
        workspace=workspace,
        status=states.READY,
        endpoint=f"http://127.0.0.1:{echo_runtime}{workspace.base_url}",
        access_token=TOKEN,
    )
    url = f"ws{counted_url.removeprefix('http')}{workspace.base_url}api/events"
    before = scrape()
    with connect(url, additional_headers=cookie_header(alice)) as socket:
        socket.send("hello")
        assert socket.recv(timeout=10) == "hello"
        socket.send(b"\x00" * 300)
        assert socket.recv(timeout=10) == b"\x00" * 300
        during = scrape()
    with pytest.raises(InvalidStatus):  # bob may not reach alice's runtime
        connect(url, additional_headers=cookie_header(bob), open_timeout=10)
    after = wait_for_value(scrape, OPEN, value(before, OPEN))

    assert delta(before, during, OPEN) == 1
    assert delta(before, during, REQUESTS, kind="websocket", status="1xx") == 1
    assert delta(before, after, REQUESTS, kind="websocket", status="4xx") == 1
    assert delta(before, after, BYTES, direction="upstream") == 305
    assert delta(before, after, BYTES, direction="downstream") == 305


def test_the_served_application_counts_proxy_traffic():
    from config.asgi import application

    assert isinstance(application, ProxyTraffic)
