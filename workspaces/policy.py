"""What a workspace may launch with: the plan's and project's allowlists,
root shell rules and the queue's schedule window. Pure reads; raises
``LaunchRefused`` naming the rule and what to do."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from resource_classes import quantities
from workers.services import LaunchRefused
from workspaces.models import Plan, Project, SchedulingQueue, Volume, Workspace
from workspaces.validators import mount_path as mount_path_rule


class WorkspaceRefused(LaunchRefused):
    """A create refused for one value; ``field`` names the launch-form field
    it belongs to (None = the request as a whole)."""

    def __init__(self, limit: str, message: str, *, field: str | None = None):
        super().__init__(limit, message)
        self.field = field


def is_plan_bound(queue: SchedulingQueue, plan: Plan | None) -> bool:
    """A non-default queue of a plan with a schedule window."""
    return bool(
        not queue.is_default
        and plan is not None
        and plan.window_kind != Plan.WindowKind.NONE
    )


def check_launch_policy(
    *, workspace: Workspace, project: Project, plan: Plan | None
) -> None:
    """Raise ``LaunchRefused`` when the workspace's image, GPU model, root
    shell or queue is not allowed for its project and plan right now."""
    _check_image(workspace, project)
    _check_root(workspace, project)
    _check_gpu_model(workspace, project, plan)
    _check_queue(workspace, project, plan)
    # Mounts are checked again at each start: one added outside the form
    # (admin, shell) must never reach another project's volume.
    check_mounts(
        project=project,
        mounts=[(m.volume, m.mount_path) for m in workspace.mounts.all()],
    )


def _check_image(workspace: Workspace, project: Project) -> None:
    if workspace.image not in (project.image_allowlist or []):
        raise LaunchRefused(
            "image_allowlist",
            f"Image {workspace.image} is not in project {project.name}'s image "
            "allowlist; pick an allowed image or ask a project manager to add it.",
        )


def _check_root(workspace: Workspace, project: Project) -> None:
    if not workspace.root_shell or project.root_allowed:
        return
    needs = "the project and its group" if project.group_id else "the project"
    raise LaunchRefused(
        "root_shell",
        f"Root shell is not allowed in project {project.name}: {needs} must allow "
        "root containers; turn Root shell off or ask an admin.",
    )


def _check_gpu_model(workspace: Workspace, project: Project, plan: Plan | None) -> None:
    if not workspace.gpu_count:
        return
    allowed = plan.allowed_gpu_models if plan is not None else []
    if workspace.gpu_model not in allowed:
        where = (
            f"plan {plan.name}" if plan else f"project {project.name} (no plan bound)"
        )
        raise LaunchRefused(
            "gpu_model",
            f"GPU model {workspace.gpu_model} is not allowed by {where}; pick an "
            "allowed model or ask a project manager to bind a plan that includes it.",
        )


def _check_queue(workspace: Workspace, project: Project, plan: Plan | None) -> None:
    queue = workspace.queue
    if queue.is_default:
        return
    if plan is None or not plan.queues.filter(pk=queue.pk).exists():
        raise LaunchRefused(
            "queue_not_in_plan",
            f"Queue {queue.name} is not bound to project {project.name}'s plan; "
            "use the default queue or a queue of the plan.",
        )
    window = plan.window_state()
    if not window.open:
        opens = (
            f" (opens {window.opens_at:%Y-%m-%d %H:%M %Z})" if window.opens_at else ""
        )
        raise LaunchRefused(
            "plan_window",
            f"Plan {plan.name}'s schedule window is closed{opens}; start in the "
            "default queue or wait for the window to open.",
        )


def check_create_policy(
    *,
    workspace: Workspace,
    project: Project,
    plan: Plan | None,
    mounts: list[tuple[Volume, str]],
) -> None:
    """Raise ``WorkspaceRefused`` when a new workspace may not be created as
    described: the owner outside the project, a bad or taken name, a bad
    value, a disabled resource class, more GPUs than its class offers, CPU or
    memory above the ceiling, or a bad mount. Launch rules (allowlists, root
    shell, queue, quotas) are checked when it starts."""
    if not project.members.filter(pk=workspace.owner_id).exists() and (
        project.personal_owner_id != workspace.owner_id
    ):
        raise WorkspaceRefused(
            "not_a_member",
            f"You are not a member of project {project.name}; pick one of your "
            "projects or ask its manager to add you.",
            field="project",
        )
    _check_values(workspace)
    if Workspace.objects.filter(project=project, name=workspace.name).exists():
        raise WorkspaceRefused(
            "name_taken",
            f"Project {project.name} already has a workspace named "
            f"{workspace.name}; pick another name.",
            field="name",
        )
    _check_resource_class(workspace)
    _check_ceilings(workspace, plan)
    check_mounts(project=project, mounts=mounts)


def _check_values(workspace: Workspace) -> None:
    """The model's own field rules (DNS-safe name, SM 1-100, quantities),
    as a refusal naming the first bad field."""
    try:
        workspace.full_clean(exclude=["project", "owner", "queue", "resource_class"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise WorkspaceRefused(
            "invalid", " ".join(messages), field=None if field == "__all__" else field
        ) from exc
    if workspace.ide_kind == Workspace.IdeKind.CUSTOM and not workspace.proxy_path:
        raise WorkspaceRefused(
            "invalid",
            "A custom image needs the path Open goes to, e.g. /app/.",
            field="proxy_path",
        )


def _check_resource_class(workspace: Workspace) -> None:
    rc = workspace.resource_class
    if not rc.enabled:
        raise WorkspaceRefused(
            "resource_class",
            f"Resource class {rc.display_name} is disabled; pick another.",
            field="resource_class",
        )
    if workspace.gpu_count > rc.gpu_count:
        offers = f"at most {rc.gpu_count} GPUs" if rc.gpu_count else "no GPUs"
        raise WorkspaceRefused(
            "gpu_count",
            f"Resource class {rc.display_name} offers {offers}; ask for fewer "
            "GPUs or pick a GPU class.",
            field="gpu_count",
        )


def resource_ceilings(workspace: Workspace, plan: Plan | None) -> tuple[str, str]:
    """The most CPU and memory a workspace may ask for: the plan's limits,
    or its resource class's limits when no plan is bound."""
    if plan is not None:
        return plan.default_cpu_limit, plan.default_memory_limit
    rc = workspace.resource_class
    return rc.cpu_limit, rc.memory_limit


