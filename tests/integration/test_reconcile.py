"""reconcile_workers: one pass brings the database and the backend into
agreement, with one list call per backend and no per-worker reads."""

from datetime import timedelta

import pytest

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.lifecycle_support import committed
from workers import services, states
from workers.models import Worker
from workspaces.services import workspace_start

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def running(fleet, status=states.READY, **kwargs) -> Worker:
    worker = WorkerFactory(status=status, **kwargs)
    ref = fleet.backend.add_runtime(worker.id)
    Worker.objects.filter(id=worker.id).update(runtime_ref=ref)
    worker.refresh_from_db()
    return worker


def reconcile(fleet) -> dict:
    with committed():
        report = services.workers_reconcile(backends=["local"])
    fleet.tasks.run_all()
    return report["local"]


def test_it_lists_each_backend_once_and_leaves_agreement_alone(fleet, default_class):
    workers = [running(fleet) for _ in range(5)]
    report = reconcile(fleet)
    assert report == {
        "listed": 5,
        "active": 5,
        "orphans_terminated": 0,
        "stopped": 0,
        "failed": 0,
        "start_timed_out": 0,
        "stop_retried": 0,
    }
    assert dict(fleet.backend.calls) == {"list_runtimes": 1}
    assert {
        w.status for w in Worker.objects.filter(id__in=[w.id for w in workers])
    } == {states.READY}


def test_it_fails_active_workers_whose_runtime_vanished(fleet, default_class):
    worker = running(fleet, status=states.BUSY)
    fleet.backend.lose(worker.id)
    assert reconcile(fleet)["failed"] == 1
    worker.refresh_from_db()
    assert (worker.status, worker.error_code) == (states.FAILED, "runtime_vanished")
    assert worker.events.get(kind="transition").actor_label == "reconcile_workers"


@pytest.mark.parametrize("status", [states.STARTING, states.READY, states.BUSY])
@pytest.mark.parametrize("exit_code", [137, 0])
def test_it_fails_a_worker_whose_runtime_stopped_in_one_pass(
    fleet, default_class, status, exit_code
):
    """Listed is not running: a runtime that stopped while its worker
    should run fails the worker, whatever the exit code (0 is what an
    engine restart reports), and its leftovers are removed."""
    worker = running(fleet, status=status)
    fleet.backend.crash(worker.id, exit_code=exit_code)
    report = reconcile(fleet)
    assert (report["listed"], report["failed"]) == (1, 1)
    worker.refresh_from_db()
    assert (worker.status, worker.error_code) == (states.FAILED, "runtime_vanished")
    assert f"exit code {exit_code}" in worker.error_detail
    assert not fleet.backend.exists(worker.id)
    event = worker.events.get(kind="transition")
    assert event.actor_label == "reconcile_workers"
    assert event.data["exit_code"] == exit_code


def test_it_leaves_a_stopping_worker_with_a_stopped_runtime_to_its_stop(
    fleet, default_class
):
    worker = running(fleet, status=states.STOPPING)
    fleet.backend.crash(worker.id)
    assert reconcile(fleet)["failed"] == 0
    assert Worker.objects.get(id=worker.id).status == states.STOPPING


def test_it_fails_a_start_past_its_deadline_and_removes_its_runtime(
    fleet, default_class, settings
):
    """The start task was lost (its Celery worker died; the broker redelivers
    only after the visibility timeout): the periodic side enforces the start
    deadline instead, with or without a runtime created."""
    settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = 300
    with_runtime = running(fleet, status=states.STARTING)
    without_runtime = WorkerFactory(status=states.STARTING)
    fleet.clock.shift(timedelta(seconds=299))
    assert reconcile(fleet)["start_timed_out"] == 0
    fleet.clock.shift(timedelta(seconds=2))
    assert reconcile(fleet)["start_timed_out"] == 2
    for worker in (with_runtime, without_runtime):
        worker.refresh_from_db()
        assert (worker.status, worker.error_code) == (states.FAILED, "timeout")
        assert worker.error_detail == "Start timed out after 300 s"
    assert not fleet.backend.exists(with_runtime.id)


