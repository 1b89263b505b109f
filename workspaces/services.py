"""Writes for workspaces: start, stop, delete, and the plan-window reaper.

The workspace policy lives here (image allowlist, GPU model allowlist, root
shell, queue binding and schedule window); everything counted over workers
(per-user limit, GPU quota, deserved limit, capacity) is the workers launch
service's, called inside the same transaction while the project row is
locked.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from resource_classes import quantities
from workers import states
from workers.backends.base import LaunchSpec, Mount, Resources
from workers.models import Worker
from workers.services import (
    LaunchLimits,
    LaunchRefused,
    LaunchRequest,
    worker_launch,
    worker_record_event,
    workers_request_stop,
)
from workers.services.queueing import QUEUE_UNAVAILABLE
from workspaces.models import Plan, Project, Workspace
from workspaces.policy import check_launch_policy, is_plan_bound

PLAN_WINDOW_EXPIRED = "Plan window expired"


def _actor_type(workspace: Workspace, actor) -> str:
    return "user" if actor is None or actor.pk == workspace.owner_id else "admin"


def workspace_start(*, workspace: Workspace, actor) -> Worker:
    """Start ``workspace`` with a new worker. Raises ``LaunchRefused`` naming
    the limit hit (policy, limits, quotas, an active worker already, or the
    task queue being unavailable); writes nothing on a refusal."""
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=workspace.project_id)
        workspace = Workspace.objects.select_related(
            "queue", "resource_class", "owner"
        ).get(pk=workspace.pk)
        if workspace.workers.filter(status__in=states.ACTIVE_STATUSES).exists():
            raise LaunchRefused(
                "workspace_active",
                f"Workspace {workspace.name} is already running; stop it first.",
            )
        plan = Plan.objects.filter(pk=project.plan_id).first()
        check_launch_policy(workspace=workspace, project=project, plan=plan)
        request = workspace_launch_request(
            workspace=workspace, project=project, plan=plan
        )
        worker = worker_launch(
            request=request, actor=actor, actor_type=_actor_type(workspace, actor)
        )
    worker.refresh_from_db()
    if worker.error_code == QUEUE_UNAVAILABLE:
        raise LaunchRefused(
            "task_queue",
            "The task queue is unavailable, so the workspace cannot start now; "
            "try again in a minute (the attempt is recorded as failed).",
        )
    return worker


def workspace_launch_request(
    *, workspace: Workspace, project: Project, plan: Plan | None
) -> LaunchRequest:
    """The launch request for ``workspace``: spec, snapshot and limits."""
    snapshot = workspace.resource_class.snapshot()
    queue = workspace.queue
    return LaunchRequest(
        spec=_launch_spec(workspace, snapshot),
        owner_id=workspace.owner_id,
        name=workspace.name,
        backend=settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND,
        workspace_id=workspace.id,
        space_id=project.id,
        resource_class_id=workspace.resource_class_id,
        resource_snapshot=snapshot,
        gpu_units=workspace.effective_gpu_units,
        gpu_model=workspace.gpu_model if workspace.gpu_count else "",
        plan_bound=is_plan_bound(queue, plan),
        limits=LaunchLimits(
            space_label=project.name,
            gpu_quota=project.gpu_quota,
            queue_deserved_gpu_limit=queue.deserved_gpu_limit,
        ),
    )


def _launch_spec(workspace: Workspace, snapshot: dict) -> LaunchSpec:
    queue = workspace.queue
    return LaunchSpec(
        worker_id="",
        workspace_id=str(workspace.id),
        owner=workspace.owner.get_username(),
        owner_id=str(workspace.owner_id),
        image=workspace.image,
        ide_kind=workspace.ide_kind,
        base_url=workspace.base_url,
        access_token="",
        resources=_resources(workspace, snapshot),
        mounts=tuple(
            Mount(volume=m.volume.name, path=m.mount_path)
            for m in workspace.mounts.select_related("volume")
        ),
        root_shell=workspace.root_shell,
        queue_name=queue.name,
        queue_priority=queue.priority,
        preemptible=queue.preemptible,
        health_path=workspace.proxy_path,
        kernel_cull_idle_seconds=settings.NOTEBOOK_RUNTIME_KERNEL_CULL_IDLE_SECONDS,
        kernel_cull_interval_seconds=settings.NOTEBOOK_RUNTIME_KERNEL_CULL_INTERVAL_SECONDS,
    )


def _resources(workspace: Workspace, snapshot: dict) -> Resources:
    """The resource class, with the workspace's CPU / memory overrides."""
    cpu_limit = snapshot["cpu_limit_millicores"]
    memory_limit = snapshot["memory_limit_bytes"]
    if workspace.cpu_limit:
        cpu_limit = quantities.cpu_millicores(workspace.cpu_limit)
    if workspace.memory_limit:
        memory_limit = quantities.to_bytes(workspace.memory_limit)
    return Resources(
        cpu_request_millicores=min(snapshot["cpu_request_millicores"], cpu_limit),
        cpu_limit_millicores=cpu_limit,
        memory_request_bytes=min(snapshot["memory_request_bytes"], memory_limit),
        memory_limit_bytes=memory_limit,
        gpu_count=workspace.gpu_count,
        gpu_resource_name=snapshot["gpu_resource_name"]
        or ("nvidia.com/gpu" if workspace.gpu_count else ""),
        gpu_model=workspace.gpu_model if workspace.gpu_count else "",
        gpu_sm_percentage=workspace.gpu_sm_percentage,
        workspace_storage_bytes=snapshot["workspace_storage_bytes"],
        temp_storage_bytes=snapshot["temp_storage_bytes"],
    )


