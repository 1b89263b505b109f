import re
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.http import HttpRequest

from accounts.models import User
from workers import states
from workers.backends.base import LaunchSpec
from workers.models import Worker
from workspaces.demo import PLAN_TIMEZONE, demo_window_rules
from workspaces.plan_windows import window_state
from workspaces.services import workspaces_reap_plan_windows

pytestmark = pytest.mark.django_db

MODELS = [
    "accounts.User",
    "resource_classes.ResourceClass",
    "workspaces.Group",
    "workspaces.Project",
    "workspaces.Plan",
    "workspaces.SchedulingQueue",
    "workspaces.Volume",
    "workspaces.Workspace",
    "workspaces.WorkspaceMount",
    "workers.Worker",
    "workers.WorkerEvent",
]


def row_ids():
    return {
        m: set(apps.get_model(m).objects.values_list("pk", flat=True)) for m in MODELS
    }


def test_it_is_idempotent(capsys):
    call_command("seed_demo")
    first = row_ids()
    first_out = capsys.readouterr().out
    call_command("seed_demo")
    assert row_ids() == first
    assert capsys.readouterr().out == first_out  # the same passwords are printed again


def test_it_covers_every_status_a_failure_and_a_stale_worker():
    call_command("seed_demo")
    assert set(Worker.objects.values_list("status", flat=True)) == set(states.STATUSES)
    failed = Worker.objects.get(status="failed")
    assert failed.error_code and failed.error_detail
    assert Worker.objects.stale().exists()


def test_every_workspace_was_created_before_its_first_start():
    call_command("seed_demo")
    for worker in Worker.objects.select_related("workspace"):
        assert worker.workspace.created_at < worker.created_at, worker.name


def test_the_printed_passwords_log_in(client, capsys):
    call_command("seed_demo")
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    passwords = dict(lines)
    assert set(passwords) == {"admin", "operator", "manager", "alice", "bob"}
    # django-axes reads the client's address from the request.
    assert client.login(
        request=HttpRequest(), username="admin", password=passwords["admin"]
    )


def test_the_operator_may_view_workers_but_not_act():
    call_command("seed_demo")
    operator = User.objects.get(username="operator")
    assert operator.is_staff and not operator.is_superuser
    assert operator.has_perm("workers.view_worker")
    assert not operator.has_perm("workers.manage_worker")
    admin = User.objects.get(username="admin")
    assert admin.has_perm("workers.manage_worker")
    assert admin.has_perm("workers.access_server")


def test_every_demo_worker_has_a_launch_spec_of_its_workspace():
    call_command("seed_demo")
    for worker in Worker.objects.select_related("workspace"):
        spec = LaunchSpec.from_json(worker.launch_spec)
        assert spec.worker_id == str(worker.id)
        assert spec.workspace_id == str(worker.workspace_id)
        assert spec.image == worker.workspace.image


def test_a_rerun_gives_older_demo_rows_their_launch_spec():
    call_command("seed_demo")
    Worker.objects.update(launch_spec={})
    call_command("seed_demo")
    assert not Worker.objects.filter(launch_spec={}).exists()


def start_again(client, worker):
    response = client.post(
        f"/admin/notebook-workers/{worker.id}/start-again/", HTTP_HX_REQUEST="true"
    )
    # The outcome is its own out-of-band message: "<strong>Worker …:</strong> text".
    outcome = re.search(
        r'class="outcome error"[^>]*>.*?</strong>\s*([^<]+)<',
        response.content.decode(),
        re.S,
    )
    return response.status_code, outcome.group(1).strip() if outcome else ""


@pytest.mark.needs_postgres
def test_start_again_on_any_demo_worker_says_why_it_cannot(client, nothing_configured):
    call_command("seed_demo")
    client.force_login(User.objects.get(username="admin"))
    for worker in Worker.objects.all():
        status, message = start_again(client, worker)
        assert status == 409 and message, worker.name
    # Once the active rows are gone, the history rows name their backend.
    Worker.objects.filter(status__in=states.ACTIVE_STATUSES).delete()
    for worker in Worker.objects.all():
        status, message = start_again(client, worker)
        assert status == 409
        assert f"ran on the {worker.backend} backend, which is not available" in message
    assert Worker.objects.filter(status="starting").count() == 0


def test_the_plan_window_reaper_leaves_the_demo_running():
    call_command("seed_demo")
    running = set(Worker.objects.filter(status__in=states.ACTIVE_STATUSES))
    assert Worker.objects.filter(plan_bound=True, status="busy").exists()
    assert workspaces_reap_plan_windows()["stopped"] == 0
    assert set(Worker.objects.filter(status__in=states.ACTIVE_STATUSES)) == running


@pytest.mark.parametrize("hour", [0, 7, 13, 22, 23])
def test_the_demo_window_is_open_for_hours_after_seeding_at_any_time(hour):
    now = datetime(2026, 11, 28, hour, 30, tzinfo=UTC)  # a Saturday
    rules = demo_window_rules(now)
    for later in (timedelta(0), timedelta(hours=7, minutes=59)):
        state = window_state(
            kind="weekly", now=now + later, tz_name=PLAN_TIMEZONE, rules=rules
        )
        assert state.open
