"""Reapers and probes on a frozen clock: idle stops (with the warning the
page shows), plan windows, stale workers and preemption order."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.factories import (
    ProjectFactory,
    ResourceClassFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.integration.lifecycle_support import (
    committed,
    gpu_plan,
    gpu_workspace,
    queue,
)
from workers import services, states
from workers.models import Worker
from workspaces.models import Plan
from workspaces.selectors import worker_idle_warning
from workspaces.services import workspace_start, workspaces_reap_plan_windows

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def start(workspace, fleet) -> Worker:
    with committed():
        worker = workspace_start(workspace=workspace, actor=workspace.owner)
    fleet.tasks.run_all()
    worker.refresh_from_db()
    return worker


def reap_idle(fleet):
    with committed():
        result = services.workers_reap_idle()
    fleet.tasks.run_all()
    return result


def test_it_warns_then_stops_an_idle_worker(fleet, default_class):
    worker = start(WorkspaceFactory(), fleet)
    stop_at = worker.next_action_at
    assert worker.next_action == states.NEXT_IDLE_STOP
    assert stop_at == worker.ready_at + timedelta(hours=1)
    fleet.clock.shift(timedelta(minutes=49))
    assert worker_idle_warning(worker) is None
    fleet.clock.shift(timedelta(minutes=2))
    assert worker_idle_warning(worker) == stop_at
    reap_idle(fleet)
    assert Worker.objects.get(id=worker.id).status == states.READY
    fleet.clock.shift(timedelta(minutes=10))
    assert reap_idle(fleet)["stopped"] == 1
    worker.refresh_from_db()
    assert worker.status == states.STOPPED
    assert worker.events.filter(reason="Idle for 60 minutes (idle timeout)").exists()


def test_it_uses_the_resource_class_idle_timeout(fleet, default_class):
    quick = ResourceClassFactory(id="quick", idle_timeout_seconds=600)
    worker = start(WorkspaceFactory(resource_class=quick), fleet)
    assert worker.next_action_at == worker.ready_at + timedelta(minutes=10)
    fleet.clock.shift(timedelta(minutes=11))
    assert reap_idle(fleet)["stopped"] == 1
    assert Worker.objects.get(id=worker.id).status == states.STOPPED


def test_it_keeps_busy_workers_and_reschedules_on_activity(fleet, default_class):
    busy = start(WorkspaceFactory(), fleet)
    used = start(WorkspaceFactory(), fleet)
    fleet.probe.busy.add(str(busy.id))
    fleet.clock.shift(timedelta(minutes=30))
    fleet.probe.activity[str(used.id)] = datetime.now(UTC)
    assert services.workers_probe() == {"probed": 2, "busy": 1, "ready": 0}
    assert fleet.probe.calls == 3  # two starts, then one batched probe
    fleet.clock.shift(timedelta(minutes=45))
    reap_idle(fleet)
    busy.refresh_from_db(), used.refresh_from_db()
    assert busy.status == states.BUSY and busy.next_action == ""
    assert used.status == states.READY
    assert used.next_action_at == used.last_activity_at + timedelta(hours=1)
    fleet.probe.busy.clear()
    services.workers_probe()
    busy.refresh_from_db()
    assert busy.status == states.READY
    assert busy.events.filter(reason="Kernels idle").exists()


def weekly_plan(bound_queue) -> Plan:
    return gpu_plan(
        queues=[bound_queue],
        window_kind=Plan.WindowKind.WEEKLY,
        window_rules=[
            {"days": [0, 1, 2, 3, 4, 5, 6], "start": "08:00", "end": "20:00"}
        ],
    )


def test_it_stops_plan_bound_workers_when_the_window_closes(fleet, default_class):
    slow = ResourceClassFactory(id="slow", idle_timeout_seconds=86400)
    bound = queue("daytime", priority=10)
    owner = UserFactory()
    project = ProjectFactory(personal_owner=owner, plan=weekly_plan(bound))
    fleet.clock.move_to(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    in_plan = start(
        WorkspaceFactory(project=project, queue=bound, resource_class=slow), fleet
    )
    default = start(WorkspaceFactory(project=project, resource_class=slow), fleet)
    workspaces_reap_plan_windows()
    in_plan.refresh_from_db()
    assert in_plan.next_action == states.NEXT_PLAN_WINDOW_STOP
    assert in_plan.next_action_at == datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    fleet.clock.move_to(datetime(2026, 11, 23, 20, 1, tzinfo=UTC))
    with committed():
        assert workspaces_reap_plan_windows()["stopped"] == 1
    fleet.tasks.run_all()
    in_plan.refresh_from_db(), default.refresh_from_db()
    assert in_plan.status == states.STOPPED
    assert in_plan.events.filter(reason="Plan window expired").exists()
    assert default.status == states.READY


def test_it_fixes_stale_starting_workers_by_what_the_backend_says(fleet, default_class):
    alive, dead, lost = (WorkspaceFactory() for _ in range(3))
    workers = {}
    for name, ws in (("alive", alive), ("dead", dead), ("lost", lost)):
        with committed():
            workers[name] = workspace_start(workspace=ws, actor=ws.owner)
    fleet.tasks.take()  # the start tasks are lost
    for name in ("alive", "dead"):
        ref = fleet.backend.add_runtime(workers[name].id)
        Worker.objects.filter(id=workers[name].id).update(runtime_ref=ref)
    fleet.backend.lose(workers["dead"].id)
    fleet.clock.shift(timedelta(minutes=14))
    assert services.workers_cleanup_stale() == {}
    fleet.clock.shift(timedelta(minutes=2))
    assert services.workers_cleanup_stale() == {"corrected": 1, "failed": 2}
    status = {n: Worker.objects.get(id=w.id) for n, w in workers.items()}
    assert status["alive"].status == states.READY
    assert status["dead"].status == states.FAILED
    assert (status["lost"].status, status["lost"].error_code) == (
        "failed",
        "start_lost",
    )


def test_it_fixes_stale_busy_workers(fleet, default_class, settings):
    settings.NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS = 3600
    quiet = start(WorkspaceFactory(), fleet)
    gone = start(WorkspaceFactory(), fleet)
    fleet.probe.busy.update({str(quiet.id), str(gone.id)})
    services.workers_probe()
    fleet.probe.busy.clear()
    fleet.backend.lose(gone.id)
    fleet.clock.shift(timedelta(minutes=61))
    assert services.workers_cleanup_stale() == {"checked": 1, "failed": 1}
    quiet.refresh_from_db(), gone.refresh_from_db()
    assert quiet.status == states.READY
    assert (gone.status, gone.error_code) == (states.FAILED, "runtime_dead")


def test_it_preempts_the_newest_lowest_priority_worker_first(
    fleet, default_class, settings
):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 2}
    spot = queue("spot", priority=1, preemptible=True)
    urgent = queue("urgent", priority=90)
    older, newer, boss = (gpu_workspace(queue=q) for q in (spot, spot, urgent))
    for ws in (older, newer, boss):
        ws.project.plan.queues.add(spot, urgent)
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)):
        first = start(older, fleet)
    with time_machine.travel(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)):
        second = start(newer, fleet)
    start(boss, fleet)
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == (states.READY, states.STOPPED)
    assert second.events.filter(
        reason="Preempted by higher-priority workload", actor_label="preemption"
    ).exists()
