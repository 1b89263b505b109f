"""Reads for the user-facing workspace pages."""

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from workers import states
from workers.models import Worker
from workers.services.idle import idle_warning_starts_at
from workspaces.models import Project, Workspace


def projects_for(*, user) -> QuerySet[Project]:
    """The projects ``user`` belongs to: personal ones and memberships."""
    ids = Project.objects.filter(Q(personal_owner=user) | Q(members=user)).values("pk")
    return Project.objects.filter(pk__in=ids).select_related("plan", "group")


def workspace_list_for(*, user) -> QuerySet[Workspace]:
    """The user's own workspaces, each with its newest worker prefetched."""
    latest = Worker.objects.order_by("-created_at", "-id")
    return (
        Workspace.objects.filter(owner=user)
        .select_related("project", "queue", "resource_class")
        .prefetch_related(
            Prefetch("workers", queryset=latest, to_attr="recent_workers")
        )
        .order_by("project__name", "name")
    )


def workspace_state(workspace: Workspace) -> tuple[str, Worker | None]:
    current = workspace.recent_workers[0] if workspace.recent_workers else None
    return states.workspace_state(current.status if current else None), current


def worker_idle_warning(
    worker: Worker | None, *, now: datetime | None = None
) -> datetime | None:
    """When the idle reaper will stop ``worker``, if that is inside the idle
    warning window (the banner "stops at 14:05 unless you use it"); else
    None. Reads ``next_action`` only: the reapers keep it current."""
    if worker is None or worker.status != states.READY:
        return None
    if worker.next_action != states.NEXT_IDLE_STOP or worker.next_action_at is None:
        return None
    now = now or timezone.now()
    return (
        worker.next_action_at
        if now >= idle_warning_starts_at(worker.next_action_at)
        else None
    )