def test_it_leaves_a_starting_worker_without_a_runtime_to_its_task(
    fleet, default_class
):
    worker = WorkerFactory(status=states.STARTING)
    assert reconcile(fleet)["failed"] == 0
    assert Worker.objects.get(id=worker.id).status == states.STARTING


def test_it_terminates_orphans_after_the_grace_period(fleet, default_class):
    ended = running(fleet, status=states.READY)
    services.worker_transition(
        worker_id=ended.id, expected=states.READY, to=states.FAILED, actor_type="system"
    )
    fleet.backend.add_runtime("3f0c1f7e-0000-4000-8000-000000000000")  # no row at all
    assert reconcile(fleet)["orphans_terminated"] == 1
    assert fleet.backend.exists(ended.id)
    fleet.clock.shift(timedelta(minutes=6))
    assert reconcile(fleet)["orphans_terminated"] == 1
    assert fleet.backend.runtime_ids() == set()
    assert ended.events.filter(reason__startswith="Orphaned runtime").exists()


def test_it_confirms_stops_whose_runtime_is_gone(fleet, default_class):
    worker = running(fleet, status=states.STOPPING, error_code="stop_internal")
    fleet.backend.lose(worker.id)
    assert reconcile(fleet)["stopped"] == 1
    worker.refresh_from_db()
    assert worker.status == states.STOPPED and worker.error_code == ""


def test_it_retries_failed_stops(fleet, default_class):
    worker = running(fleet, status=states.STOPPING, error_code="stop_internal")
    assert reconcile(fleet)["stop_retried"] == 1
    worker.refresh_from_db()
    assert worker.status == states.STOPPED
    assert not fleet.backend.exists(worker.id)


def test_it_skips_a_backend_whose_list_fails(fleet, default_class):
    worker = running(fleet)
    fleet.backend.fail("list_runtimes", kind="timeout")
    report = services.workers_reconcile(backends=["local"])
    assert "error" in report["local"]
    assert Worker.objects.get(id=worker.id).status == states.READY


def test_it_restores_agreement_after_faults_in_one_pass(fleet, default_class):
    """Faults at each step, then one reconcile: every active worker has a
    runtime, every runtime an active worker (past the grace period)."""
    ready = [running(fleet) for _ in range(3)]
    fleet.backend.lose(ready[0].id)  # vanished
    stuck = running(fleet, status=states.STOPPING)
    fleet.backend.fail("terminate")
    with committed():
        services.worker_request_stop(worker=ready[1], actor_type="user", reason="done")
    fleet.tasks.run_all()  # the stop fails: stuck in stopping
    for _ in range(2):
        ws = WorkspaceFactory()
        with committed():
            workspace_start(workspace=ws, actor=ws.owner)
    fleet.tasks.take()  # their start tasks are lost before they run
    fleet.backend.add_runtime("3f0c1f7e-0000-4000-8000-000000000001")
    fleet.backend.heal()
    fleet.clock.shift(timedelta(minutes=10))
    reconcile(fleet)
    assert_agreement(fleet)
    assert Worker.objects.get(id=stuck.id).status == states.STOPPED


def assert_agreement(fleet) -> None:
    with_runtime = set(
        str(i)
        for i in Worker.objects.filter(status__in=states.ACTIVE_STATUSES)
        .exclude(runtime_ref={})
        .values_list("id", flat=True)
    )
    assert fleet.backend.runtime_ids() == with_runtime


def test_it_waits_for_a_failed_stops_backoff_before_retrying(fleet, default_class):
    from django.utils import timezone

    worker = running(
        fleet,
        status=states.STOPPING,
        error_code="stop_internal",
        next_action=states.NEXT_STOP_RETRY,
        next_action_at=timezone.now() + timedelta(minutes=4),
    )
    assert reconcile(fleet)["stop_retried"] == 0
    fleet.clock.shift(timedelta(minutes=5))
    assert reconcile(fleet)["stop_retried"] == 1
    assert Worker.objects.get(id=worker.id).status == states.STOPPED
