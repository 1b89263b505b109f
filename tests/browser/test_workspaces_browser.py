"""Alice's workspace, end to end in a real browser: she fills the launch
form, lands on the detail page, watches the start progress, sees Running
arrive over the websocket without a reload, stops it and deletes it.

Real parts: uvicorn serving the ASGI app, a Celery worker running the start
and stop tasks, the local backend launching a real JupyterLab process, the
Redis channel layer, PostgreSQL and Debian Chromium. Screenshots of the
pages go to tests/browser/artifacts (and docs/ with UPDATE_DOCS_SCREENSHOT).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.browser.test_console_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    PASSWORD,
    ROOT,
    asgi_server,
    browser_page,
    database_url,
    in_thread,
)
from tests.factories import WorkerFactory, WorkspaceFactory
from workers import states
from workers.backends.local import LocalBackend
from workspaces.models import Plan

pytestmark = [
    pytest.mark.browser,
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
pytest_plugins = ["tests.integration.workspace_support"]


@pytest.fixture
def runtimes_dir(tmp_path, monkeypatch):
    path = tmp_path / "workspaces"
    monkeypatch.setenv("NOTEBOOK_RUNTIME_WORKSPACES_DIR", str(path))
    monkeypatch.setenv("NOTEBOOK_RUNTIME_DEFAULT_BACKEND", "local")
    yield path
    backend = LocalBackend(path)
    for ref in backend.list_managed():
        backend.terminate(ref)


@pytest.fixture
def celery_worker(runtimes_dir):
    """A real Celery worker: it runs start_worker / stop_worker."""
    redis.Redis.from_url(settings.REDIS_URL).delete("celery", "unacked")
    env = {**os.environ, "DATABASE_URL": database_url()}
    env.update(NOTEBOOK_RUNTIME_START_POLL_SECONDS="0.3", CONN_MAX_AGE="0")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.celery", "worker",
         "--pool=solo", "--without-heartbeat", "--without-mingle",
         "--without-gossip", "--loglevel=WARNING"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    yield worker
    worker.terminate()
    worker.wait(15)


def login(page, server: str, username: str, next_path: str) -> None:
    page.goto(f"{server}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit], main input[type=submit]")
    page.wait_for_url(f"**{next_path}")


def test_alice_launches_watches_stops_and_deletes_a_workspace(
    world,
    asgi_server,  # noqa: F811 - the imported fixture
    celery_worker,
    browser_page,  # noqa: F811
):
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, asgi_server, "alice", "/workspaces/")
    assert page.locator("#empty-state").is_visible()
    page.wait_for_selector("#live.is-open", timeout=10_000)
    shoot(page, "workspaces-empty.png")

    page.click("#new-workspace")
    page.fill("input[name=name]", "Bad Name")
    page.locator("input[name=name]").blur()
    page.wait_for_selector("#error-name")  # htmx validated the field
    page.fill("input[name=name]", "analysis")
    page.locator("input[name=name]").blur()
    page.wait_for_selector("#error-name", state="detached")
    page.select_option("select[name=mount_volume]", str(world.data.pk))
    page.wait_for_selector(".mount-row:nth-child(2)")  # redrawn, a blank row added
    mount_path = page.locator(".mount-row input[name=mount_path]").first
    mount_path.fill("/etc")
    mount_path.blur()
    page.wait_for_selector("#error-mounts")
    shoot(page, "new-workspace.png", docs="screenshot-new-workspace.png")
    mount_path = page.locator(".mount-row input[name=mount_path]").first
    mount_path.fill("/data")
    mount_path.blur()
    page.wait_for_selector("#error-mounts", state="detached")

    page.click("#start-button")
    page.wait_for_url("**/workspaces/*-*/")
    page.wait_for_selector("#live.is-open", timeout=10_000)
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#start-progress, #detail-state:text('Running')")
    page.wait_for_selector("#detail-state:text('Running')", timeout=90_000)
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert "Start requested" in page.inner_text("#timeline")
    assert page.locator("a:text('Open')").get_attribute("href").endswith("/lab")
    shoot(page, "workspace-detail.png")

    workspace_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    in_thread(lambda: more_workspaces(world))
    page.goto(f"{asgi_server}/workspaces/")
    page.wait_for_selector(f"#workspace-{workspace_id} .state-running")
    page.wait_for_selector("#live.is-open", timeout=10_000)
    assert "Plan window closes in" in page.inner_text("#banners")
    shoot(page, "workspaces.png", docs="screenshot-workspaces.png")

    row = f"#workspace-{workspace_id}"
    page.click(f"{row} button[data-action=stop]")
    # The answer shows "Stopping…"; Stopped arrives over the socket.
    page.wait_for_selector(f"{row} .state-stopped", timeout=30_000)
    page.on("dialog", lambda dialog: dialog.accept())

    def live_update_while_deleting(route):
        # What a socket push does while the delete is in flight: the row
        # htmx aimed at is replaced by a fresh copy.
        page.evaluate(
            """(selector) => {
                const shown = document.querySelector(selector);
                const copy = shown.cloneNode(true);
                shown.replaceWith(copy);
                htmx.process(copy);
            }""",
            row,
        )
        route.continue_()

    page.route(f"**/{workspace_id}/delete/", live_update_while_deleting)
    page.click(f"{row} button[data-action=delete]")
    page.wait_for_selector(row, state="detached")
    page.reload()
    assert page.locator(row).count() == 0


def more_workspaces(world) -> None:
    """Rows for the list screenshot: a GPU workspace in the plan's queue
    whose window closes in three hours and that idles, a failed and a
    stopped one."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    Plan.objects.filter(pk=world.plan.pk).update(
        window_kind="one_off",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=3),
    )
    alice = world.personal.personal_owner
    gpu = WorkspaceFactory(
        project=world.personal,
        owner=alice,
        name="train-llm",
        queue=world.interactive,
        resource_class=world.gpu,
        gpu_count=1,
        gpu_model="RTX 5090",
        gpu_sm_percentage=50,
    )
    WorkerFactory(
        workspace=gpu,
        status="ready",
        plan_bound=True,
        last_activity_at=now - timedelta(minutes=51),
        next_action=states.NEXT_IDLE_STOP,
        next_action_at=now + timedelta(minutes=9),
    )
    failed = WorkspaceFactory(project=world.team, owner=alice, name="old-experiment")
    WorkerFactory(
        workspace=failed,
        status="failed",
        error_code="image_pull_failed",
        error_detail="Launch failed: image_pull_failed: manifest unknown",
    )
    WorkspaceFactory(project=world.personal, owner=alice, name="notes")


def shoot(page, name: str, docs: str = "") -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if docs and os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(path, Path(ROOT) / "docs" / docs)
