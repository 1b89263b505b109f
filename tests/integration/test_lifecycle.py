"""Start and stop through the services, with the fault-injecting backend:
every start and stop reaches a clear end, and a failed stop is recorded,
retried and never blocks deleting the workspace."""

import pytest

from tests.factories import WorkerFactory, WorkspaceFactory
from tests.integration.lifecycle_support import committed
from workers import services, states
from workers.models import Worker, WorkerEvent
from workspaces.models import Workspace
from workspaces.services import workspace_delete, workspace_start, workspace_stop

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def start(workspace, fleet):
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    return worker


def stop(workspace, fleet):
    with committed():
        workspace_stop(workspace=workspace, actor=workspace.owner)
    fleet.tasks.run_all()


def transitions(worker):
    return list(
        worker.events.filter(kind="transition").values_list("from_status", "to_status")
    )


def test_it_starts_a_workspace_to_ready_and_logs_each_transition(fleet, default_class):
    worker = start(WorkspaceFactory(), fleet)
    assert worker.status == states.READY
    assert worker.endpoint == f"http://fake/{worker.id}/"
    assert worker.ready_at and worker.runtime_ref["worker_id"] == str(worker.id)
    assert worker.next_action == states.NEXT_IDLE_STOP
    assert transitions(worker) == [("starting", "ready")]
    assert worker.events.filter(kind="progress").exists()
    assert fleet.backend.calls["launch"] == 1


def test_it_keeps_the_access_token_out_of_the_stored_spec(fleet, default_class):
    worker = start(WorkspaceFactory(), fleet)
    assert worker.access_token
    assert worker.launch_spec["access_token"] == ""
    assert worker.launch_spec["kernel_cull_idle_seconds"] == 3600
    assert worker.launch_spec["kernel_cull_interval_seconds"] == 300
    spec = fleet.backend._read()["specs"][str(worker.id)]
    assert spec["access_token"] == worker.access_token


def test_it_passes_kernel_culling_settings_into_the_spec(
    fleet, default_class, settings
):
    settings.NOTEBOOK_RUNTIME_KERNEL_CULL_IDLE_SECONDS = 1200
    settings.NOTEBOOK_RUNTIME_KERNEL_CULL_INTERVAL_SECONDS = 60
    worker = start(WorkspaceFactory(), fleet)
    assert worker.launch_spec["kernel_cull_idle_seconds"] == 1200
    assert worker.launch_spec["kernel_cull_interval_seconds"] == 60


def test_it_fails_a_start_the_backend_refuses_with_the_sanitized_reason(
    fleet, default_class
):
    fleet.backend.fail("launch", message="image pull failed, token=abc123secret")
    worker = start(WorkspaceFactory(), fleet)
    assert worker.status == states.FAILED
    assert "abc123secret" not in worker.error_detail
    assert "[REDACTED]" in worker.error_detail
    assert transitions(worker) == [("starting", "failed")]


def test_it_retries_a_retryable_launch_until_it_works(fleet, default_class):
    fleet.backend.fail("launch", kind="retryable")
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    sleeps = []

    def heal_after_three():
        sleeps.append(1)
        if len(sleeps) == 3:
            fleet.backend.heal()

    fleet.on_sleep = heal_after_three
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.READY
    assert fleet.backend.calls["launch"] == 4


def test_it_fails_a_start_that_times_out_and_removes_the_runtime(fleet, default_class):
    fleet.backend.set_flag("never_ready", True)
    worker = start(WorkspaceFactory(), fleet)
    assert worker.status == states.FAILED
    assert worker.error_code == "timeout"
    assert "Start timed out after 300 s" in worker.error_detail
    assert not fleet.backend.exists(worker.id)


def test_it_waits_through_unknown_observations(fleet, default_class, settings):
    settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS = 60
    fleet.backend.set_flag("unknown", True)
    worker = start(WorkspaceFactory(), fleet)
    assert worker.status == states.FAILED  # never knew: timed out, not "failed runtime"
    assert worker.error_code == "timeout"
    assert fleet.backend.calls["observe"] > 3


def test_it_survives_an_observe_that_raises(fleet, default_class):
    fleet.backend.fail("observe", kind="timeout")
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    fleet.on_sleep = fleet.backend.heal
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.READY


def test_it_fails_a_start_whose_runtime_dies(fleet, default_class):
    fleet.backend.set_flag("pending_observes", 2)
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    fleet.on_sleep = lambda: fleet.backend.lose(worker.id)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.FAILED
    assert worker.error_code == "runtime_exited"


