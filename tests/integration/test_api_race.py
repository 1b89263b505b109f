"""50 concurrent POST /api/v1/ide by one user whose per-user limit is 3:
exactly 3 created and started (201), 47 refused with 409 naming the limit,
and nothing left behind by the refused ones. Real PostgreSQL, one
connection per thread, real commits (``transaction=True``)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.integration.api_support import API, ApiClient
from tests.integration.workspace_support import IMAGE
from workers.models import Worker
from workspaces.models import Workspace

pytest_plugins = [
    "tests.integration.api_support",
    "tests.integration.workspace_support",
]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_postgres]

CLIENTS = 50


def test_50_concurrent_creates_get_exactly_the_limit(
    world, alice, api_token, tasks, settings
):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 3
    barrier = threading.Barrier(CLIENTS)

    def create(n: int):
        client = ApiClient(token=api_token)
        body = {"project": str(world.personal.pk), "name": f"race-{n}", "image": IMAGE}
        barrier.wait()
        try:
            response = client.post_json(f"{API}/ide", body)
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(create, range(CLIENTS)))
    created = [body for status, body in results if status == 201]
    refused = [body for status, body in results if status == 409]
    assert (len(created), len(refused)) == (3, 47), [s for s, _ in results]
    assert {r["limit"] for r in refused} == {"max_workers_per_user"}
    assert all("3 of 3 workers running" in r["detail"] for r in refused)
    assert Workspace.objects.filter(owner=alice).count() == 3
    assert Worker.objects.filter(owner=alice).count() == 3
    assert sorted(task for task, _ in tasks.sent) == ["start_worker"] * 3
