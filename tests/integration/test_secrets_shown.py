"""Secrets in error detail, event reasons and metadata never reach a page or
a log (issue 8 items 1 and 2): stored sanitized, and shown through the one
display path (``workers.sanitize.redact``) that sanitizes again. (Log lines
are sanitized by ``ops.logs.SanitizeFilter``; a Celery worker's own handlers
get it too, see tests/unit/test_sanitize.py.)"""

import pytest
from django.urls import reverse

from tests.factories import WorkerFactory, WorkspaceFactory
from workers import states
from workers.models import Worker
from workers.services import worker_record_event, worker_transition

pytest_plugins = ["tests.integration.workspace_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]

REDIS_SECRET, CLI_SECRET = "redispassSECRET18", "clipwSECRET17"
DETAIL = (
    f"connect redis://:{REDIS_SECRET}@redis:6379/0 failed; "
    f"retry with --password {CLI_SECRET}"
)
TOKEN = "tok-Own-Worker-0123456789abcdef"
SECRETS = (REDIS_SECRET, CLI_SECRET, TOKEN)


@pytest.fixture
def alice_worker(world, alice):
    workspace = WorkspaceFactory(project=world.personal, owner=alice, name="etl")
    return WorkerFactory(workspace=workspace, status="starting", access_token=TOKEN)


def fail(worker: Worker, detail: str = DETAIL) -> None:
    moved = worker_transition(
        worker_id=worker.id,
        expected=states.STARTING,
        to=states.FAILED,
        actor_type="backend",
        actor_label="start_worker",
        reason=f"Start failed: {detail} (token {TOKEN})",
        fields={"error_code": "redis_down", "error_detail": detail},
    )
    assert moved


def assert_no_secret(html: str) -> None:
    for secret in SECRETS:
        assert secret not in html
    assert "[REDACTED]" in html  # the failure is shown, redacted


def test_its_owner_sees_neither_secret_on_the_workspaces_page(
    client, alice, alice_worker
):
    fail(alice_worker)
    client.force_login(alice)
    response = client.get(reverse("workspaces:list"))
    assert response.status_code == 200
    assert_no_secret(response.content.decode())


def test_the_pages_redact_detail_stored_before_the_sanitizer_knew_the_format(
    client, alice, alice_worker, admin_user
):
    fail(alice_worker, detail="starting")
    Worker.objects.filter(pk=alice_worker.pk).update(error_detail=DETAIL)
    alice_worker.events.update(reason=f"raw {DETAIL} {TOKEN}")
    client.force_login(alice)
    assert_no_secret(client.get(reverse("workspaces:list")).content.decode())
    detail = reverse("workspaces:detail", args=[alice_worker.workspace_id])
    assert_no_secret(client.get(detail).content.decode())
    client.force_login(admin_user)
    console = reverse("console:detail", args=[alice_worker.id])
    assert_no_secret(client.get(console).content.decode())


def test_the_console_detail_shows_metadata_and_reasons_redacted(
    client, admin_user, alice_worker
):
    Worker.objects.filter(pk=alice_worker.pk).update(
        gateway_metadata={"note": f"node up; {DETAIL}", "gw": "gw-1"},
        runtime_ref={"name": "nb-1", "url": f"redis://:{REDIS_SECRET}@r:1/0"},
        endpoint=f"http://127.0.0.1:8888/w/etl/?token={TOKEN}",
    )
    fail(alice_worker)
    client.force_login(admin_user)
    html = client.get(reverse("console:detail", args=[alice_worker.id]))
    html = html.content.decode()
    assert_no_secret(html)
    assert "gw-1" in html and "nb-1" in html and "127.0.0.1:8888" in html


def test_event_reasons_are_stored_without_the_workers_own_token(alice_worker):
    fail(alice_worker)
    worker_record_event(
        worker_id=alice_worker.id,
        kind="error",
        actor_type="system",
        reason=f"gateway said: invalid credentials {TOKEN}",
        data={"echo": TOKEN},
    )
    stored = list(alice_worker.events.values_list("reason", "data"))
    assert len(stored) == 2
    for reason, data in stored:
        assert_no_secret(f"{reason} {data}")
    alice_worker.refresh_from_db()
    assert alice_worker.error_detail == (
        "connect redis://[REDACTED]@redis:6379/0 failed; "
        "retry with --password [REDACTED]"
    )
