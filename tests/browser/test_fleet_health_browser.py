"""Fleet health in a real browser: reached from the console's header, every
chart drawn as SVG under the Content-Security-Policy, the range switch,
and a layout that fits the window. Saves a screenshot
(``UPDATE_DOCS_SCREENSHOT=1`` also copies it to docs/).

The server and browser fixtures are the console browser test's.
"""

import os
import random
import re
import shutil
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.browser.test_console_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    PASSWORD,
    ROOT,
    asgi_server,
    browser_page,
)
from tests.browser.test_csp_browser import violations, watch
from tests.factories import ProjectFactory, WorkspaceFactory
from workers import states
from workers.models import Actor, EventKind, Worker, WorkerEvent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


def _lifecycle(rng: random.Random, born, now) -> list[tuple[str, str, float]]:
    """(to status, actor label, seconds after birth) of one plausible life."""
    took = rng.lognormvariate(3.3, 0.5)  # ~27 s median start
    if rng.random() < 0.08:
        return [(states.FAILED, "start_worker", min(took * 3, 300))]
    steps = [(states.READY, "start_worker", took)]
    end = took + rng.uniform(600, 5 * 3600)
    if rng.random() < 0.3:
        steps.append((states.BUSY, "probe_workers", took + 120))
    label = rng.choice(["reap_idle", "reap_idle", "alice", "preemption"])
    steps += [(states.STOPPING, label, end), (states.STOPPED, "stop_worker", end + 8)]
    return [s for s in steps if born + timedelta(seconds=s[2]) < now]


@pytest.fixture
def history(personas, default_class):
    """A day of starts, failures and reaps, written with consistent events
    (each transition from the status before it); two GPU projects."""
    rng, now = random.Random(7), timezone.now()
    ml = ProjectFactory(slug="ml-team", gpu_quota=Decimal("4"))
    ProjectFactory(slug="vision", gpu_quota=Decimal("8"))
    ws = WorkspaceFactory(project=ml, owner=ml.personal_owner)
    workers, events = [], []
    for _ in range(160):
        born = now - timedelta(hours=rng.triangular(0, 30, 6))
        steps = _lifecycle(rng, born, now)
        status = steps[-1][0] if steps else states.STARTING
        worker = Worker(
            workspace=ws, project=ml, owner=ws.owner, name=ws.name, backend="docker",
            status=status, created_at=born, status_changed_at=born,
        )  # fmt: skip
        allocated = [w for w in workers if w.status in states.ALLOCATED_STATUSES]
        if status in states.ALLOCATED_STATUSES and len(allocated) < 5:
            worker.gpu_units = Decimal("0.5")  # 2.5 of ml-team's 4
        workers.append(worker)
        before = states.STARTING
        for to, label, after in steps:
            events.append(
                WorkerEvent(
                    worker=worker, at=born + timedelta(seconds=after),
                    kind=EventKind.TRANSITION, actor_type=Actor.SYSTEM,
                    actor_label=label, from_status=before, to_status=to,
                )
            )  # fmt: skip
            before = to
    Worker.objects.bulk_create(workers)
    WorkerEvent.objects.bulk_create(events)
    return workers


def test_fleet_health_draws_its_charts_and_switches_range(
    history,
    asgi_server,  # noqa: F811 - the imported fixture
    browser_page,  # noqa: F811 - the imported fixture
):
    from playwright.sync_api import expect

    page, reported = browser_page, watch(browser_page)
    page.goto(f"{asgi_server}/login/?next=/admin/notebook-workers/")
    page.fill("input[name=username]", "operator")  # view-only staff
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.click("#fleet-health")
    page.wait_for_url(re.compile(r"/admin/notebook-workers/health/$"))

    charts = page.locator("svg.chart")
    expect(charts).to_have_count(5)
    expect(page.locator("#chart-starts rect.c-ready").first).to_be_visible()
    expect(page.locator("#chart-duration polyline.c-p95")).not_to_have_count(0)
    expect(page.locator("#chart-statuses circle.c-ready")).to_have_count(25)
    expect(page.locator("#chart-reaper rect.c-idle").first).to_be_visible()
    expect(page.locator("#chart-gpu rect.c-in_use")).to_have_count(1)
    expect(page.locator("#chart-gpu")).to_contain_text("of 4")
    _fits(page)
    _screenshot(page)

    page.get_by_role("link", name="Last 7 days").click()
    page.wait_for_url(re.compile(r"range=7d"))
    expect(page.locator("[aria-current=page]", has_text="Last 7 days")).to_be_visible()
    expect(page.locator("#chart-starts")).to_contain_text("Day (UTC)")
    expect(charts).to_have_count(5)
    _fits(page)
    page.locator("#chart-starts summary").click()
    expect(page.locator("#chart-starts table tbody tr")).to_have_count(7)
    page.screenshot(path=str(ARTIFACTS / "fleet-health-7d.png"), full_page=True)
    page.get_by_role("link", name="← Notebook Workers").click()
    page.wait_for_url(re.compile(r"/admin/notebook-workers/$"))
    assert violations(page) == [] and reported == []


def _fits(page) -> None:
    """Nothing spills out sideways; each chart fills its card; the axis
    words are inside the drawing."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    for box in page.locator("svg.chart").evaluate_all(
        "els => els.map(e => [e.getBoundingClientRect().width,"
        " e.parentElement.getBoundingClientRect().width])"
    ):
        assert box[0] > 400 and box[0] > 0.85 * box[1]
    for chart_id in ("starts", "duration", "statuses", "reaper", "gpu"):
        svg = page.locator(f"#chart-{chart_id} svg").bounding_box()
        for text in page.locator(f"#chart-{chart_id} svg text").all():
            box = text.bounding_box()
            assert box["x"] >= svg["x"] - 1 and box["y"] >= svg["y"] - 1, chart_id
            assert box["x"] + box["width"] <= svg["x"] + svg["width"] + 1, chart_id
            assert box["y"] + box["height"] <= svg["y"] + svg["height"] + 1, chart_id


def _screenshot(page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "fleet-health.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot-fleet-health.png")