def workspace_stop(*, workspace: Workspace, actor) -> None:
    """Ask every running worker of ``workspace`` to stop (idempotent)."""
    ids = list(
        workspace.workers.filter(status__in=states.ALLOCATED_STATUSES).values_list(
            "id", flat=True
        )
    )
    workers_request_stop(
        worker_ids=ids,
        actor_type=_actor_type(workspace, actor),
        actor=actor,
        reason="Stop requested",
    )


def workspace_delete(*, workspace: Workspace, actor) -> None:
    """Delete ``workspace``: its workers are asked to stop and keep their rows
    (the history, with the workspace link cleared). Never blocked by a stop
    that failed: the stop goes on without the workspace, visible to admins."""
    with transaction.atomic():
        workspace_stop(workspace=workspace, actor=actor)
        label = getattr(actor, "username", "") or "system"
        for worker_id, owner_id in workspace.workers.filter(
            status__in=states.ACTIVE_STATUSES
        ).values_list("id", "owner_id"):
            worker_record_event(
                worker_id=worker_id,
                kind="action",
                actor_type=_actor_type(workspace, actor),
                actor=actor,
                actor_label=label,
                reason=f"Workspace {workspace.name} deleted",
                publish_owner_id=owner_id,
            )
        workspace.delete()


def workspaces_reap_plan_windows(*, now=None) -> dict:
    """Stop workers in plan-bound queues of plans whose window is closed
    (reason "Plan window expired"); the default queue is unaffected. For open
    windows, show the coming stop as the workers' next action."""
    now = now or timezone.now()
    stopped, scheduled = [], 0
    for plan in Plan.objects.exclude(window_kind=Plan.WindowKind.NONE):
        window = plan.window_state(now)
        bound = Worker.objects.filter(
            status__in=states.ALLOCATED_STATUSES, plan_bound=True, space__plan=plan
        )
        if not window.open:
            stopped += workers_request_stop(
                worker_ids=list(bound.values_list("id", flat=True)),
                actor_type="system",
                actor_label="reap_plan_windows",
                reason=PLAN_WINDOW_EXPIRED,
            )
        elif window.closes_at is not None:
            scheduled += _schedule_window_stop(bound, window.closes_at)
    return {"stopped": len(stopped), "scheduled": scheduled}


def _schedule_window_stop(bound, closes_at) -> int:
    """Set "plan window stop at <close>" where it comes before the current
    next action (an idle stop after the window closes never happens)."""
    sooner = (
        Q(next_action_at__isnull=True)
        | Q(next_action_at__gt=closes_at)
        | Q(next_action=states.NEXT_PLAN_WINDOW_STOP)
    )
    return (
        bound.filter(sooner)
        .exclude(next_action=states.NEXT_PLAN_WINDOW_STOP, next_action_at=closes_at)
        .update(next_action=states.NEXT_PLAN_WINDOW_STOP, next_action_at=closes_at)
    )
