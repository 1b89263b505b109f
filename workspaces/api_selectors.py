"""Reads for the workspace API (``/api/v1/ide``): a user's own workspaces
only, filtered by user-facing state and project, and their timelines."""

from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from workers import states
from workers.models import Worker, WorkerEvent
from workspaces.models import Workspace, WorkspaceMount

# A user-facing state -> the current-worker statuses that show it (None =
# the workspace never started).
STATE_WORKER_STATUSES: dict[str, tuple[str | None, ...]] = {
    state: tuple(s for s, shown in states.USER_STATE.items() if shown == state)
    for state in states.WorkspaceStatus
}


def workspaces_owned_by(
    *, user, state: str | None = None, project_id=None
) -> QuerySet[Workspace]:
    """``user``'s own workspaces, optionally only those in the user-facing
    ``state`` (e.g. "Running") or project; each with its newest worker
    (``recent_workers``, at most one row) and its mounts prefetched."""
    newest_first = Worker.objects.order_by("-created_at", "-id")
    workspaces = (
        Workspace.objects.filter(owner=user)
        .select_related("project", "queue", "resource_class")
        .prefetch_related(
            Prefetch("workers", newest_first[:1], to_attr="recent_workers"),
            Prefetch("mounts", WorkspaceMount.objects.select_related("volume")),
        )
    )
    if project_id is not None:
        workspaces = workspaces.filter(project_id=project_id)
    if state is not None:
        statuses = STATE_WORKER_STATUSES[state]
        match = Q(current_status__in=[s for s in statuses if s is not None])
        if None in statuses:
            match |= Q(current_status__isnull=True)
        current = newest_first.filter(workspace=OuterRef("pk")).values("status")
        workspaces = workspaces.annotate(current_status=Subquery(current[:1]))
        workspaces = workspaces.filter(match)
    return workspaces


def workspace_owned_by(*, user, workspace_id) -> Workspace:
    """One of ``user``'s own workspaces; anyone else's raises Http404, the
    same answer as an id that does not exist."""
    return get_object_or_404(workspaces_owned_by(user=user), pk=workspace_id)


def workspace_events(*, workspace: Workspace) -> QuerySet[WorkerEvent]:
    """The timeline of every worker ``workspace`` had, each event with its
    worker's access token (``worker_token``) to redact from the reason."""
    return WorkerEvent.objects.filter(worker__workspace=workspace).annotate(
        worker_token=F("worker__access_token")
    )
