"""What a workspace may launch with: the plan's and project's allowlists,
root shell rules and the queue's schedule window. Pure reads; raises
``LaunchRefused`` naming the rule and what to do."""

from __future__ import annotations

from workers.services import LaunchRefused
from workspaces.models import Plan, Project, SchedulingQueue, Workspace


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
