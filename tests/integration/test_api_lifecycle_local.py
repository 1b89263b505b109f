"""End to end through the API with a real runtime: create a workspace with
POST /api/v1/ide, the local backend launches a real Jupyter Server, the
probe sees it ready (Running); stop; start again; delete. The start and stop
task bodies run as Celery would run them, in this process."""

import psutil
import pytest
from django.test import TestCase

from tests.integration import test_lifecycle_local
from tests.integration.api_support import API
from tests.integration.workspace_support import IMAGE
from workers.models import Worker

pytest_plugins = [
    "tests.integration.api_support",
    "tests.integration.workspace_support",
]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
# The local backend in a temporary folder, as the service-level test uses it.
local_backend = test_lifecycle_local.local_backend


def call(tasks, method, path, body=None):
    """One API call, committed (its tasks enqueued), then the tasks run."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = method(path, body, content_type="application/json")
    tasks.run_all()
    return response


def test_create_run_stop_start_again_and_delete_through_the_api(
    api, world, tasks, local_backend
):
    created = call(tasks, api.post, f"{API}/ide", {"name": "e2e", "image": IMAGE})
    assert created.status_code == 201, created.json()
    url = f"{API}/ide/{created.json()['id']}"
    first = api.get(url).json()
    assert first["status"] == "Running", api.get(f"{url}/events").json()
    assert first["worker"]["health"] == "ready"
    pid = Worker.objects.get(pk=first["worker"]["id"]).runtime_ref["extra"]["pid"]
    assert psutil.pid_exists(pid)

    assert call(tasks, api.post, f"{url}/stop").status_code == 202
    assert api.get(url).json()["status"] == "Stopped"
    assert local_backend.list_managed() == []

    assert call(tasks, api.post, f"{url}/start").status_code == 202
    again = api.get(url).json()
    assert again["status"] == "Running"
    assert again["worker"]["id"] != first["worker"]["id"]
    assert len(local_backend.list_managed()) == 1

    assert call(tasks, api.delete, url).status_code == 204
    assert api.get(url).status_code == 404
    assert local_backend.list_managed() == []
    events = Worker.objects.get(pk=again["worker"]["id"]).events.values_list(
        "reason", flat=True
    )
    assert any("deleted" in reason for reason in events)
