"""Reads for the user-facing workspace pages."""

from django.db.models import Prefetch, QuerySet

from workers import states
from workers.models import Worker
from workspaces.models import Workspace

# What a user sees, derived from the workspace's current worker.
USER_STATE = {
    None: "Stopped",
    states.STARTING: "Starting",
    states.READY: "Running",
    states.BUSY: "Running",
    states.STOPPING: "Stopping",
    states.STOPPED: "Stopped",
    states.FAILED: "Error",
}


def workspace_list_for(*, user) -> QuerySet[Workspace]:
    """The user's own workspaces, each with its newest worker prefetched."""
    latest = Worker.objects.order_by("-created_at", "-id")
    return (
        Workspace.objects.filter(owner=user)
        .select_related("project", "queue", "resource_class")
        .prefetch_related(Prefetch("workers", queryset=latest, to_attr="recent_workers"))
        .order_by("project__name", "name")
    )


def workspace_state(workspace: Workspace) -> tuple[str, Worker | None]:
    current = workspace.recent_workers[0] if workspace.recent_workers else None
    return USER_STATE[current.status if current else None], current
