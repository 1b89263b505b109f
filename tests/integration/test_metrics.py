"""/metrics: who may read it, and that every counter and histogram moves by
exactly what a driven fleet did (start, failed start, stop, failed stop,
idle reaping, reconcile of a vanished runtime and an orphan, task runs)."""

import re
from datetime import timedelta

import pytest

from ops import shared_counters
from tests.integration.lifecycle_support import committed
from tests.integration.metrics_support import TOKEN, delta, scraper, start, stop, value
from workers import services, states, tasks
from workers.models import Worker

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def scrape(client, settings):
    return scraper(client, settings)


# --- access ------------------------------------------------------------------


def test_it_refuses_anonymous_scrapes_with_401(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_wrong_token_and_an_empty_setting(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_it_refuses_users_without_the_view_permission_with_403(client, personas):
    client.force_login(personas.alice)
    assert client.get("/metrics").status_code == 403


def test_it_serves_staff_with_the_view_permission(client, personas):
    client.force_login(personas.operator)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"# TYPE notebook_workers gauge" in response.content


# --- the numbers ---------------------------------------------------------------


def test_starts_and_their_durations_are_counted_by_outcome(
    fleet, default_class, scrape
):
    before = scrape()
    ready = start(fleet)
    fleet.backend.fail("launch", "error", "no capacity")
    failed = start(fleet)
    after = scrape()

    assert ready.status == states.READY and failed.status == states.FAILED
    starts = "notebook_worker_starts_total"
    assert delta(before, after, starts, backend="local", outcome="ready") == 1
    assert delta(before, after, starts, backend="local", outcome="failed") == 1
    failures = "notebook_worker_start_failures_total"
    code = failed.error_code
    assert delta(before, after, failures, backend="local", error_code=code) == 1
    histogram = "notebook_worker_start_duration_seconds"
    for outcome in ("ready", "failed"):
        labels = {"backend": "local", "outcome": outcome}
        assert delta(before, after, f"{histogram}_count", **labels) == 1
        inf = {**labels, "le": "+Inf"}
        assert delta(before, after, f"{histogram}_bucket", **inf) == 1
    took = (ready.ready_at - ready.created_at).total_seconds()
    sum_delta = delta(
        before, after, f"{histogram}_sum", backend="local", outcome="ready"
    )
    assert sum_delta == pytest.approx(took, abs=0.01)


def test_gauges_follow_the_fleet_now(fleet, default_class, scrape):
    before = scrape()
    worker = start(fleet)
    after = scrape()
    labels = {"status": "ready", "backend": "local", "resource_class": "small"}
    assert delta(before, after, "notebook_workers", **labels) == 1
    health = {"backend": "local", "health": "ready"}
    assert delta(before, after, "notebook_workers_by_health", **health) == 1
    assert value(after, "notebook_active_users") >= 1
    stop(fleet, worker)
    assert value(scrape(), "notebook_workers", **labels) == 0


def test_stops_failed_stops_and_their_durations(fleet, default_class, scrape):
    first, second = start(fleet), start(fleet)
    before = scrape()
    stop(fleet, first)
    fleet.backend.fail("terminate", "error", "engine said no")
    second = stop(fleet, second)
    after = scrape()

    assert first.status == states.STOPPED and second.stop_failed
    stop_count = "notebook_worker_stop_duration_seconds_count"
    assert delta(before, after, stop_count, backend="local") == 1
    failures = "notebook_worker_stop_failures_total"
    code = second.error_code
    assert delta(before, after, failures, backend="local", error_code=code) == 1
    gauge = "notebook_workers_stop_failed"
    assert delta(before, after, gauge, backend="local") == 1


def test_reaper_and_reconcile_actions_are_counted_by_reason(
    fleet, default_class, scrape, settings
):
    idle, lost, ended = start(fleet), start(fleet), start(fleet)
    stop(fleet, ended)
    fleet.backend.add_runtime(ended.id)  # left behind: an orphan
    before = scrape()
    fleet.clock.shift(timedelta(minutes=61))
    fleet.probe.down.add(str(lost.id))
    fleet.backend.lose(lost.id)
    with committed():
        services.workers_reconcile()
        services.workers_reap_idle()
    fleet.tasks.run_all()
    after = scrape()

    actions = "notebook_reaper_actions_total"
    assert delta(before, after, actions, reason="vanished") == 1
    assert delta(before, after, actions, reason="orphan") == 1
    assert delta(before, after, actions, reason="idle") == 1
    orphans = "notebook_orphaned_runtimes_terminated_total"
    assert delta(before, after, orphans, backend="local", gpu="false") == 1
    assert Worker.objects.get(id=idle.id).status == states.STOPPED


def test_task_outcomes_and_reconcile_runs_are_counted(fleet, scrape):
    shared_counters.reset()
    before = scrape()
    tasks.reconcile_workers.apply()
    tasks.probe_workers.apply()
    after = scrape()

    runs = "notebook_celery_tasks_total"
    name = "workers.tasks.reconcile_workers"
    assert delta(before, after, runs, task=name, outcome="success") == 1
    assert delta(before, after, "notebook_reconcile_runs_total", outcome="success") == 1
    assert delta(before, after, "notebook_reconcile_duration_seconds_count") == 1
    assert value(after, "notebook_reconcile_last_success_timestamp_seconds") > 0
    probe = {"task": "workers.tasks.probe_workers"}
    assert (
        delta(before, after, "notebook_celery_task_duration_seconds_count", **probe)
        == 1
    )


def test_http_latency_is_recorded_by_view(client, scrape):
    before = scrape()
    client.get("/healthz")
    after = scrape()
    labels = {"view": "healthz", "method": "GET", "status": "2xx"}
    name = "notebook_http_request_duration_seconds_count"
    assert delta(before, after, name, **labels) == 1


def test_a_scrape_exports_every_defined_metric(scrape, client):
    from ops.metric_defs import ALL

    client.get("/healthz")  # one HTTP observation, so its series exist
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    types = set(re.findall(r"^# TYPE (\S+) ", response.content.decode(), re.M))
    for metric in ALL:
        name = f"{metric.name}_total" if metric.kind == "counter" else metric.name
        assert name in types, name
