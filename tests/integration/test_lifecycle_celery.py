"""The real broker: a Celery worker process killed mid-task (SIGKILL) and
a broker that is down when a request arrives."""

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from config.celery import app
from tests.factories import WorkspaceFactory
from tests.fakes import FakeBackend, FakeProbe
from workers import states
from workers.models import Worker
from workers.services import LaunchRefused, runtime
from workspaces.services import workspace_start

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def spawn_worker(state_path) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "NOTEBOOK_RUNTIME_START_POLL_SECONDS": "0.2",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.celery_worker_main", str(state_path)],
        env=env,
        cwd=django_settings.BASE_DIR,
    )


@pytest.fixture
def shared_backend(tmp_path):
    # Messages left by an earlier run of this test (default queue only).
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    backend = FakeBackend(tmp_path / "runtimes.json")
    runtime.override_backend("local", backend)
    runtime.override_probe(FakeProbe(backend))
    yield backend
    runtime.override_backend("local", None)
    runtime.override_probe(None)


def test_it_finishes_a_start_after_the_celery_worker_is_killed(
    shared_backend, default_class
):
    shared_backend.set_flag("never_ready", True)
    workspace = WorkspaceFactory()
    worker = workspace_start(workspace=workspace, actor=workspace.owner)
    first = spawn_worker(shared_backend.path)
    try:
        wait_for(lambda: shared_backend.calls["observe"] >= 2, what="the start to wait")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert Worker.objects.get(id=worker.id).status == states.STARTING
    shared_backend.clear_flag("never_ready")
    second = spawn_worker(shared_backend.path)
    try:
        wait_for(
            lambda: Worker.objects.get(id=worker.id).status != states.STARTING,
            what="the redelivered start",
        )
    finally:
        second.terminate()
        second.wait(20)
    worker.refresh_from_db()
    assert worker.status == states.READY
    assert shared_backend.calls["launch"] == 2  # redelivered: launched again...
    assert shared_backend.runtime_ids() == {str(worker.id)}  # ...to one runtime
    moves = list(
        worker.events.filter(kind="transition").values_list("to_status", flat=True)
    )
    assert moves == ["ready"]


@pytest.fixture
def broker_down():
    """Point this process's Celery producer at a port nothing listens on."""
    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None
    app.amqp._producer_pool = None
    yield
    app.conf.broker_url = saved
    app._pool = None
    app.amqp._producer_pool = None


def test_it_answers_a_clear_error_and_fails_the_worker_when_redis_is_down(
    shared_backend, default_class, broker_down
):
    workspace = WorkspaceFactory()
    started = time.monotonic()
    with pytest.raises(LaunchRefused) as refused:
        workspace_start(workspace=workspace, actor=workspace.owner)
    assert refused.value.limit == "task_queue"
    assert "task queue is unavailable" in refused.value.message
    worker = Worker.objects.get(workspace=workspace)
    assert (worker.status, worker.error_code) == (
        states.FAILED,
        "task_queue_unavailable",
    )
    assert worker.error_detail.startswith("Task queue unavailable:")
    assert time.monotonic() - started < 30  # a request never hangs on the broker
