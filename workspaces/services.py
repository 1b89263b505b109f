"""Writes for workspaces: start, stop, delete, and the plan-window reaper.

The workspace policy lives here (image allowlist, GPU model allowlist, root
shell, queue binding and schedule window); everything counted over workers
(per-user limit, GPU quota, deserved limit, capacity) is the workers launch
service's, called inside the same transaction while the project row is
locked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from resource_classes import quantities
from resource_classes.models import ResourceClass
from workers import states
from workers.backends.base import LaunchSpec, Mount, Resources, SetupSpec
from workers.models import Actor, EventKind, Worker
from workers.services import (
    LaunchLimits,
    LaunchRefused,
    LaunchRequest,
    worker_launch,
    worker_record_event,
    workers_request_stop,
)
from workers.services.errors import start_refused_while_active
from workers.services.queueing import QUEUE_UNAVAILABLE
from workers.setup.repository import credentials_allowed
from workspaces.explain import PLAN_WINDOW_EXPIRED
from workspaces.models import (
    FetchPolicy,
    Plan,
    Project,
    SchedulingQueue,
    Volume,
    Workspace,
    WorkspaceMount,
)
from workspaces.page_selectors import visible_workspaces
from workspaces.policy import check_create_policy, check_launch_policy, is_plan_bound


def _actor_type(workspace: Workspace, actor) -> str:
    return (
        Actor.USER if actor is None or actor.pk == workspace.owner_id else Actor.ADMIN
    )


def workspace_start(*, workspace: Workspace, actor) -> Worker:
    """Start ``workspace`` with a new worker. Raises ``LaunchRefused`` naming
    the limit hit (policy, limits, quotas, an active worker already, or the
    task queue being unavailable); writes nothing on a refusal."""
    with transaction.atomic():
        worker = _start_locked(workspace=workspace, actor=actor)
    worker.refresh_from_db()
    if worker.error_code == QUEUE_UNAVAILABLE:
        raise LaunchRefused(
            "task_queue",
            "The task queue is unavailable, so the workspace cannot start now; "
            "try again in a minute (the attempt is recorded as failed).",
        )
    return worker


def _start_locked(*, workspace: Workspace, actor) -> Worker:
    """The body of a start, inside the caller's transaction."""
    project = Project.objects.select_for_update().get(pk=workspace.project_id)
    workspace = Workspace.objects.select_related(
        "queue", "resource_class", "owner"
    ).get(pk=workspace.pk)
    active = (
        workspace.workers.filter(status__in=states.ACTIVE_STATUSES)
        .values_list("status", flat=True)
        .first()
    )
    if active:
        raise start_refused_while_active(
            f"Workspace {workspace.name}", active, "workspace_active"
        )
    plan = Plan.objects.filter(pk=project.plan_id).first()
    check_launch_policy(workspace=workspace, project=project, plan=plan)
    request = workspace_launch_request(workspace=workspace, project=project, plan=plan)
    return worker_launch(
        request=request, actor=actor, actor_type=_actor_type(workspace, actor)
    )


def workspace_create(
    *,
    owner,
    actor,
    project: Project,
    name: str,
    ide_kind: str,
    proxy_path: str,
    image: str,
    root_shell: bool,
    queue: SchedulingQueue,
    resource_class: ResourceClass,
    gpu_count: int,
    gpu_model: str,
    gpu_sm_percentage: int,
    cpu_limit: str,
    memory_limit: str,
    mounts: list[tuple[Volume, str]],
    repository_url: str = "",
    repository_ref: str = "",
    requirements_path: str = "",
) -> Worker:
    """Create a workspace with its mounts and start it, in one transaction.

    Every rule is checked here (``check_create_policy``, then the launch
    policy and limits of ``workspace_start``); any refusal raises
    ``LaunchRefused`` (``WorkspaceRefused`` with ``.field`` for one value)
    and nothing is written. Empty CPU / memory take the plan's defaults. If
    the task queue is down the workspace exists and its worker is failed
    (Error, "Start again"): that is returned, not raised.
    """
    with transaction.atomic():
        # The project lock serialises creates in a project: the name check holds.
        Project.objects.select_for_update().filter(pk=project.pk).exists()
        plan = Plan.objects.filter(pk=project.plan_id).first()
        workspace = Workspace(
            project=project,
            owner=owner,
            name=name,
            ide_kind=ide_kind,
            proxy_path=proxy_path if ide_kind == Workspace.IdeKind.CUSTOM else "",
            image=image,
            root_shell=root_shell,
            queue=queue,
            resource_class=resource_class,
            gpu_count=gpu_count,
            gpu_model=gpu_model if gpu_count else "",
            gpu_sm_percentage=gpu_sm_percentage,
            cpu_limit=cpu_limit or (plan.default_cpu_limit if plan else ""),
            memory_limit=memory_limit or (plan.default_memory_limit if plan else ""),
            repository_url=repository_url,
            repository_ref=repository_ref,
            requirements_path=requirements_path,
        )
        check_create_policy(
            workspace=workspace, project=project, plan=plan, mounts=mounts
        )
        workspace.save()
        WorkspaceMount.objects.bulk_create(
            WorkspaceMount(workspace=workspace, volume=volume, mount_path=path)
            for volume, path in mounts
        )
        worker = _start_locked(workspace=workspace, actor=actor)
    worker.refresh_from_db()
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
        project_id=project.id,
        resource_class_id=workspace.resource_class_id,
        resource_snapshot=snapshot,
        gpu_units=workspace.effective_gpu_units,
        gpu_model=workspace.gpu_model if workspace.gpu_count else "",
        plan_bound=is_plan_bound(queue, plan),
        limits=LaunchLimits(
            project_label=project.name,
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
            Mount(
                volume=m.volume.name,
                path=m.mount_path,
                read_only=m.read_only,
                project_id=str(m.volume.project_id),
                size_bytes=quantities.to_bytes(m.volume.size),
                storage_class=m.volume.storage_class,
            )
            for m in workspace.mounts.select_related("volume")
        ),
        project_id=str(workspace.project_id),
        root_shell=workspace.root_shell,
        queue_name=queue.name,
        queue_priority=queue.priority,
        preemptible=queue.preemptible,
        health_path=workspace.proxy_path,
        kernel_cull_idle_seconds=settings.NOTEBOOK_RUNTIME_KERNEL_CULL_IDLE_SECONDS,
        kernel_cull_interval_seconds=settings.NOTEBOOK_RUNTIME_KERNEL_CULL_INTERVAL_SECONDS,
        setup=_setup_spec(workspace),
    )


