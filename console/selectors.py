"""Reads for the Notebook Workers console. Nothing here writes.

Every function takes the reading user and returns nothing to a non-staff
user, so the page, its partials and the websocket consumer share one rule.
The list page costs a constant number of queries whatever the fleet size:
two aggregates for the summary, one keyset-paged select for the rows
(limit+1, no COUNT for paging) and two for the resource class usage.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from console.filters import WorkerConsoleFilter
from console.forms import Cursor
from resource_classes.models import ResourceClass
from workers import states
from workers.models import Worker, WorkerEvent, stale_q
from workers.sanitize import sanitize, sanitize_data

# Columns the table never shows; the detail panel reads them on demand.
ROW_DEFERRED = (
    "access_token",
    "launch_spec",
    "runtime_ref",
    "gateway_metadata",
    "resource_snapshot",
    "repository_scope",
    "error_detail",
)
TIMELINE_LENGTH = 50
SNAPSHOT_LABELS = (
    ("display_name", "Class"),
    ("id", "ID"),
    ("cpu_request", "CPU request"),
    ("cpu_limit", "CPU limit"),
    ("memory_request", "Memory request"),
    ("memory_limit", "Memory limit"),
    ("gpu_count", "GPUs"),
    ("gpu_resource_name", "GPU resource"),
    ("workspace_storage", "Workspace storage"),
    ("temp_storage", "Temp storage"),
    ("idle_timeout_seconds", "Idle timeout (s)"),
    ("class_updated_at", "Class version"),
)


@dataclass(frozen=True)
class Summary:
    total: int
    active: int
    failed: int
    stale: int


@dataclass
class ConsolePage:
    filterset: WorkerConsoleFilter
    rows: list[Worker] = field(default_factory=list)
    summary: Summary | None = None
    older: Cursor | None = None
    limit: int = 0
    now: datetime = field(default_factory=timezone.now)

    @property
    def is_valid(self) -> bool:
        return self.filterset.is_bound and self.filterset.form.is_valid()

    @property
    def terminal_hidden(self) -> bool:
        form = self.filterset.form
        return not (
            form.cleaned_data.get("terminal") or form.cleaned_data.get("status")
        )

    @property
    def notes(self) -> list[str]:
        shown = self.filterset.explicit_terminal_statuses
        if not shown:
            return []
        names = " and ".join(shown)
        return [
            f"Showing {names} workers because the status filter asks for them; "
            "“Include terminal workers” only applies when no status is chosen."
        ]

    @property
    def older_query(self) -> str:
        return self._query(before=self.older.encode() if self.older else None)

    @property
    def newest_query(self) -> str:
        return self._query(before=None)

    def _query(self, *, before: str | None) -> str:
        query = self.filterset.data.copy()
        query.pop("before", None)
        if before:
            query["before"] = before
        return query.urlencode()


def can_view_console(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def visibility_scope(user) -> str:
    """Users with the same scope see the same rows (so may share a render).
    Change this together with ``visible_workers``."""
    return "staff" if can_view_console(user) else "none"


def visible_workers(*, user) -> QuerySet[Worker]:
    """Every worker for active staff, nothing for anyone else."""
    if not can_view_console(user):
        return Worker.objects.none()
    return Worker.objects.all()


def console_page(*, user, data: QueryDict) -> ConsolePage:
    """Filter, summarise and page the workers ``user`` may see.

    Invalid input yields a page with the bound form's errors and no rows.
    """
    filterset = WorkerConsoleFilter(data, queryset=visible_workers(user=user))
    page = ConsolePage(filterset=filterset)
    if not filterset.is_valid():
        return page
    options = filterset.form.cleaned_data
    filtered = filterset.qs
    page.summary = console_summary(filtered, now=page.now)
    page.limit = options["limit"]
    page.rows, page.older = _keyset_page(filtered, options.get("before"), page.limit)
    _flag(page.rows, page.now)
    return page


def console_summary(queryset: QuerySet[Worker], *, now: datetime) -> Summary:
    """Total, active, failed and stale workers in ``queryset``.

    Two aggregates, neither a per-row query: status counts, which PostgreSQL
    answers from the status index alone, and the stale count, which reads
    only the few starting/busy rows past their threshold. Folding the stale
    filter into the first query forced a heap scan of every row (66 ms vs
    33 ms for both at 100k workers).
    """
    queryset = queryset.order_by()
    counts = queryset.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status__in=sorted(states.ACTIVE_STATUSES))),
        failed=Count("id", filter=Q(status=states.FAILED)),
    )
    return Summary(**counts, stale=queryset.filter(stale_q(now)).count())


def _keyset_page(
    queryset: QuerySet[Worker], before: Cursor | None, limit: int
) -> tuple[list[Worker], Cursor | None]:
    """Newest first on (created_at, id); one extra row says "there is more"."""
    if before is not None:
        queryset = queryset.filter(
            Q(created_at__lt=before.created_at)
            | Q(created_at=before.created_at, id__lt=before.id)
        )
    rows = list(
        queryset.select_related("owner", "space", "resource_class")
        .defer(*ROW_DEFERRED)
        .order_by("-created_at", "-id")[: limit + 1]
    )
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, Cursor(created_at=rows[-1].created_at, id=rows[-1].id)


def _flag(rows: list[Worker], now: datetime) -> list[Worker]:
    """Per-row values the template cannot compute cheaply: flags that need
    "now", and the row's URL prefix (one reverse() per page, not six per row).
    """
    base = reverse("console:console")
    for worker in rows:
        worker.console_path = f"{base}{worker.id}/"
        worker.stale = worker.is_stale(now)
        worker.action_overdue = bool(
            worker.next_action_at and worker.next_action_at <= now
        )
    return rows


def resource_class_usage() -> list[ResourceClass]:
    """Every resource class with ``active_workers``.

    Two small queries: active workers grouped by class (a scan of the
    active-status index), then the classes. One joined query made
    PostgreSQL join every worker row before filtering (5x slower at 100k).
    """
    active = (
        Worker.objects.filter(status__in=sorted(states.ACTIVE_STATUSES))
        .order_by()
        .values_list("resource_class_id")
        .annotate(n=Count("id"))
    )
    counts = dict(active)
    classes = list(
        ResourceClass.objects.only(
            "id", "display_name", "enabled", "is_default"
        ).order_by("-is_default", "display_name")
    )
    for rc in classes:
        rc.active_workers = counts.get(rc.pk, 0)
    return classes


def worker_row(*, user, worker_id) -> Worker | None:
    """One worker as its table row shows it, or None if not visible."""
    rows = worker_rows(user=user, worker_ids=[worker_id])
    return rows[0] if rows else None


def worker_rows(*, user, worker_ids) -> list[Worker]:
    """Several rows in one query (the websocket flushes bursts this way)."""
    rows = (
        visible_workers(user=user)
        .select_related("owner", "space", "resource_class")
        .defer(*ROW_DEFERRED)
        .filter(pk__in=list(worker_ids))
        .order_by("-created_at", "-id")
    )
    return _flag(list(rows), timezone.now())


@dataclass
class WorkerDetail:
    worker: Worker
    events: list[WorkerEvent]
    error_detail: str
    gateway_metadata: dict
    runtime_ref: dict
    launch: dict
    repository_scope: list
    snapshot: dict
    class_changed: bool
    class_missing: bool
    endpoint: str

    @property
    def snapshot_items(self) -> list[tuple[str, object]]:
        """The snapshot's human-readable values, in a fixed order."""
        return [(label, self.snapshot[key]) for key, label in SNAPSHOT_LABELS
                if key in self.snapshot]  # fmt: skip

    @property
    def launch_json(self) -> str:
        return _pretty(self.launch)

    @property
    def runtime_ref_json(self) -> str:
        return _pretty(self.runtime_ref)

    @property
    def gateway_metadata_json(self) -> str:
        return _pretty(self.gateway_metadata)


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def worker_detail(*, user, worker_id) -> WorkerDetail | None:
    """The expanded panel: everything secret-bearing passes through sanitize.

    The access token is read only to redact it wherever it was echoed.
    """
    worker = (
        visible_workers(user=user)
        .select_related("owner", "space", "resource_class", "workspace")
        .filter(pk=worker_id)
        .first()
    )
    if worker is None:
        return None
    secrets = (worker.access_token,)
    live = worker.resource_class
    return WorkerDetail(
        worker=worker,
        events=_timeline(worker, secrets),
        error_detail=sanitize(worker.error_detail, extra_secrets=secrets),
        gateway_metadata=sanitize_data(worker.gateway_metadata, extra_secrets=secrets),
        runtime_ref=sanitize_data(worker.runtime_ref, extra_secrets=secrets),
        launch=_launch_summary(worker, secrets),
        repository_scope=sanitize_data(worker.repository_scope, extra_secrets=secrets),
        snapshot=worker.resource_snapshot or {},
        class_changed=bool(live and live.differs_from(worker.resource_snapshot or {})),
        class_missing=live is None and bool(worker.resource_snapshot),
        endpoint=sanitize(worker.endpoint, extra_secrets=secrets),
    )


def _timeline(worker: Worker, secrets: tuple[str, ...]) -> list[WorkerEvent]:
    """The newest events, shown oldest first, reasons and data sanitized."""
    recent = list(
        WorkerEvent.objects.filter(worker=worker)
        .select_related("actor")
        .order_by("-at", "-id")[:TIMELINE_LENGTH]
    )
    for event in recent:
        event.reason = sanitize(event.reason, extra_secrets=secrets)
        event.data = sanitize_data(event.data, extra_secrets=secrets)
    return recent[::-1]


def _launch_summary(worker: Worker, secrets: tuple[str, ...]) -> dict:
    spec = worker.launch_spec or {}
    keys = ("image", "ide_kind", "base_url", "queue_name", "root_shell", "port")
    picked = {k: spec[k] for k in keys if k in spec}
    return sanitize_data(picked, extra_secrets=secrets)