def _check_ceilings(workspace: Workspace, plan: Plan | None) -> None:
    cpu_max, memory_max = resource_ceilings(workspace, plan)
    where = f"plan {plan.name}" if plan else "the resource class"
    checks = (
        ("cpu_limit", "CPU", workspace.cpu_limit, cpu_max),
        ("memory_limit", "Memory", workspace.memory_limit, memory_max),
    )
    for field, what, value, ceiling in checks:
        if value and quantities.parse(value, what=what) > quantities.parse(
            ceiling, what=what
        ):
            raise WorkspaceRefused(
                field,
                f"{what} {value} is above the limit of {where} ({ceiling}); ask "
                f"for {ceiling} or less.",
                field=field,
            )


def check_mounts(*, project: Project, mounts: list[tuple[Volume, str]]) -> None:
    """Each volume is the project's; each path absolute, safe and used once."""
    seen: set[str] = set()
    for volume, path in mounts:
        if volume.project_id != project.pk:
            raise WorkspaceRefused(
                "mount_volume",
                f"Volume {volume.name} belongs to another project; mount one of "
                f"project {project.name}'s volumes.",
                field="mounts",
            )
        try:
            mount_path_rule(path)
        except ValidationError as exc:
            raise WorkspaceRefused(
                "mount_path", " ".join(exc.messages), field="mounts"
            ) from exc
        normalized = path.rstrip("/")
        if normalized in seen:
            raise WorkspaceRefused(
                "mount_path",
                f"{path} is used by two mounts; give each volume its own path.",
                field="mounts",
            )
        seen.add(normalized)
