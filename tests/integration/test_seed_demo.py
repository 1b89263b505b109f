import pytest
from django.apps import apps
from django.core.management import call_command

from workers import states
from workers.models import Worker

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


def test_the_printed_passwords_log_in(client, capsys):
    call_command("seed_demo")
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    passwords = dict(lines)
    assert set(passwords) == {"admin", "manager", "alice", "bob"}
    assert client.login(username="admin", password=passwords["admin"])
