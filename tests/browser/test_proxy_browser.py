"""Alice opens her running workspace in Debian Chromium, through the
embedded proxy and through the shipped nginx front proxy: the real JupyterLab frontend loads, she creates a notebook, runs
``1+1`` and sees ``2``. The proxied pages carry JupyterLab's own headers,
never the platform's Content-Security-Policy.

All database writes happen before Playwright starts its event loop in this
thread (Django refuses ORM calls under a running loop)."""

import re
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.factories import WorkspaceFactory
from tests.integration.proxy_support import session_cookie, start_running
from tests.integration.test_proxy_nginx import nginx_url  # noqa: F401 - fixture

pytest_plugins = ["tests.integration.proxy_support"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
LAB_TIMEOUT = 120_000  # JupyterLab's first load on a busy two-core runner


@pytest.fixture
def alices_lab(local_backend, tasks, alice, default_class):
    workspace = WorkspaceFactory(owner=alice, project__personal_owner=alice)
    worker = start_running(workspace, tasks)
    return workspace, worker, session_cookie(alice)


@pytest.fixture(params=["embedded", "nginx"])
def front_url(request, app_url) -> str:
    """The app's own proxy, or the shipped nginx config in front of it."""
    return request.getfixturevalue("nginx_url") if request.param == "nginx" else app_url


def open_browser(playwright):
    if not Path(CHROMIUM).exists():
        missing_service("needs Debian chromium: apt-get install chromium")
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def test_alice_runs_a_cell_in_jupyterlab_through_the_proxy(alices_lab, front_url):
    from playwright.sync_api import expect, sync_playwright

    workspace, worker, cookies = alices_lab
    with sync_playwright() as playwright:
        browser = open_browser(playwright)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_cookies(
            [{"name": k, "value": v, "url": front_url} for k, v in cookies.items()]
        )
        page = context.new_page()
        response = page.goto(f"{front_url}{workspace.base_url}lab")
        assert response.status == 200
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" not in csp and "frame-ancestors 'none'" not in csp
        assert worker.access_token not in page.content()

        page.locator(".jp-LauncherCard[data-category='Notebook']").first.click(
            timeout=LAB_TIMEOUT
        )
        expect(
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        ).to_be_visible(timeout=LAB_TIMEOUT)
        run_first_cell(page, "1+1")
        output = page.locator(".jp-OutputArea-output").first
        expect(output).to_have_text("2", timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "proxy-jupyterlab.png"))
        browser.close()


def run_first_cell(page, code: str) -> None:
    """Type ``code`` into the first cell and run it, until it ran.

    A freshly created notebook may still be reloaded by JupyterLab once its
    kernel session settles, which drops what was typed (the cell then runs
    empty): type and run again until the first cell shows an execution count.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    cell = page.locator(".jp-Notebook .jp-Cell").first
    editor = cell.locator(".cm-content")
    ran = cell.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]"))
    for _ in range(5):
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.type(code)
        try:
            editor.filter(has_text=code).wait_for(timeout=5_000)
        except PlaywrightTimeout:
            continue
        page.keyboard.press("Shift+Enter")
        try:
            ran.wait_for(timeout=15_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the notebook's first cell never ran {code!r}")
