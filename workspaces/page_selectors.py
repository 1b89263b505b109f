"""Reads for the workspace pages: list rows, banners and the detail page.

Who sees what: a user sees their own workspaces; a user with
``workspaces.manage_ide`` also sees the workspaces of the projects they are
a member of. Anything else is "not found" (the views answer 404). Query
count is constant in the number of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from workers import states
from workers.models import EventKind, Worker, WorkerEvent
from workers.probe import Health
from workspaces.explain import Explanation, explain_error, explain_stop
from workspaces.models import Plan, Workspace, WorkspaceMount
from workspaces.plan_windows import WindowState
from workspaces.policy import is_plan_bound
from workspaces.selectors import worker_idle_warning

MANAGE_PERMISSION = "workspaces.manage_ide"
IDE_PATHS = {"jupyterlab": "lab", "code-server": ""}


def can_manage(user) -> bool:
    return bool(user.is_authenticated and user.has_perm(MANAGE_PERMISSION))


def visible_workspaces(*, user) -> QuerySet[Workspace]:
    """The workspaces ``user`` may see and act on (see the module doc)."""
    if not user.is_authenticated:
        return Workspace.objects.none()
    mine = Q(owner=user)
    if can_manage(user):
        mine |= Q(project__in=user.projects.values("pk"))
    return Workspace.objects.filter(mine)


@dataclass
class Row:
    """One workspace as the list shows it."""

    workspace: Workspace
    worker: Worker | None
    state: str
    own: bool
    idle_stop_at: datetime | None = None
    idle_minutes: int = 0
    window: WindowState | None = None  # its plan's, when in a plan-bound queue
    outcome: str = ""
    outcome_ok: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def open_url(self) -> str:
        """Where Open goes: the proxy seam ``/w/<id>/`` plus the IDE path."""
        ws = self.workspace
        path = IDE_PATHS.get(ws.ide_kind, ws.proxy_path.lstrip("/"))
        return f"{ws.base_url}{path}"

    @property
    def answering(self) -> bool:
        """The runtime was not found down by the probe's last look. Not yet
        probed counts as answering: a start ends only once the runtime
        answered its health check."""
        return self.worker is not None and self.worker.health != Health.UNREACHABLE

    @property
    def can_open(self) -> bool:
        """Open is offered only when the IDE is up and answers."""
        return self.state == states.WorkspaceStatus.RUNNING and self.answering

    @property
    def can_start(self) -> bool:
        return self.state in (
            states.WorkspaceStatus.STOPPED,
            states.WorkspaceStatus.ERROR,
        )

    @property
    def can_stop(self) -> bool:
        return self.state in (
            states.WorkspaceStatus.STARTING,
            states.WorkspaceStatus.RUNNING,
        )

    @property
    def window_closed(self) -> bool:
        return self.window is not None and not self.window.open


def workspace_rows(*, user, workspace_ids=None, now=None) -> list[Row]:
    """Rows for the list page (or only ``workspace_ids``), newest worker
    and plan window attached. Four queries whatever the number of rows."""
    now = now or timezone.now()
    current = Worker.objects.filter(workspace=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    workspaces = (
        visible_workspaces(user=user)
        .select_related("project__plan", "queue", "resource_class", "owner")
        .annotate(current_worker_id=Subquery(current.values("id")[:1]))
        .order_by("project__name", "name")
    )
    if workspace_ids is not None:
        workspaces = workspaces.filter(pk__in=list(workspace_ids))
    workspaces = list(workspaces)
    workers = Worker.objects.in_bulk([w.current_worker_id for w in workspaces])
    return [_row(ws, workers.get(ws.current_worker_id), user, now) for ws in workspaces]


def _row(ws: Workspace, worker: Worker | None, user, now) -> Row:
    plan = ws.project.plan
    window = plan.window_state(now) if is_plan_bound(ws.queue, plan) else None
    idle_stop_at = worker_idle_warning(worker, now=now)
    return Row(
        workspace=ws,
        worker=worker,
        state=states.workspace_state(worker.status if worker else None),
        own=ws.owner_id == user.pk,
        idle_stop_at=idle_stop_at,
        idle_minutes=(
            max(math.ceil((idle_stop_at - now).total_seconds() / 60), 0)
            if idle_stop_at
            else 0
        ),
        window=window,
    )


def workspace_row(*, user, workspace_id) -> Row | None:
    rows = workspace_rows(user=user, workspace_ids=[workspace_id])
    return rows[0] if rows else None


@dataclass
class Closing:
    """A plan window that is open and will close, and what runs in it."""

    plan: Plan
    closes_at: datetime
    remaining: str  # HH:MM:SS at render time; the page ticks it down
    names: list[str]


@dataclass
class Banners:
    idle: list[Row]
    closing: list[Closing]
    expired: list[Row]  # in a plan-bound queue whose window is closed


def banners(rows: list[Row], *, now: datetime) -> Banners:
    """The list page's banners, for the user's own workspaces only."""
    own = [r for r in rows if r.own]
    closing: dict[int, Closing] = {}
    for r in own:
        window = r.window
        if window and window.open and window.closes_at and r.can_stop:
            plan = r.workspace.project.plan
            entry = closing.setdefault(
                plan.pk,
                Closing(plan, window.closes_at, hms(window.closes_at - now), []),
            )
            entry.names.append(r.workspace.name)
    return Banners(
        idle=[r for r in own if r.idle_stop_at],
        closing=list(closing.values()),
        expired=[r for r in own if r.window_closed],
    )


def hms(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class Detail:
    row: Row
    explanation: Explanation | None
    progress: list[WorkerEvent]
    events: list[WorkerEvent]
    mounts: list[WorkspaceMount]


def workspace_detail_for(*, user, workspace_id) -> Detail | None:
    """The detail page of a workspace ``user`` may see; None otherwise."""
    row = workspace_row(user=user, workspace_id=workspace_id)
    if row is None:
        return None
    events = list(
        WorkerEvent.objects.filter(worker__workspace_id=workspace_id)
        .select_related("worker")
        .order_by("-at", "-id")[:100]
    )
    worker = row.worker
    progress = [
        e
        for e in reversed(events)
        if worker and e.worker_id == worker.id and e.kind == EventKind.PROGRESS
    ]
    mounts = list(
        WorkspaceMount.objects.filter(workspace_id=workspace_id)
        .select_related("volume")
        .order_by("mount_path")
    )
    return Detail(row, _explain(row, events), progress, events, mounts)


def _explain(row: Row, events: list[WorkerEvent]) -> Explanation | None:
    worker = row.worker
    if worker is None:
        return None
    if worker.status == states.FAILED or worker.stop_failed:
        return explain_error(worker.error_code)
    if worker.status in (states.STOPPING, states.STOPPED):
        stop = next(
            (
                e
                for e in events
                if e.worker_id == worker.id and e.to_status == states.STOPPING
            ),
            None,
        )
        return explain_stop(stop.reason) if stop else None
    return None
