"""Starting a stopped or failed worker's workspace again, from its row.

The row holds everything a launch needs (spec, snapshot, queue); limits are
read through the row's foreign keys (project quota and plan window, the
workspace's queue), so the workers app imports nothing from workspaces.
"""

from __future__ import annotations

from decimal import Decimal

from workers import states
from workers.backends.base import InvalidLaunchSpec, LaunchSpec
from workers.models import Actor, Worker
from workers.services import runtime
from workers.services.errors import LaunchRefused, start_refused_while_active
from workers.services.launch import LaunchLimits, LaunchRequest, worker_launch


def worker_start_again(*, worker: Worker, actor) -> Worker:
    """Launch a new worker like ``worker`` as its owner would (the owner's
    limits and quotas). Raises ``LaunchRefused`` when a limit is hit, when
    the worker is still active, or when its workspace runs another one."""
    if worker.status not in states.TERMINAL_STATUSES:
        raise start_refused_while_active("This worker", worker.status, "worker_active")
    active = (
        Worker.objects.filter(
            workspace_id=worker.workspace_id, status__in=states.ACTIVE_STATUSES
        )
        .values_list("status", flat=True)
        .first()
        if worker.workspace_id
        else None
    )
    if active:
        raise start_refused_while_active("Its workspace", active, "workspace_active")
    spec = _stored_spec(worker)
    _check_backend(worker)
    request = LaunchRequest(
        spec=spec,
        owner_id=worker.owner_id,
        name=worker.name,
        backend=worker.backend,
        workspace_id=worker.workspace_id,
        project_id=worker.project_id,
        resource_class_id=worker.resource_class_id,
        resource_snapshot=worker.resource_snapshot,
        gpu_units=worker.gpu_units,
        gpu_model=worker.gpu_model,
        plan_bound=worker.plan_bound,
        limits=_limits_from_row(worker),
    )
    return worker_launch(request=request, actor=actor, actor_type=Actor.ADMIN)


def _stored_spec(worker: Worker) -> LaunchSpec:
    """The row's launch spec; ``LaunchRefused`` when there is none or it was
    written in a format this version cannot read (rows from before the spec
    was stored, or hand-made ones)."""
    try:
        return LaunchSpec.from_json(worker.launch_spec)
    except InvalidLaunchSpec as exc:
        if exc.empty:
            message = "This worker has no launch spec; start its workspace instead."
        else:
            message = (
                f"This worker's launch spec is in an older format ({exc.message}); "
                "start its workspace instead."
            )
        raise LaunchRefused("launch_spec", message) from exc


def _check_backend(worker: Worker) -> None:
    """Refuse before creating a worker that could only fail: rows from a
    backend this installation does not run (another site's, the demo's)."""
    reason = runtime.backend_unavailable_reason(worker.backend)
    if reason:
        raise LaunchRefused(
            "backend_unavailable",
            f"This worker ran on the {worker.backend} backend, which is not "
            f"available here: {reason}. Start its workspace instead.",
        )


def _limits_from_row(worker: Worker) -> LaunchLimits:
    project = worker.project
    if project is None:
        return LaunchLimits()
    plan = project.plan
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
        project_label=project.name,
        gpu_quota=Decimal(project.gpu_quota),
        queue_deserved_gpu_limit=deserved,
    )