def test_it_runs_a_redelivered_start_to_the_same_end(fleet, default_class):
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    [(task, worker_id)] = fleet.tasks.take()
    services.worker_start_run(worker_id=worker_id)
    services.worker_start_run(worker_id=worker_id)
    worker.refresh_from_db()
    assert worker.status == states.READY
    assert fleet.backend.runtime_ids() == {str(worker.id)}
    assert transitions(worker) == [("starting", "ready")]


def test_it_stops_a_worker_only_once_the_runtime_is_gone(fleet, default_class):
    workspace = WorkspaceFactory()
    worker = start(workspace, fleet)
    stop(workspace, fleet)
    worker.refresh_from_db()
    assert worker.status == states.STOPPED and worker.stopped_at
    assert not fleet.backend.exists(worker.id)
    assert transitions(worker) == [
        ("starting", "ready"),
        ("ready", "stopping"),
        ("stopping", "stopped"),
    ]


def test_it_keeps_a_failed_stop_stopping_with_the_error_and_a_retry(
    fleet, default_class
):
    workspace = WorkspaceFactory()
    worker = start(workspace, fleet)
    fleet.backend.fail("terminate", kind="timeout", message="route deletion timed out")
    stop(workspace, fleet)
    worker.refresh_from_db()
    assert worker.status == states.STOPPING and worker.stop_failed
    assert "route deletion timed out" in worker.error_detail
    assert worker.next_action == states.NEXT_STOP_RETRY and worker.next_action_at
    assert worker.events.filter(kind="error", reason__startswith="Stop failed").exists()
    fleet.backend.heal()
    with committed():
        services.worker_retry_stop(worker=worker, actor=None)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.STOPPED and not worker.error_code


def test_it_does_not_call_a_stop_done_while_the_runtime_survives(fleet, default_class):
    workspace = WorkspaceFactory()
    worker = start(workspace, fleet)
    fleet.backend.set_flag("sticky", True)
    stop(workspace, fleet)
    worker.refresh_from_db()
    assert worker.status == states.STOPPING
    assert worker.error_code == "stop_unconfirmed"
    assert fleet.backend.exists(worker.id)


def test_it_backs_off_stop_retries(settings):
    settings.NOTEBOOK_RUNTIME_STOP_RETRY_BASE_SECONDS = 30
    settings.NOTEBOOK_RUNTIME_STOP_RETRY_MAX_SECONDS = 600
    delays = [services.stopping.stop_backoff_seconds(n) for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 600, 600]


def test_it_deletes_a_workspace_whose_stop_failed(fleet, default_class):
    workspace = WorkspaceFactory()
    worker = start(workspace, fleet)
    fleet.backend.fail("terminate")
    with committed():
        workspace_delete(workspace=workspace, actor=workspace.owner)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert not Workspace.objects.filter(pk=workspace.pk).exists()
    assert worker.workspace_id is None and worker.name == workspace.name
    assert worker.stop_failed
    assert worker.events.filter(reason__contains="deleted").exists()


def test_it_stops_a_worker_that_is_still_starting(fleet, default_class):
    workspace = WorkspaceFactory()
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
        workspace_stop(workspace=workspace, actor=workspace.owner)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.STOPPED
    assert not fleet.backend.exists(worker.id)


def test_it_refuses_a_transition_the_table_forbids(default_class):
    worker = WorkerFactory(status=states.STOPPED)
    with pytest.raises(services.InvalidTransition):
        services.worker_transition(
            worker_id=worker.id,
            expected=states.STOPPED,
            to=states.READY,
            actor_type="system",
        )


def test_it_writes_nothing_when_the_expected_status_is_stale(default_class):
    worker = WorkerFactory(status=states.READY)
    moved = services.worker_transition(
        worker_id=worker.id,
        expected=states.STARTING,
        to=states.FAILED,
        actor_type="system",
    )
    assert moved is False
    assert Worker.objects.get(id=worker.id).status == states.READY
    assert not WorkerEvent.objects.filter(worker=worker).exists()


def test_it_publishes_a_change_only_after_commit(default_class, monkeypatch):
    published = []
    monkeypatch.setattr(
        services.transitions, "publish_worker_changed", lambda w, o: published.append(w)
    )
    worker = WorkerFactory(status=states.READY)
    with committed(execute=False) as callbacks:
        services.worker_transition(
            worker_id=worker.id,
            expected=states.READY,
            to=states.STOPPING,
            actor_type="admin",
            actor_label="admin",
            reason="maintenance",
        )
        assert published == []
    for callback in callbacks:
        callback()
    assert published == [worker.id]
    event = worker.events.get()
    assert (event.actor_label, event.reason) == ("admin", "maintenance")


