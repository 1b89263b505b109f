"""The Content-Security-Policy in a real browser: the console works under it
(live socket, filters applied on change, timed refresh, expand) and Chromium
reports no violation on the pages people use.

The server and browser fixtures are the console browser test's.
"""

import re

import pytest

from tests.browser.test_console_browser import (  # noqa: F401 - fixtures
    PASSWORD,
    asgi_server,
    browser_page,
)
from tests.factories import WorkerFactory, WorkspaceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]
# Recorded from the first script of every document, before any page script;
# init scripts are injected by the browser, so the page's CSP does not block them.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""
PAGES = ["/workspaces/", "/admin/", "/admin/workers/worker/", "/account/tokens/"]


@pytest.fixture(autouse=True)
def _quick_refresh(monkeypatch):
    """The console's timed refresh every second (read by the ASGI server)."""
    monkeypatch.setenv("NOTEBOOK_WORKERS_REFRESH_SECONDS", "1")


@pytest.fixture
def workers(personas, default_class):
    alice = personas.alice
    return [
        WorkerFactory(
            workspace=WorkspaceFactory(owner=alice, project__personal_owner=alice),
            status=status,
        )
        for status in ("ready", "busy")
    ]


def watch(page) -> list[str]:
    """Console messages that report a blocked resource or policy."""
    reported: list[str] = []

    def on_message(message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Permissions-Policy" in text:
            reported.append(text)

    page.on("console", on_message)
    page.on("pageerror", lambda error: reported.append(f"page error: {error}"))
    page.add_init_script(RECORD_VIOLATIONS)
    return reported


def violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_the_console_runs_under_the_policy_without_violations(
    workers,
    asgi_server,  # noqa: F811 - the imported fixture
    browser_page,  # noqa: F811 - the imported fixture
):
    from playwright.sync_api import expect

    page, reported = browser_page, watch(browser_page)
    login = page.goto(f"{asgi_server}/login/?next=/admin/notebook-workers/")
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert violations(page) == []
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")

    page.wait_for_selector("#live.is-open", timeout=10_000)  # the socket connects
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    before = page.get_attribute("#last-refreshed", "datetime")
    # The timed refresh, without an eval'd trigger filter. (Waits use expect:
    # wait_for_function evals, which the policy forbids.)
    refreshed = page.locator("#last-refreshed")
    expect(refreshed).not_to_have_attribute("datetime", before, timeout=10_000)
    page.check("input[name=status][value=ready]")  # applies on change
    page.wait_for_url(re.compile(r"status=ready"))
    expect(page.locator("#worker-rows > tr:not(.worker-detail)")).to_have_count(1)
    page.click("#worker-rows a.expand")
    page.locator("tr.worker-detail[data-open]").wait_for()
    assert violations(page) == [] and reported == []

    for path in PAGES:
        page.goto(f"{asgi_server}{path}")
        assert violations(page) == [], path
    assert reported == []
