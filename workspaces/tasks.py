"""Celery tasks for workspaces: thin, ids in, one service call each."""

from celery import shared_task
from django.contrib.auth import get_user_model

from workspaces import services
from workspaces.models import Workspace

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(**IDEMPOTENT, time_limit=120, soft_time_limit=100)
def delete_workspace(workspace_id: str, actor_id: str | None = None) -> bool:
    """Delete a workspace (admin bulk delete); already gone is success."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return False
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    services.workspace_delete(workspace=workspace, actor=actor)
    return True


@shared_task(**IDEMPOTENT, time_limit=120, soft_time_limit=100)
def reap_plan_windows() -> dict:
    return services.workspaces_reap_plan_windows()
