"""The real broker with its production settings: a Celery worker process
killed mid-task (SIGKILL), a broker that is down when a request arrives, and
what a worker logs at ``-l info``."""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from config.celery import app
from tests.backends.conftest import wait_until
from tests.factories import WorkerFactory, WorkspaceFactory
from tests.fakes import FakeBackend, FakeProbe
from workers import services, states, tasks
from workers.models import Worker
from workers.services import LaunchRefused, runtime
from workers.services.starting import start_deadline
from workspaces.services import workspace_start

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres,
    pytest.mark.needs_redis,
]


def spawn_worker(state_path, *, loglevel="WARNING", output=None) -> subprocess.Popen:
    """A Celery worker process with the production settings (no broker
    option of its own); its output goes to the file ``output`` if given."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "NOTEBOOK_RUNTIME_START_POLL_SECONDS": "0.2",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_TEST_LOGLEVEL": loglevel,
    }
    stream = open(output, "w") if output else None  # noqa: SIM115 - child's
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.celery_worker_main",
                str(state_path),
            ],
            env=env,
            cwd=django_settings.BASE_DIR,
            stdout=stream,
            stderr=subprocess.STDOUT if stream else None,
        )
    finally:
        if stream:
            stream.close()


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


def test_the_broker_holds_a_message_longer_than_any_task_runs():
    """A message redelivered while its task still runs would run it twice:
    the visibility timeout is derived from the time limits, above them all."""
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    limits = {
        name: task.time_limit or app.conf.task_time_limit
        for name, task in app.tasks.items()
        if name.startswith(("workers.", "workspaces."))
    }
    assert limits and max(limits.values()) <= django_settings.CELERY_TASK_TIME_LIMIT
    assert visibility > django_settings.CELERY_TASK_TIME_LIMIT


def test_it_fails_a_start_lost_with_its_celery_worker_at_the_start_deadline(
    shared_backend, default_class
):
    """The production broker setting: the message of a start whose Celery
    worker was SIGKILLed stays unacked until the visibility timeout, which
    exceeds every task's time limit (a running task is never delivered
    twice). Nothing waits for it: at the start deadline reconcile_workers
    fails the start and removes its runtime; the user starts again."""
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > django_settings.CELERY_TASK_TIME_LIMIT
    shared_backend.set_flag("never_ready", True)
    workspace = WorkspaceFactory()
    worker = workspace_start(workspace=workspace, actor=workspace.owner)
    first = spawn_worker(shared_backend.path)
    try:
        wait_until(
            lambda: shared_backend.calls["observe"] >= 2, what="the start to wait"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    assert broker.hlen("unacked") == 1  # held for the visibility timeout
    assert Worker.objects.get(id=worker.id).status == states.STARTING

    past_deadline = start_deadline(worker.created_at) + timedelta(seconds=1)
    report = services.workers_reconcile(now=past_deadline, backends=["local"])

    assert report["local"]["start_timed_out"] == 1
    worker.refresh_from_db()
    assert (worker.status, worker.error_code) == (states.FAILED, "timeout")
    assert shared_backend.runtime_ids() == set()  # its runtime removed
    launches = shared_backend.calls["launch"]
    assert services.worker_start_run(worker_id=worker.id) == states.FAILED
    assert shared_backend.calls["launch"] == launches  # a late redelivery: no-op

    shared_backend.clear_flag("never_ready")
    again = workspace_start(workspace=workspace, actor=workspace.owner)
    second = spawn_worker(shared_backend.path)
    try:
        wait_until(
            lambda: Worker.objects.get(id=again.id).status != states.STARTING,
            what="the new start",
        )
    finally:
        second.terminate()
        second.wait(20)
    assert Worker.objects.get(id=again.id).status == states.READY
    assert shared_backend.runtime_ids() == {str(again.id)}


def test_a_celery_worker_at_info_logs_the_tasks_it_runs(
    shared_backend, default_class, tmp_path
):
    """``celery worker -l info`` shows each task received, succeeded and
    retried (LOGGING does not pin celery above the configured level)."""
    stuck = WorkerFactory(status=states.STOPPING)
    ref = shared_backend.add_runtime(stuck.id)
    Worker.objects.filter(id=stuck.id).update(runtime_ref=ref)
    shared_backend.fail("terminate", kind="retryable")
    log = tmp_path / "worker.log"
    process = spawn_worker(shared_backend.path, loglevel="INFO", output=log)
    try:
        tasks.reap_idle.apply_async()
        tasks.stop_worker.apply_async(kwargs={"worker_id": str(stuck.id)})
        wait_until(lambda: " retry: " in log.read_text(), what="the log lines")
    finally:
        process.terminate()
        process.wait(20)
    text = log.read_text()
    task_id = r"\[[0-9a-f-]{36}\]"
    assert re.search(rf"Task workers\.tasks\.reap_idle{task_id} received", text)
    assert re.search(rf"Task workers\.tasks\.reap_idle{task_id} succeeded in", text)
    assert re.search(rf"Task workers\.tasks\.stop_worker{task_id} retry: .* 30s", text)


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