def test_it_relaunches_a_stopped_worker_as_its_owner_would(fleet, default_class):
    workspace = WorkspaceFactory()
    first = start(workspace, fleet)
    stop(workspace, fleet)
    first.refresh_from_db()
    with committed():
        second = services.worker_start_again(worker=first, actor=None)
    fleet.tasks.run_all()
    second.refresh_from_db()
    assert second.id != first.id and second.status == states.READY
    assert second.launch_spec["image"] == first.launch_spec["image"]
    with pytest.raises(services.LaunchRefused) as refused:
        services.worker_start_again(worker=second, actor=None)
    assert refused.value.limit == "worker_active"


def test_it_says_start_again_waits_for_a_stop_in_progress(fleet, default_class):
    workspace = WorkspaceFactory()
    stopped = WorkerFactory(workspace=workspace, status=states.STOPPED)
    stopping = WorkerFactory(workspace=workspace, status=states.STOPPING)
    for worker, words in [
        (stopping, "This worker is stopping; wait, or retry the stop."),
        (stopped, "Its workspace is stopping; wait, or retry the stop."),
    ]:
        with pytest.raises(services.LaunchRefused) as refused:
            services.worker_start_again(worker=worker, actor=None)
        assert refused.value.message == words


def test_it_probes_a_worker_now(fleet, default_class):
    worker = start(WorkspaceFactory(), fleet)
    fleet.probe.busy.add(str(worker.id))
    fresh = services.worker_probe_now(worker=worker, actor=None)
    assert fresh.status == states.BUSY and fresh.health == "ready"
    assert fresh.health_checked_at is not None


def test_it_numbers_stop_attempts_and_backs_off_whoever_retries(
    fleet, default_class, settings
):
    """Eager ``apply`` runs Celery's retries inline. Each failed attempt is
    numbered and waits longer than the last; a wait longer than the broker
    holds a message (its visibility timeout) is left to reconcile_workers,
    whose retry counts on from there."""
    from workers.tasks import stop_worker

    settings.NOTEBOOK_RUNTIME_STOP_RETRY_BASE_SECONDS = 30
    settings.NOTEBOOK_RUNTIME_STOP_RETRY_MAX_SECONDS = 1800
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 660}
    workspace = WorkspaceFactory()
    worker = start(workspace, fleet)
    fleet.backend.fail("terminate", kind="retryable")
    with committed():
        workspace_stop(workspace=workspace, actor=workspace.owner)
    fleet.tasks.take()
    assert stop_worker.apply(kwargs={"worker_id": str(worker.id)}).result is False
    assert attempts(worker) == [
        (1, 30),
        (2, 60),
        (3, 120),
        (4, 240),
        (5, 480),
        (6, 960),  # beyond the broker's 660 s: no task retry, reconcile's turn
    ]
    assert fleet.backend.calls["terminate"] == 6
    worker.refresh_from_db()
    assert worker.stop_failed and worker.next_action == states.NEXT_STOP_RETRY
    assert worker.events.filter(
        reason__startswith="Stop failed (attempt 3; next in 120 s)"
    ).exists()
    fleet.clock.shift(961)
    with committed():
        assert services.workers_reconcile(backends=["local"])["local"]["stop_retried"]
    assert attempts(worker)[-1] == (7, 1800)
    assert stop_worker.acks_late and stop_worker.reject_on_worker_lost


def attempts(worker) -> list[tuple[int, int]]:
    """(attempt, seconds to the next) of each failed stop attempt, in order."""
    return [
        (event.data["stop_attempt"], event.data["retry_in"])
        for event in worker.events.filter(kind="error").order_by("at")
    ]


def test_it_deletes_a_workspace_by_id_from_a_task(fleet, default_class):
    from workspaces.tasks import delete_workspace

    workspace = WorkspaceFactory()
    worker = start(workspace, fleet)
    with committed():
        assert delete_workspace.apply(args=[str(workspace.pk)]).result is True
    fleet.tasks.run_all()
    assert delete_workspace.apply(args=[str(workspace.pk)]).result is False
    worker.refresh_from_db()
    assert worker.status == states.STOPPED and worker.workspace_id is None
