"""/metrics gauges and reaper counters, each moved by a real action and
compared scrape to scrape with the exact change expected: stale workers
until cleanup acts on them, idle workers past their stop time, GPU units per
project and model, the latency of a real probe of a loopback runtime, the
broker's queue, sign-in sessions, and reaper actions by plan window, stale
cleanup and preemption."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client

from ops.event_metrics import REAPER_REASONS
from ops.metric_defs import PROBE_BUCKETS, le_text
from tests.factories import (
    ProjectFactory,
    ResourceClassFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.integration.lifecycle_support import committed, gpu_plan, gpu_workspace
from tests.integration.lifecycle_support import queue as make_queue
from tests.integration.metrics_support import delta, scraper, start, stop, value
from workers import services, states, tasks
from workers.models import Worker
from workers.services import runtime
from workspaces.models import Plan
from workspaces.services import workspace_start, workspaces_reap_plan_windows

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def scrape(client, settings):
    return scraper(client, settings)


ACTIONS = "notebook_reaper_actions_total"


def reaper_moves(before: dict, after: dict) -> dict[str, float]:
    """Every reaper reason that moved between two scrapes, and by how much."""
    moved = {r: delta(before, after, ACTIONS, reason=r) for r in REAPER_REASONS}
    return {reason: n for reason, n in moved.items() if n}


# --- stale workers -------------------------------------------------------------


def test_stale_starts_are_counted_until_cleanup_acts_on_them(
    fleet, default_class, scrape
):
    lost = []
    for _ in range(3):
        workspace = WorkspaceFactory()
        with committed():
            lost.append(workspace_start(workspace=workspace, actor=workspace.owner))
    fleet.tasks.take()  # the start tasks are lost
    ref = fleet.backend.add_runtime(lost[0].id)  # one runtime came up anyway
    Worker.objects.filter(id=lost[0].id).update(runtime_ref=ref)
    before = scrape()
    fleet.clock.shift(timedelta(minutes=14))
    young = scrape()
    fleet.clock.shift(timedelta(minutes=2))
    stale = scrape()
    assert services.workers_cleanup_stale() == {"corrected": 1, "failed": 2}
    after = scrape()

    name, labels = "notebook_workers_stale", {"status": "starting", "backend": "local"}
    assert delta(before, young, name, **labels) == 0
    assert delta(before, stale, name, **labels) == 3
    assert delta(before, after, name, **labels) == 0
    assert reaper_moves(before, stale) == {}
    assert reaper_moves(stale, after) == {"stale": 3}


def test_stale_busy_workers_are_counted_and_the_dead_one_reaped(
    fleet, default_class, scrape, settings
):
    settings.NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS = 3600
    quiet, gone = start(fleet), start(fleet)
    fleet.probe.busy.update({str(quiet.id), str(gone.id)})
    services.workers_probe()
    fleet.probe.busy.clear()
    fleet.backend.lose(gone.id)
    before = scrape()
    fleet.clock.shift(timedelta(minutes=61))
    stale = scrape()
    assert services.workers_cleanup_stale() == {"checked": 1, "failed": 1}
    after = scrape()

    name, labels = "notebook_workers_stale", {"status": "busy", "backend": "local"}
    assert delta(before, stale, name, **labels) == 2
    assert delta(before, after, name, **labels) == 0  # one failed, one idle again
    assert reaper_moves(stale, after) == {"stale": 1}


# --- idle workers past their stop time -------------------------------------------


def test_idle_workers_past_their_timeout_are_overdue_until_reaped(
    fleet, default_class, scrape
):
    quick = ResourceClassFactory(id="quick", idle_timeout_seconds=600)
    first, second = start(fleet), start(fleet, resource_class=quick)
    before = scrape()
    fleet.clock.shift(timedelta(minutes=11))
    one_due = scrape()
    fleet.clock.shift(timedelta(minutes=50))
    both_due = scrape()
    with committed():
        assert services.workers_reap_idle()["stopped"] == 2
    fleet.tasks.run_all()
    after = scrape()

    name = "notebook_workers_idle_overdue"
    assert delta(before, one_due, name, backend="local") == 1
    assert delta(before, both_due, name, backend="local") == 2
    assert delta(before, after, name, backend="local") == 0
    assert reaper_moves(both_due, after) == {"idle": 2}
    assert {Worker.objects.get(id=w.id).status for w in (first, second)} == {
        states.STOPPED
    }


# --- GPU units and users ------------------------------------------------------------


def test_gpu_units_in_use_follow_each_project_and_model(
    fleet, default_class, scrape, settings
):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 8}
    owner = UserFactory()
    project = ProjectFactory(personal_owner=owner, plan=gpu_plan(), gpu_quota=4)
    before = scrape()
    whole = start(fleet, gpu_workspace(project=project, owner=owner, units=2))
    start(fleet, gpu_workspace(project=project, owner=owner, units=1, sm=50))
    elsewhere = start(fleet, gpu_workspace(units=1))
    running = scrape()
    stop(fleet, whole)
    after = scrape()

    name, model = "notebook_gpu_units_in_use", "RTX 5090"
    ours = {"project": project.slug, "model": model}
    theirs = {"project": elsewhere.project.slug, "model": model}
    assert delta(before, running, name, **ours) == 2.5
    assert delta(before, running, name, **theirs) == 1
    assert delta(running, after, name, **ours) == -2
    assert delta(running, after, name, **theirs) == 0
    assert value(running, "notebook_project_gpu_quota", project=project.slug) == 4
    assert delta(before, running, "notebook_active_users") == 2


# --- probe latency ------------------------------------------------------------------

PROBE_DELAY = 0.06  # seconds the stand-in runtime waits before answering


class _JupyterStatus(BaseHTTPRequestHandler):
    """Jupyter Server's ``GET api/status``, answered after PROBE_DELAY."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        time.sleep(PROBE_DELAY)
        body = json.dumps(
            {"started": "2026-11-27T08:00:00Z", "last_activity": None, "kernels": 0}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def jupyter_status():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JupyterStatus)
    server.daemon_threads = True
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_probe_latency_is_that_of_the_real_probe(
    fleet, default_class, scrape, jupyter_status
):
    worker = start(fleet)  # the fake probe answered in 3 ms
    port = jupyter_status.server_address[1]
    endpoint = f"http://127.0.0.1:{port}/w/{worker.workspace_id}/"
    Worker.objects.filter(id=worker.id).update(endpoint=endpoint)
    runtime.override_probe(None)  # workers.probe over HTTP from here on
    before = scrape()
    assert services.workers_probe() == {"probed": 1, "busy": 0, "ready": 0}
    after = scrape()

    worker.refresh_from_db()
    took = worker.health_latency_ms
    assert jupyter_status.seen == [
        (f"/w/{worker.workspace_id}/api/status", f"token {worker.access_token}")
    ]
    assert worker.health == "ready" and took >= PROBE_DELAY * 1000
    name, local = "notebook_worker_probe_latency_seconds", {"backend": "local"}
    for bound in (*PROBE_BUCKETS, float("inf")):
        moved = int(took <= bound * 1000) - int(bound * 1000 >= 3)
        bucket = {**local, "le": le_text(bound)}
        assert delta(before, after, f"{name}_bucket", **bucket) == moved, bound
    assert delta(before, after, f"{name}_gcount", **local) == 0
    assert delta(before, after, f"{name}_gsum", **local) == pytest.approx(
        (took - 3) / 1000
    )