def _setup_spec(workspace: Workspace) -> SetupSpec:
    """The setup step: the repository, and the project's fetch policy as the
    installer's index; secrets stay sealed until the backend runs the step.
    The git secret leaves only for a repository on a host an admin bound it
    to; its hosts go along so the step can say why it has none."""
    if not workspace.repository_url:
        return SetupSpec()
    project = workspace.project
    git_hosts = project.git_hosts if project.git_secret_sealed else ()
    git_bound = credentials_allowed(workspace.repository_url, git_hosts)
    mirror = project.fetch_policy == FetchPolicy.MIRROR or (
        project.fetch_policy == FetchPolicy.OFFLINE and project.package_mirror_url
    )
    return SetupSpec(
        repository_url=workspace.repository_url,
        repository_ref=workspace.repository_ref,
        requirements_path=workspace.requirements_path,
        kernel_name=workspace.name,
        fetch_policy=project.fetch_policy,
        index_url=project.package_mirror_url
        if mirror
        else settings.NOTEBOOK_RUNTIME_PACKAGE_INDEX_URL,
        kernel_packages=tuple(settings.NOTEBOOK_RUNTIME_SETUP_KERNEL_PACKAGES),
        allow_local_repository=settings.NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES,
        max_repository_bytes=settings.NOTEBOOK_RUNTIME_SETUP_MAX_REPOSITORY_BYTES,
        timeout_seconds=settings.NOTEBOOK_RUNTIME_SETUP_TIMEOUT_SECONDS,
        git_secret_sealed=project.git_secret_sealed if git_bound else "",
        index_secret_sealed=project.mirror_secret_sealed if mirror else "",
        git_secret_hosts=git_hosts,
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
                kind=EventKind.ACTION,
                actor_type=_actor_type(workspace, actor),
                actor=actor,
                actor_label=label,
                reason=f"Workspace {workspace.name} deleted",
                publish_owner_id=owner_id,
            )
        workspace.delete()


@dataclass
class BulkDeleteResult:
    deleted: list[str] = field(default_factory=list)  # workspace names
    refused: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


def workspaces_delete(*, workspace_ids, actor) -> BulkDeleteResult:
    """Delete each workspace ``actor`` may manage (own, or with IDE_MANAGE a
    workspace of one of their projects), each authorized and deleted on its
    own; the rest are refused with why, without saying whose they are."""
    result = BulkDeleteResult()
    for raw in dict.fromkeys(str(i) for i in workspace_ids):
        try:
            workspace = visible_workspaces(user=actor).filter(pk=raw).first()
        except ValidationError:
            workspace = None
        if workspace is None:
            result.refused.append(
                (raw[:40], "no such workspace, or not one you may manage")
            )
            continue
        workspace_delete(workspace=workspace, actor=actor)
        result.deleted.append(f"{workspace.name} ({workspace.owner.get_username()})")
    return result


def workspace_switch_to_default_queue(*, workspace: Workspace, actor) -> Worker | None:
    """Move ``workspace`` to the default queue (no plan window applies
    there). If the plan window's reaper stopped its newest worker, start it
    again in the default queue and return the new worker; else None.
    Raises ``LaunchRefused`` when that start is refused (the switch stays)."""
    default = SchedulingQueue.default()
    Workspace.objects.filter(pk=workspace.pk).update(queue=default)
    workspace.queue = default
    latest = workspace.workers.order_by("-created_at", "-id").first()
    evicted = (
        latest is not None
        and latest.status == states.STOPPED
        and latest.events.filter(
            to_status=states.STOPPING, reason=PLAN_WINDOW_EXPIRED
        ).exists()
    )
    if not evicted:
        return None
    return workspace_start(workspace=workspace, actor=actor)


def workspaces_reap_plan_windows(*, now=None) -> dict:
    """Stop workers in plan-bound queues of plans whose window is closed
    (reason "Plan window expired"); the default queue is unaffected. For open
    windows, show the coming stop as the workers' next action."""
    now = now or timezone.now()
    stopped, scheduled = [], 0
    for plan in Plan.objects.exclude(window_kind=Plan.WindowKind.NONE):
        window = plan.window_state(now)
        bound = Worker.objects.filter(
            status__in=states.ALLOCATED_STATUSES, plan_bound=True, project__plan=plan
        )
        if not window.open:
            stopped += workers_request_stop(
                worker_ids=list(bound.values_list("id", flat=True)),
                actor_type=Actor.SYSTEM,
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
