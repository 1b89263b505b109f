"""Starting a stopped or failed worker's workspace again, from its row.

The row holds everything a launch needs (spec, snapshot, queue); limits are
read through the row's foreign keys (project quota and plan window, the
workspace's queue), so the workers app imports nothing from workspaces.
"""

from __future__ import annotations

from decimal import Decimal

from workers import states
from workers.backends.base import LaunchSpec
from workers.models import Worker
from workers.services.errors import LaunchRefused
from workers.services.launch import LaunchLimits, LaunchRequest, worker_launch


def worker_start_again(*, worker: Worker, actor) -> Worker:
    """Launch a new worker like ``worker`` as its owner would (the owner's
    limits and quotas). Raises ``LaunchRefused`` when a limit is hit, when
    the worker is still active, or when its workspace runs another one."""
    if worker.status not in states.TERMINAL_STATUSES:
        raise LaunchRefused(
            "worker_active",
            "This worker is still active; stop it before starting again.",
        )
    if (
        worker.workspace_id
        and Worker.objects.filter(
            workspace_id=worker.workspace_id, status__in=states.ACTIVE_STATUSES
        ).exists()
    ):
        raise LaunchRefused(
            "workspace_active",
            "The workspace already runs; stop it before starting again.",
        )
    request = LaunchRequest(
        spec=LaunchSpec.from_json(worker.launch_spec),
        owner_id=worker.owner_id,
        name=worker.name,
        backend=worker.backend,
        workspace_id=worker.workspace_id,
        space_id=worker.space_id,
        resource_class_id=worker.resource_class_id,
        resource_snapshot=worker.resource_snapshot,
        gpu_units=worker.gpu_units,
        gpu_model=worker.gpu_model,
        plan_bound=worker.plan_bound,
        limits=_limits_from_row(worker),
    )
    return worker_launch(request=request, actor=actor, actor_type="admin")


def _limits_from_row(worker: Worker) -> LaunchLimits:
    space = worker.space
    if space is None:
        return LaunchLimits()
    plan = space.plan
    if worker.plan_bound and plan is not None and not plan.window_state().open:
        raise LaunchRefused(
            "plan_window",
            f"Plan {plan.name}'s schedule window is closed; start in the default "
            "queue or wait for the window to open.",
        )
    queue = worker.workspace.queue if worker.workspace_id else None
    deserved = (
        queue.deserved_gpu_limit if queue and queue.name == worker.queue_name else None
    )
    return LaunchLimits(
        space_label=space.name,
        gpu_quota=Decimal(space.gpu_quota),
        queue_deserved_gpu_limit=deserved,
    )