# --- the broker's queue -----------------------------------------------------------


@pytest.mark.needs_redis
def test_queue_length_is_what_waits_in_the_broker(scrape):
    import redis

    from config.celery import app

    queue = app.conf.task_default_queue
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.delete(queue)
    try:
        before = scrape()
        tasks.reconcile_workers.apply_async()
        tasks.probe_workers.apply_async()
        waiting = scrape()
        broker.delete(queue)
        after = scrape()
    finally:
        broker.delete(queue)
    name = "notebook_celery_queue_length"
    assert delta(before, waiting, name, queue=queue) == 2
    assert value(after, name, queue=queue) == 0


# --- sessions -------------------------------------------------------------------------


def test_open_sessions_count_sign_ins_until_sign_out_or_expiry(scrape, alice, bob):
    before = scrape()
    first, second = Client(), Client()
    first.force_login(alice)
    second.force_login(bob)
    signed_in = scrape()
    first.logout()
    one_left = scrape()
    later = datetime.now(UTC) + timedelta(seconds=django_settings.SESSION_COOKIE_AGE)
    with time_machine.travel(later + timedelta(minutes=1)):
        expired = scrape()

    name = "notebook_open_sessions"
    assert delta(before, signed_in, name) == 2
    assert delta(signed_in, one_left, name) == -1
    assert value(expired, name) == 0


# --- reaper actions by plan window and preemption ----------------------------------------


def test_a_closing_plan_window_is_counted_as_plan_window(fleet, default_class, scrape):
    daily = [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "08:00", "end": "20:00"}]
    slow = ResourceClassFactory(id="slow", idle_timeout_seconds=86400)
    bound = make_queue("daytime", priority=10)
    owner = UserFactory()
    plan = gpu_plan(
        queues=[bound], window_kind=Plan.WindowKind.WEEKLY, window_rules=daily
    )
    project = ProjectFactory(personal_owner=owner, plan=plan)
    fleet.clock.move_to(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    in_plan = start(fleet, project=project, queue=bound, resource_class=slow)
    start(fleet, project=project, resource_class=slow)  # not bound: stays
    before = scrape()
    fleet.clock.move_to(datetime(2026, 11, 23, 20, 1, tzinfo=UTC))
    with committed():
        assert workspaces_reap_plan_windows()["stopped"] == 1
    fleet.tasks.run_all()
    after = scrape()

    assert Worker.objects.get(id=in_plan.id).status == states.STOPPED
    assert reaper_moves(before, after) == {"plan_window": 1}


def test_a_preempted_worker_is_counted_as_preempted(
    fleet, default_class, scrape, settings
):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 2}
    spot = make_queue("spot", priority=1, preemptible=True)
    urgent = make_queue("urgent", priority=90)
    older, newer, boss = (gpu_workspace(queue=q) for q in (spot, spot, urgent))
    for workspace in (older, newer, boss):
        workspace.project.plan.queues.add(spot, urgent)
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)):
        start(fleet, older)
    with time_machine.travel(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)):
        victim = start(fleet, newer)
    before = scrape()
    start(fleet, boss)
    after = scrape()

    assert Worker.objects.get(id=victim.id).status == states.STOPPED
    assert reaper_moves(before, after) == {"preempted": 1}
    name = "notebook_gpu_units_in_use"
    for workspace in (newer, boss):
        labels = {"project": workspace.project.slug, "model": "RTX 5090"}
        moved = -1 if workspace is newer else 1
        assert delta(before, after, name, **labels) == moved
