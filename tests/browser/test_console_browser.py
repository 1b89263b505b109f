"""Admin → Notebook Workers in a real browser: filters, expand, refresh, and
a live status change arriving over the websocket without a reload.

pytest-django's live_server does not serve websockets, so the real ASGI app
runs under uvicorn in a subprocess against the test database, with the Redis
channel layer shared with this process (which publishes the change).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections

from tests.conftest import missing_service
from tests.factories import WorkerFactory, WorkspaceFactory
from workers.services import worker_transition

pytestmark = [
    pytest.mark.browser,
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def asgi_server():
    """uvicorn serving config.asgi on a free port, DEBUG for static files."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "DEBUG": "1"}
    env.update(LOG_LEVEL="WARNING", CONN_MAX_AGE="0")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        _wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("uvicorn did not start")


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists():
        missing_service("needs Debian chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        yield page
        browser.close()


def in_thread(call) -> None:
    """ORM writes off Playwright's greenlet loop (Django refuses them there)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture
def fleet(personas, default_class):
    alice, bob = personas.alice, personas.bob
    return {
        "a_ready": WorkerFactory(
            workspace=WorkspaceFactory(owner=alice, project__personal_owner=alice),
            status="ready",
            backend="docker",
        ),
        "a_busy": WorkerFactory(
            workspace=WorkspaceFactory(owner=alice, project__personal_owner=alice),
            status="busy",
        ),
        "b_ready": WorkerFactory(
            workspace=WorkspaceFactory(owner=bob, project__personal_owner=bob),
            status="ready",
            backend="kubernetes",
        ),
        "b_failed": WorkerFactory(status="failed", error_code="timeout"),
    }


def rows(page) -> set[str]:
    ids = page.locator("#worker-rows > tr:not(.worker-detail)").evaluate_all(
        "els => els.map(e => e.id)"
    )
    return {i.removeprefix("worker-") for i in ids}


def test_the_console_filters_expands_refreshes_and_updates_live(
    fleet, personas, asgi_server, browser_page
):
    """Fixture order matters: the data is written before Playwright starts
    its event loop in this thread (Django refuses ORM calls under a loop).
    Waits use ``expect``: ``wait_for_function`` evals, which the CSP forbids."""
    from playwright.sync_api import expect

    page, w = browser_page, {k: str(v.id) for k, v in fleet.items()}
    page.goto(f"{asgi_server}/login/?next=/admin/notebook-workers/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit], main input[type=submit]")
    page.wait_for_selector("#live.is-open", timeout=10_000)
    assert rows(page) == {w["a_ready"], w["a_busy"], w["b_ready"]}

    page.check("input[name=status][value=ready]")  # applies on change
    page.wait_for_url(re.compile(r"status=ready"))
    expect(page.locator("#worker-rows > tr:not(.worker-detail)")).to_have_count(2)
    assert rows(page) == {w["a_ready"], w["b_ready"]}

    page.fill("input[name=user]", str(personas.alice.id))
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(rf"user={personas.alice.id}"))
    expect(page.locator("#worker-rows > tr:not(.worker-detail)")).to_have_count(1)
    assert rows(page) == {w["a_ready"]}

    link = page.locator(f"#worker-{w['a_ready']} a.expand")
    expect(link).to_have_attribute("aria-expanded", "false")  # set by console.js
    link.click()
    detail = page.locator(f"#worker-{w['a_ready']}-detail[data-open]")
    detail.wait_for()
    assert "timeline" in detail.inner_text().lower()
    expect(link).to_have_attribute("aria-expanded", "true")

    before = page.get_attribute("#last-refreshed", "datetime")
    page.evaluate("window.__sameDocument = true")
    page.click("#refresh")
    expect(page.locator("#last-refreshed")).not_to_have_attribute("datetime", before)

    in_thread(
        lambda: worker_transition(
            worker_id=fleet["a_ready"].id,
            expected="ready",
            to="failed",
            actor_type="system",
            reason="browser test",
            fields={"error_code": "timeout"},
        )
    )
    page.wait_for_selector(
        f"#worker-{w['a_ready']} .badge.status-failed", timeout=5_000
    )
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    _screenshots(page)


def _screenshots(page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "console.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot-notebook-workers.png")


# Counts the socket's messages in a DOM attribute, so ``expect`` can wait for
# them (``wait_for_function`` evals, which the Content-Security-Policy forbids).
COUNT_SOCKET_MESSAGES = """
document.body.dataset.wsMessages = "0";
document.addEventListener("htmx:wsAfterMessage", () => {
  document.body.dataset.wsMessages = String(Number(document.body.dataset.wsMessages) + 1);
});
"""


def test_stop_shows_its_outcome_and_keeps_it_when_the_socket_renders_the_row(
    fleet, asgi_server, browser_page
):
    """The POST answers with the row and, out of band, the message; the
    socket then renders the same row (the stop's own publish, and any later
    one). The message is outside the row, so no render can erase it."""
    from playwright.sync_api import expect

    from workers.realtime import publish_worker_changed

    page, worker = browser_page, fleet["a_ready"]
    row = page.locator(f"#worker-{worker.id}")
    page.goto(f"{asgi_server}/login/?next=/admin/notebook-workers/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit], main input[type=submit]")
    page.wait_for_selector("#live.is-open", timeout=10_000)
    page.evaluate(COUNT_SOCKET_MESSAGES)
    expect(row.locator(".badge.status-ready")).to_have_text("Ready")

    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    row.get_by_role("button", name="Stop").click()
    outcome = page.locator("#action-outcome")
    expect(outcome).to_contain_text(f"{worker.short_id}")
    expect(outcome).to_contain_text("Stop requested.")
    expect(row.locator(".badge.status-stopping")).to_have_text("Stopping")
    body = page.locator("body")
    expect(body).to_have_attribute("data-ws-messages", re.compile(r"^[1-9]"))
    seen = int(body.get_attribute("data-ws-messages"))

    in_thread(lambda: publish_worker_changed(worker.id, worker.owner_id))
    expect(body).to_have_attribute("data-ws-messages", str(seen + 1))
    expect(row.locator(".badge.status-stopping")).to_have_text("Stopping")
    expect(outcome).to_contain_text("Stop requested.")
    assert row.locator(".outcome").count() == 0
    page.set_viewport_size({"width": 1400, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-after-stop.png"))
