"""Limits and state changes under real concurrency: threads with their own
PostgreSQL connections, committing for real (``transaction=True``)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from tests.factories import ProjectFactory, UserFactory, WorkerFactory, WorkspaceFactory
from tests.integration.lifecycle_support import gpu_plan, gpu_workspace
from workers import services, states
from workers.models import Worker, WorkerEvent
from workspaces.services import workspace_start, workspace_stop

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_postgres]


def race(calls: list) -> list:
    """Run each zero-argument call in its own thread, released together;
    returns each call's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the race result
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def starter(workspace):
    return lambda: workspace_start(workspace=workspace, actor=workspace.owner)


def test_it_accepts_exactly_the_limit_of_50_concurrent_launches(
    fleet, default_class, settings
):
    settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER = 3
    owner = UserFactory()
    projects = [ProjectFactory(personal_owner=owner) for _ in range(5)]
    workspaces = [
        WorkspaceFactory(project=projects[n % 5], owner=owner) for n in range(50)
    ]
    results = race([starter(ws) for ws in workspaces])
    accepted = [r for r in results if isinstance(r, Worker)]
    refused = [r for r in results if isinstance(r, services.LaunchRefused)]
    assert len(accepted) == 3 and len(refused) == 47
    assert {r.limit for r in refused} == {"max_workers_per_user"}
    assert Worker.objects.filter(owner=owner).count() == 3
    assert len(fleet.tasks.sent) == 3


def test_it_gives_the_last_gpu_to_exactly_one_of_the_racing_projects(
    fleet, default_class, settings
):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 1}
    plan = gpu_plan()
    contenders = [
        gpu_workspace(project=ProjectFactory(plan=plan, gpu_quota=Decimal(4)))
        for _ in range(8)
    ]
    results = race([starter(ws) for ws in contenders])
    assert sum(isinstance(r, Worker) for r in results) == 1
    losers = [r for r in results if isinstance(r, services.LaunchRefused)]
    assert len(losers) == 7 and {r.limit for r in losers} == {"gpu_capacity"}
    assert Worker.objects.filter(gpu_model="RTX 5090").count() == 1


def test_it_stops_once_when_two_stops_race(fleet, default_class):
    worker = WorkerFactory(status=states.READY)
    Worker.objects.filter(id=worker.id).update(
        runtime_ref=fleet.backend.add_runtime(worker.id)
    )
    race(
        [
            lambda: services.worker_request_stop(
                worker=worker, actor_type="user", reason="stop A"
            ),
            lambda: services.worker_request_stop(
                worker=worker, actor_type="admin", reason="stop B"
            ),
        ]
    )
    assert fleet.tasks.take() == [("stop_worker", str(worker.id))]
    race([lambda: services.worker_stop_run(worker_id=worker.id) for _ in range(2)])
    moves = list(
        WorkerEvent.objects.filter(worker=worker, kind="transition").values_list(
            "from_status", "to_status"
        )
    )
    assert moves == [("ready", "stopping"), ("stopping", "stopped")]
    assert not fleet.backend.exists(worker.id)


def test_it_ends_a_start_racing_a_stop_stopped_with_no_runtime(fleet, default_class):
    fleet.backend.set_flag("pending_observes", 5)
    fleet.on_sleep = lambda: time.sleep(0.02)
    workspace = WorkspaceFactory()
    worker = workspace_start(workspace=workspace, actor=workspace.owner)
    [(_, worker_id)] = fleet.tasks.take()

    def stop_soon():
        time.sleep(0.05)
        workspace_stop(workspace=workspace, actor=workspace.owner)
        return services.worker_stop_run(worker_id=worker_id)

    race([lambda: services.worker_start_run(worker_id=worker_id), stop_soon])
    fleet.tasks.run_all()
    worker.refresh_from_db()
    assert worker.status == states.STOPPED
    assert not fleet.backend.exists(worker.id)
    moves = list(
        worker.events.filter(kind="transition").values_list("to_status", flat=True)
    )
    assert moves[-2:] == ["stopping", "stopped"] and moves.count("stopped") == 1
