"""Console actions: POST + CSRF + staff, audited with the admin as actor,
answered with the updated row."""

import pytest
from django.test import Client

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.console_support import CONSOLE
from workers.backends.base import LaunchSpec, Resources
from workers.models import Worker, WorkerEvent
from workers.services import runtime
from workers.services.runtime import HealthReport

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def url(worker, action: str) -> str:
    return f"{CONSOLE}{worker.id}/{action}/"


def htmx_post(client, worker, action: str):
    return client.post(url(worker, action), HTTP_HX_REQUEST="true")


def launch_spec(worker: Worker) -> dict:
    resources = Resources(500, 2000, 2**30, 2**32)
    return LaunchSpec(
        worker_id=str(worker.id),
        workspace_id=str(worker.workspace_id),
        owner=worker.owner.username,
        owner_id=str(worker.owner_id),
        image="jupyter/base-notebook:4.2",
        ide_kind="jupyterlab",
        base_url=f"/w/{worker.workspace_id}/",
        access_token="spec-token",
        resources=resources,
    ).to_json()


def test_it_needs_the_csrf_token(admin_user, default_class):
    worker = WorkerFactory(status="ready")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    refused = client.post(url(worker, "stop"), HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    worker.refresh_from_db()
    assert worker.status == "ready" and not worker.events.exists()

    client.get(CONSOLE)  # sets the csrftoken cookie, as the page does
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        url(worker, "stop"), HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 200
    worker.refresh_from_db()
    assert worker.status == "stopping"


@pytest.mark.parametrize("action", ["stop", "retry-stop", "probe", "start-again"])
def test_non_staff_cannot_act(client, alice, default_class, action):
    worker = WorkerFactory(status="ready")
    client.force_login(alice)
    response = client.post(url(worker, action), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert not WorkerEvent.objects.filter(worker=worker).exists()


def test_stop_audits_the_admin_and_returns_the_row(
    staff_client, admin_user, default_class
):
    worker = WorkerFactory(status="busy")
    response = htmx_post(staff_client, worker, "stop")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="worker-{worker.id}"')
    assert "badge status-stopping" in html and "Stop requested." in html
    event = WorkerEvent.objects.get(worker=worker, to_status="stopping")
    assert (event.actor, event.actor_type) == (admin_user, "admin")


def test_retry_stop_audits_the_admin(staff_client, admin_user, default_class):
    worker = WorkerFactory(status="stopping", error_code="gateway_unreachable")
    response = htmx_post(staff_client, worker, "retry-stop")
    assert response.status_code == 200 and "Stop retried." in response.content.decode()
    event = WorkerEvent.objects.get(worker=worker, reason="Stop retried")
    assert event.actor == admin_user


def test_probe_now_shows_the_fresh_health(staff_client, default_class):
    worker = WorkerFactory(status="ready", endpoint="http://127.0.0.1:9/w/x/")
    runtime.override_probe(lambda workers: [HealthReport("error", 12)] * len(workers))
    try:
        response = htmx_post(staff_client, worker, "probe")
    finally:
        runtime.override_probe(None)
    html = response.content.decode()
    assert "Probed: error." in html and "badge health-error" in html


def test_start_again_launches_as_the_admin(staff_client, admin_user, default_class):
    worker = WorkerFactory(status="stopped")
    Worker.objects.filter(pk=worker.pk).update(launch_spec=launch_spec(worker))
    response = htmx_post(staff_client, worker, "start-again")
    new = Worker.objects.exclude(pk=worker.pk).get(workspace=worker.workspace)
    assert response.status_code == 200
    assert f"Started again as worker {new.short_id}." in response.content.decode()
    assert new.status == "starting" and new.owner == worker.owner
    assert WorkerEvent.objects.filter(worker=new, actor=admin_user).exists()


def test_a_refused_start_again_shows_the_limit(staff_client, alice, default_class):
    worker = WorkerFactory(workspace=WorkspaceFactory(owner=alice), status="failed")
    Worker.objects.filter(pk=worker.pk).update(launch_spec=launch_spec(worker))
    for _ in range(3):
        WorkerFactory(workspace=WorkspaceFactory(owner=alice), status="ready")
    response = htmx_post(staff_client, worker, "start-again")
    html = response.content.decode()
    assert response.status_code == 409
    assert 'class="outcome error"' in html and "NOTEBOOK_RUNTIME_MAX_WORKERS" in html
    assert Worker.objects.filter(owner=alice).count() == 4


def spec_without(worker: Worker, key: str) -> dict:
    spec = launch_spec(worker)
    del spec[key]
    return spec


OLD_SPECS = [
    ("empty", lambda w: {}, "This worker has no launch spec"),
    ("no resources", lambda w: spec_without(w, "resources"), "'resources' is missing"),
    ("old shape", lambda w: {"image": "x", "cpu": 2}, "older format"),
    ("bad resources", lambda w: {**launch_spec(w), "resources": "2 CPU"}, "older"),
    ("mistyped", lambda w: {**launch_spec(w), "port": "8888"}, "'port' is not int"),
]


@pytest.mark.parametrize(
    ("stored", "message"), [c[1:] for c in OLD_SPECS], ids=[c[0] for c in OLD_SPECS]
)
def test_start_again_without_a_readable_spec_says_so_in_the_row(
    staff_client, default_class, stored, message
):
    worker = WorkerFactory(status="failed")
    Worker.objects.filter(pk=worker.pk).update(launch_spec=stored(worker))
    response = htmx_post(staff_client, worker, "start-again")
    html = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 409
    assert 'class="outcome error"' in html and message in html
    assert "start its workspace instead" in html
    assert Worker.objects.filter(workspace=worker.workspace).count() == 1


@pytest.mark.parametrize("backend", ["external", "kubernetes", "docker"])
def test_start_again_on_a_backend_not_configured_here_says_why(
    staff_client, default_class, nothing_configured, backend
):
    worker = WorkerFactory(status="stopped", backend=backend)
    Worker.objects.filter(pk=worker.pk).update(launch_spec=launch_spec(worker))
    response = htmx_post(staff_client, worker, "start-again")
    html = response.content.decode()
    assert response.status_code == 409
    assert f"ran on the {backend} backend, which is not available here" in html
    assert Worker.objects.filter(workspace=worker.workspace).count() == 1


def test_without_htmx_an_action_redirects_back(staff_client, default_class):
    worker = WorkerFactory(status="ready")
    next_url = f"{CONSOLE}?backend=local"
    response = staff_client.post(url(worker, "stop"), {"next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    evil = staff_client.post(url(worker, "probe"), {"next": "https://evil.example/"})
    assert evil["Location"] == CONSOLE


def test_actions_are_post_only_and_named(staff_client, default_class):
    worker = WorkerFactory(status="ready")
    assert staff_client.get(url(worker, "stop")).status_code == 405
    assert staff_client.post(url(worker, "explode")).status_code == 404


def test_the_outcome_goes_out_of_band_and_the_row_is_the_workers_alone(
    staff_client, default_class
):
    """The socket re-renders the same row a moment later: an outcome inside
    the row vanished with it (issue 8, item 22)."""
    worker = WorkerFactory(status="ready", name="nb-22")
    response = htmx_post(staff_client, worker, "stop")
    row, _, after = response.content.decode().partition("</tr>")
    assert "badge status-stopping" in row and "Stop requested." not in row
    assert after.strip().startswith("<template>")
    assert '<div id="action-outcome"' in after and 'hx-swap-oob="innerHTML"' in after
    assert f"{worker.short_id}</code> · nb-22:</strong> Stop requested." in after


def test_without_htmx_the_outcome_is_a_message_on_the_next_page(
    staff_client, default_class
):
    worker = WorkerFactory(status="ready")
    response = staff_client.post(url(worker, "stop"), follow=True)
    assert f"Worker {worker.short_id}: Stop requested." in response.content.decode()
