"""/api/v1/docs in a real browser under the site's Content-Security-Policy:
Swagger UI renders the API from our own static files, with no request to
another host and no policy violation."""

from urllib.parse import urlparse

import pytest

from tests.browser import test_console_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Debian Chromium through Playwright, launched as the console's browser test does.
browser_page = test_console_browser.browser_page


def test_swagger_ui_renders_the_api_under_the_csp(live_server, browser_page):
    page = browser_page
    hosts, violations = set(), []
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
    page.on(
        "console",
        lambda msg: (
            violations.append(msg.text)
            if "Content Security Policy" in msg.text
            else None
        ),
    )
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(f"{live_server.url}/api/v1/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for(timeout=15_000)
    assert "Notebook Fleet API" in title.inner_text()
    page.locator("#operations-ide-workspaces_api_create_workspace").wait_for()
    assert hosts == {"localhost"} or hosts == {"127.0.0.1"}, hosts
    assert violations == [] and page.evaluate("window.cspViolations") == []
