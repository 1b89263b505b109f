"""/metrics with several processes: two ``manage.py serve`` web processes
and a Celery worker process, on the test database and the real Redis. The
worker starts and stops a workspace and runs a reconcile pass; a scrape of
either web process shows all of it (database gauges, event-log counters,
the Redis-shared task counters) with the same numbers, while HTTP latency
is each process's own."""

import os
import subprocess
import sys

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from ops import metric_defs, shared_counters
from tests.backends.conftest import wait_until
from tests.factories import WorkspaceFactory
from tests.integration.metrics_support import TOKEN, delta, samples_of, value
from tests.integration.proxy_support import free_port
from tests.integration.test_lifecycle_celery import (  # noqa: F401 - a fixture
    shared_backend,
    spawn_worker,
)
from workers import states, tasks
from workers.models import Worker
from workspaces.services import workspace_start, workspace_stop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]
# Every series that is not per process: the database, the event log, Redis.
SHARED_NAMES = {
    name
    for metric in metric_defs.ALL
    if metric.source != metric_defs.PROCESS
    for name in metric.exported_names
}
TASKS = "notebook_celery_tasks_total"


def spawn_server(port: int, log) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "METRICS_TOKEN": TOKEN,
        "SECURE_HTTPS": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one registry per process
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def two_servers(tmp_path):
    """Base URLs of two web processes, once both answer /readyz."""
    ports = [free_port(), free_port()]
    with open(tmp_path / "serve.log", "w") as log:
        servers = [spawn_server(port, log) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            wait_until(lambda url=url: _ready(url), what=f"{url}/readyz", timeout=90)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(20)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def scrape(url: str) -> dict:
    response = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return samples_of(response.text)


def shared_series(samples: dict) -> dict:
    return {key: v for key, v in samples.items() if key[0] in SHARED_NAMES}


def status_of(worker) -> str:
    return Worker.objects.get(id=worker.id).status


def test_either_web_process_reports_what_the_celery_worker_did(
    shared_backend,  # noqa: F811 - the imported fixture
    default_class,
    two_servers,
):
    shared_counters.reset()
    celery = spawn_worker(shared_backend.path)
    try:
        before = [scrape(url) for url in two_servers]
        workspace = WorkspaceFactory()
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
        wait_until(lambda: status_of(worker) == states.READY, what="the start")
        workspace_stop(workspace=workspace, actor=workspace.owner)
        wait_until(lambda: status_of(worker) == states.STOPPED, what="the stop")
        tasks.reconcile_workers.apply_async()
        runs = "notebook_reconcile_runs_total"
        wait_until(
            lambda: value(scrape(two_servers[0]), runs, outcome="success") == 1,
            what="the reconcile pass",
        )
    finally:
        celery.terminate()
        celery.wait(20)
    for url, visits in zip(two_servers, (3, 1), strict=True):
        for _ in range(visits):
            httpx.get(f"{url}/healthz", timeout=10)
    after = [scrape(url) for url in two_servers]

    for earlier, later in zip(before, after, strict=True):
        starts = "notebook_worker_starts_total"
        assert delta(earlier, later, starts, backend="local", outcome="ready") == 1
        stops = "notebook_worker_stop_duration_seconds_count"
        assert delta(earlier, later, stops, backend="local") == 1
        for task in ("start_worker", "stop_worker", "reconcile_workers"):
            name = f"workers.tasks.{task}"
            assert delta(earlier, later, TASKS, task=name, outcome="success") == 1
        assert delta(earlier, later, runs, outcome="success") == 1
    assert shared_series(after[0]) == shared_series(after[1])
    latency = "notebook_http_request_duration_seconds_count"
    healthz = {"view": "healthz", "method": "GET", "status": "2xx"}
    seen = [delta(b, a, latency, **healthz) for b, a in zip(before, after, strict=True)]
    assert seen == [3, 1]  # each process counts only what it served
