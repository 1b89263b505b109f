import pytest
from django.urls import reverse

from tests.factories import WorkerFactory
from tests.integration.lifecycle_support import committed
from workers.models import WorkerEvent
from workers.services import runtime
from workers.services.runtime import HealthReport

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = pytest.mark.django_db


def test_worker_events_are_append_only_in_the_admin(client, admin_user, default_class):
    worker = WorkerFactory()
    event = worker.events.create(kind="action", actor_type="admin", reason="checked")
    client.force_login(admin_user)
    assert client.get(reverse("admin:workers_workerevent_add")).status_code == 403
    change = client.post(
        reverse("admin:workers_workerevent_change", args=[event.pk]),
        {"reason": "edited"},
    )
    assert change.status_code == 403
    event.refresh_from_db()
    assert event.reason == "checked"


def test_the_worker_admin_never_shows_the_access_token(
    client, admin_user, default_class
):
    worker = WorkerFactory(access_token="tok-very-secret-123")
    client.force_login(admin_user)
    html = client.get(reverse("admin:workers_worker_change", args=[worker.pk])).content
    assert b"tok-very-secret-123" not in html
    assert reverse("console:console").encode() in html


def test_the_admin_index_links_the_console_and_reads_well(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Notebook Workers" in html and reverse("console:console") in html
    assert "Resource classes" in html and "classs" not in html


# --- issue 8 items 3 and 4: shown sanitized, read-only, actions via services --

TOKEN = "tok-Admin-Page-0123456789"
LEAKS = ("redispassSECRET18", "clipwSECRET17", "hunter2", "pw-in-spec", TOKEN)


def change_url(model, obj) -> str:
    return reverse(f"admin:workers_{model}_change", args=[obj.pk])


@pytest.fixture
def leaky_worker(default_class):
    """A worker whose stored columns echo secrets (rows written before a
    sanitizer fix, or by a gateway that put them there)."""
    worker = WorkerFactory(
        status="failed",
        access_token=TOKEN,
        endpoint=f"http://127.0.0.1:8888/w/x/?token={TOKEN}",
        runtime_ref={"name": "nb-x", "dsn": "redis://:redispassSECRET18@r:6379/0"},
        gateway_metadata={"gateway": "gw-7", "echo": f"Bearer {TOKEN}"},
        launch_spec={
            "image": "jupyter/base-notebook:4.2",
            "env": "password=pw-in-spec",
        },
        error_detail="retry with --password clipwSECRET17",
        repository_scope=["https://bob:hunter2@git.example.org/r.git"],
    )
    WorkerEvent.objects.create(
        worker=worker,
        kind="error",
        actor_type="backend",
        reason=f"gateway echoed {TOKEN} and https://bob:hunter2@git.example.org",
        data={"echo": TOKEN},
    )
    return worker


def test_the_worker_page_shows_runtime_columns_sanitized(
    client, admin_user, leaky_worker
):
    client.force_login(admin_user)
    html = client.get(change_url("worker", leaky_worker)).content.decode()
    for leak in LEAKS:
        assert leak not in html
    for shown in ("gw-7", "nb-x", "127.0.0.1:8888", "base-notebook:4.2", "[REDACTED]"):
        assert shown in html
    assert "gateway echoed [REDACTED]" in html  # the event inline


def test_the_event_pages_show_reasons_and_data_sanitized(
    client, admin_user, leaky_worker
):
    client.force_login(admin_user)
    event = leaky_worker.events.get()
    pages = (
        client.get(change_url("workerevent", event)).content.decode(),
        client.get(reverse("admin:workers_workerevent_changelist")).content.decode(),
    )
    for html in pages:
        assert "gateway echoed [REDACTED]" in html
        for leak in LEAKS:
            assert leak not in html


def test_a_status_edit_in_the_admin_is_refused_and_writes_nothing(
    client, admin_user, default_class
):
    worker = WorkerFactory(status="ready")
    client.force_login(admin_user)
    page = client.get(change_url("worker", worker)).content.decode()
    assert 'name="status"' not in page and 'name="stopped_at"' not in page
    response = client.post(
        change_url("worker", worker), {"status": "stopped", "name": "renamed"}
    )
    assert response.status_code == 403
    worker.refresh_from_db()
    assert (worker.status, worker.name, worker.stopped_at) == (
        "ready",
        worker.name,
        None,
    )
    assert not worker.events.exists()
    assert client.get(reverse("admin:workers_worker_add")).status_code == 403


def run_action(client, action: str, *workers):
    with committed():
        return client.post(
            reverse("admin:workers_worker_changelist"),
            {"action": action, "_selected_action": [str(w.pk) for w in workers]},
            follow=True,
        )


def test_the_stop_action_asks_the_stop_service(
    client, admin_user, fleet, default_class
):
    ready = WorkerFactory(status="ready", next_action="idle stop")
    done = WorkerFactory(status="stopped")
    client.force_login(admin_user)
    response = run_action(client, "stop_workers", ready, done)
    assert "Asked 1 to stop of 2 selected workers" in response.content.decode()
    ready.refresh_from_db()
    assert (ready.status, ready.next_action) == ("stopping", "")
    event = ready.events.get()
    assert (event.actor_type, event.actor, event.to_status) == (
        "admin",
        admin_user,
        "stopping",
    )
    assert ("stop_worker", str(ready.id)) in fleet.tasks.sent
    assert not done.events.exists()


def test_retry_stop_and_probe_actions_call_the_services(
    client, admin_user, fleet, default_class
):
    stuck = WorkerFactory(status="stopping", error_code="stop_timeout")
    ready = WorkerFactory(status="ready")
    client.force_login(admin_user)
    run_action(client, "retry_stops", stuck, ready)
    assert stuck.events.get().reason == "Stop retried"
    assert ("stop_worker", str(stuck.id)) in fleet.tasks.sent
    runtime.override_probe(lambda workers: [HealthReport("error", 12)] * len(workers))
    try:
        run_action(client, "probe_workers", ready, stuck)
    finally:
        runtime.override_probe(None)
    ready.refresh_from_db(), stuck.refresh_from_db()
    assert (ready.health, ready.health_latency_ms) == ("error", 12)
    assert stuck.health_checked_at is None


def test_an_operator_may_read_but_not_act(client, personas, default_class):
    worker = WorkerFactory(status="ready")
    client.force_login(personas.operator)
    listing = client.get(reverse("admin:workers_worker_changelist"))
    assert listing.status_code == 200
    assert "stop_workers" not in listing.content.decode()
    assert client.get(change_url("worker", worker)).status_code == 200
    run_action(client, "stop_workers", worker)
    worker.refresh_from_db()
    assert worker.status == "ready" and not worker.events.exists()
