"""Every stop request goes through the one stop service and leaves no
planned next action behind (issue 8 item 5: a preempted worker said "idle
stop in N min" while stopping)."""

import pytest
from django.urls import reverse

from tests.factories import WorkerFactory
from tests.integration.lifecycle_support import (
    committed,
    gpu_workspace,
    queue,
    start,
)
from workers import states
from workers.services import worker_stop_run, worker_transition
from workers.services.preemption import PREEMPTED
from workspaces.services import workspace_start

pytest_plugins = ["tests.integration.lifecycle_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]


def test_a_preempted_worker_says_stopping_with_no_idle_stop(
    fleet, default_class, settings, client, admin_user
):
    settings.NOTEBOOK_RUNTIME_GPU_CAPACITY = {"RTX 5090": 1}
    spot, urgent = (
        queue("spot", priority=1, preemptible=True),
        queue("urgent", priority=90),
    )
    victim_ws, boss_ws = gpu_workspace(queue=spot), gpu_workspace(queue=urgent)
    for ws in (victim_ws, boss_ws):
        ws.project.plan.queues.add(spot, urgent)
    victim = start(victim_ws, fleet)
    assert (victim.status, victim.next_action) == (states.READY, states.NEXT_IDLE_STOP)

    with committed():
        workspace_start(workspace=boss_ws, actor=boss_ws.owner)
    victim.refresh_from_db()
    assert victim.status == states.STOPPING
    assert (victim.next_action, victim.next_action_at) == ("", None)
    event = victim.events.get(to_status=states.STOPPING)
    assert (event.reason, event.actor_label) == (PREEMPTED, "preemption")
    assert event.data["preempted_by"] != str(victim.id)
    assert ("stop_worker", str(victim.id)) in fleet.tasks.sent

    client.force_login(admin_user)
    row = client.get(reverse("console:row", args=[victim.id])).content.decode()
    assert "stopping" in row and states.NEXT_IDLE_STOP not in row
    client.force_login(victim_ws.owner)
    page = client.get(reverse("workspaces:list")).content.decode()
    assert "Stopping" in page and "idle stop" not in page.lower()


def test_a_stop_task_without_a_request_clears_the_next_action_too(fleet, default_class):
    worker = start(gpu_workspace(), fleet)
    assert worker.next_action == states.NEXT_IDLE_STOP
    fleet.backend.fail("terminate", message="gateway busy")
    worker_stop_run(worker_id=worker.id)
    worker.refresh_from_db()
    # the stop failed, so its retry is the next action, never the idle stop
    assert (worker.status, worker.next_action) == (
        states.STOPPING,
        states.NEXT_STOP_RETRY,
    )


def test_any_move_to_stopping_clears_the_planned_action(default_class):
    worker = WorkerFactory(status="ready", next_action=states.NEXT_PLAN_WINDOW_STOP)
    worker_transition(
        worker_id=worker.id,
        expected=states.READY,
        to=states.STOPPING,
        actor_type="system",
        reason="test",
    )
    worker.refresh_from_db()
    assert (worker.next_action, worker.next_action_at) == ("", None)
