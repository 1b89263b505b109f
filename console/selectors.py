"""Reads for the Notebook Workers console. Nothing here writes.

Every function takes the reading user and returns nothing to a user who
may not view the console (``can_view_console``), so the page, its partials
and the websocket consumer share one rule.
The list page costs three queries whatever the fleet size, sent together
(``page_sql.fetch``): the summary (kept status counts and the stale rows,
one ``UNION ALL``), the keyset-paged rows (limit+1, no COUNT for paging)
and the resource class usage (each class's active workers in a subquery).
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Count,
    F,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language

from console import page_sql
from console.filters import WorkerConsoleFilter
from console.forms import Cursor
from console.rows import ConsoleRow, span
from resource_classes.models import ResourceClass
from workers import states
from workers.models import (
    Worker,
    WorkerEvent,
    counts_kept,
)

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
STATUS_LABELS = dict(Worker.Status.choices)
BACKEND_LABELS = dict(Worker.Backend.choices)
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
    rows: list[ConsoleRow] = field(default_factory=list)
    summary: Summary | None = None
    classes: list["ClassUsage"] = field(default_factory=list)
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


VIEW_PERMISSION = "workers.view_worker"
MANAGE_PERMISSION = "workers.manage_worker"
ACCESS_PERMISSION = "workers.access_server"
ZERO_ID = uuid.UUID(int=0)
# Django caches a user's permissions on the user object; a socket keeps one
# user object for hours, so its re-checks drop these first.
_PERMISSION_CACHES = ("_perm_cache", "_user_perm_cache", "_group_perm_cache")


def can_view_console(user, *, fresh: bool = False) -> bool:
    """Active staff holding ``workers.view_worker`` (superusers hold all).

    Staff as well as the permission: the console is part of the admin site.
    Reads the database unless the permissions are cached (call it from sync
    code); ``fresh=True`` re-reads them.
    """
    return _console_permission(user, VIEW_PERMISSION, fresh=fresh)


def can_manage_workers(user, *, fresh: bool = False) -> bool:
    """May run the console's actions: view, plus ``workers.manage_worker``."""
    return can_view_console(user, fresh=fresh) and user.has_perm(MANAGE_PERMISSION)


def _console_permission(user, permission: str, *, fresh: bool) -> bool:
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if fresh:
        for cache in _PERMISSION_CACHES:
            if hasattr(user, cache):  # through a lazy user too
                delattr(user, cache)
    return user.has_perm(permission)


def visibility_scope(user) -> str:
    """Users with the same scope see the same rows, with the same buttons (so
    may share a render). Change this together with ``visible_workers``."""
    if not can_view_console(user):
        return "none"
    level = "manage" if can_manage_workers(user) else "view"
    return f"{level}+access" if can_access_servers(user) else level


def can_access_servers(user) -> bool:
    """May open a user's IDE through Access server (the link on a row)."""
    return can_view_console(user) and user.has_perm(ACCESS_PERMISSION)


def visible_workers(*, user) -> QuerySet[Worker]:
    """Every worker for console viewers, nothing for anyone else."""
    if not can_view_console(user):
        return Worker.objects.none()
    return Worker.objects.all()


def console_page(*, user, data: QueryDict) -> ConsolePage:
    """Filter, summarise and page the workers ``user`` may see.

    Invalid input yields a page with the bound form's errors and no rows.
    The two queries are ``console.page_sql``'s, filled from the form.
    """
    filterset = WorkerConsoleFilter(data, queryset=visible_workers(user=user))
    page = ConsolePage(filterset=filterset)
    if not filterset.is_valid():
        return page
    options = filterset.form.cleaned_data
    page.limit = options["limit"]
    if not can_view_console(user):
        page.summary = Summary(total=0, active=0, failed=0, stale=0)
        return page
    conditions = page_sql.Conditions.of(statuses=filterset.statuses, options=options)
    counts, rows, page.classes = page_sql.fetch(
        _summary_query(conditions, options, now=page.now),
        page_sql.rows_query(conditions, options.get("before"), page.limit + 1),
        _class_usage_query(),
    )
    page.summary = _summary(counts)
    # One row past the limit says "there is more" (no COUNT for paging).
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        page.older = Cursor(created_at=rows[-1].created_at, id=rows[-1].id)
    page.rows = rows
    _flag(
        page.rows,
        page.now,
        manageable=can_manage_workers(user),
        may_access=can_access_servers(user),
    )
    return page


def _summary_query(
    conditions: page_sql.Conditions, options: dict, *, now: datetime
) -> page_sql.Query:
    """Total, active, failed and stale workers the filters match, in one
    query (the status counts and the stale count, ``UNION ALL``), for a
    reader who sees every worker (``visible_workers``).

    The status counts come from ``WorkerStatusCount`` (at most 24 rows,
    kept exact by triggers), so they cost the same at any fleet size, with
    or without terminal workers. They are per status and backend, so a
    project or user filter counts that project's or user's rows instead
    (their index). Stale reads only starting/busy rows past their threshold
    through the status indexes: bounded by the active fleet, not by
    history, and it depends on "now", so it is not kept.
    """
    kept = counts_kept(connection) and not (
        options.get("project") or options.get("user")
    )
    return page_sql.status_counts_query(
        conditions, kept=kept, backend=options.get("backend"), now=now
    )


def _summary(counts: dict[str, int]) -> Summary:
    stale_count = counts.pop(page_sql.STALE_KEY, 0)
    return Summary(
        total=sum(counts.values()),
        active=sum(n for s, n in counts.items() if s in states.ACTIVE_STATUSES),
        failed=counts.get(states.FAILED, 0),
        stale=stale_count,
    )


# (slug, label, confirmation): the buttons a manager sees in a row, each
# shown when the worker's predicate (a Worker property) holds. "Probe now"
# is in the expanded panel, beside the health it refreshes: the row keeps to
# what changes a worker, which keeps 100 rows under 80 KB of HTML.
ROW_ACTIONS = (
    ("can_stop", "stop", "Stop", "Stop this worker?"),
    ("stop_failed", "retry-stop", "Retry stop", "Retry stopping this worker?"),
    ("can_start_again", "start-again", "Start again", ""),
)


def _with_names(queryset: QuerySet[Worker]) -> QuerySet[Worker]:
    """The owner's, project's and class's names the row prints, joined in
    SQL rather than loaded as related objects."""
    return queryset.annotate(
        owner_name=F(f"owner__{get_user_model().USERNAME_FIELD}"),
        project_name=F("project__name"),
        class_name=F("resource_class__display_name"),
    )


def _flag(rows: list, now: datetime, *, manageable: bool, may_access: bool = False):
    """Set what the row partial (``console.rows``) prints, as plain values:
    flags that need "now", relative times, labels, the row's URL prefix and
    the buttons the reader may use. The names come with the row (``page_sql``
    for the page, ``_with_names`` for a single row).
    """
    # One reverse() per call, not one per row.
    access_prefix = reverse("proxy:access", args=[ZERO_ID]).removesuffix(f"{ZERO_ID}/")
    language = get_language()
    for worker in rows:
        wid = str(worker.id)
        # Relative to the console page, the only page that shows rows.
        worker.console_path = f"{wid}/"
        worker.manageable = manageable
        worker.stale = worker.is_stale(now)
        worker.action_overdue = bool(
            worker.next_action_at and worker.next_action_at <= now
        )
        worker.backend_label = BACKEND_LABELS.get(worker.backend, worker.backend)
        worker.status_label = STATUS_LABELS.get(worker.status, worker.status)
        worker.age = span(worker.created_at, now, language)
        worker.activity = _ago(worker.last_activity_at, now, language)
        worker.checked = _ago(worker.health_checked_at, now, language)
        worker.due = _due(worker, now, language)
        worker.actions = _actions(worker) if manageable else ()
        worker.access_url = (
            f"{access_prefix}{wid}/" if may_access and worker.can_access_server else ""
        )
    return rows


def _ago(moment: datetime | None, now: datetime, language: str) -> str:
    return f"{span(moment, now, language)} ago" if moment else ""


def _due(worker, now: datetime, language: str) -> str:
    if not worker.next_action_at:
        return ""
    if worker.action_overdue:
        return "due now"
    return f"in {span(now, worker.next_action_at, language)}"


def _actions(worker) -> list[tuple[str, str, str]]:
    return [action for shown, *action in ROW_ACTIONS if getattr(worker, shown)]


@dataclass(frozen=True)
class ClassUsage:
    """A resource class as the console's list shows it."""

    pk: str
    display_name: str
    enabled: bool
    is_default: bool
    active_workers: int


def _class_usage_query() -> page_sql.Query:
    """Every resource class with its ``active_workers``, in one query.

    Each class counts its active workers in a correlated subquery, an
    index-only scan of ``worker_active_by_class`` (bounded by the active
    fleet). A join of the classes to the workers made PostgreSQL join every
    worker row before filtering (5x slower at 100k), and grouping the
    workers' rows read the table (5 ms at 100k; 0.5 ms this way).
    The query is the same for every request, so its SQL is compiled once:
    compiling the subquery cost Django ten times what running it did.
    """
    sql, params = _class_usage_sql(connection.vendor)
    return page_sql.Query(
        sql, list(params), lambda fetched: [ClassUsage(*row) for row in fetched]
    )


@cache
def _class_usage_sql(vendor: str) -> tuple[str, tuple]:
    active = (
        Worker.objects.filter(
            resource_class=OuterRef("pk"),
            status__in=sorted(states.ACTIVE_STATUSES),
        )
        .order_by()
        .values("resource_class")
        .annotate(n=Count("*"))
        .values("n")
    )
    usage = (
        ResourceClass.objects.annotate(active_workers=Coalesce(Subquery(active), 0))
        .order_by("-is_default", "display_name")
        .values_list("id", "display_name", "enabled", "is_default", "active_workers")
    )
    return usage.query.sql_with_params()


def worker_row(*, user, worker_id) -> Worker | None:
    """One worker as its table row shows it, or None if not visible."""
    rows = worker_rows(user=user, worker_ids=[worker_id])
    return rows[0] if rows else None


def worker_rows(*, user, worker_ids) -> list[Worker]:
    """Several rows in one query (the websocket flushes bursts this way)."""
    rows = (
        _with_names(visible_workers(user=user))
        .select_related("owner", "project", "resource_class")
        .defer(*ROW_DEFERRED)
        .filter(pk__in=list(worker_ids))
        .order_by("-created_at", "-id")
    )
    return _flag(
        list(rows),
        timezone.now(),
        manageable=can_manage_workers(user),
        may_access=can_access_servers(user),
    )


@dataclass
class WorkerDetail:
    """The expanded panel's data, as stored. Secret-bearing values are shown
    only through the ``redact`` / ``redact_json`` filters with the worker's
    own token (``worker.access_token``): the one display path every page
    uses, so nothing here sanitizes a second, different way."""

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
    may_probe: bool  # the reader may use "Probe now" on it

    @property
    def snapshot_items(self) -> list[tuple[str, object]]:
        """The snapshot's human-readable values, in a fixed order; the class
        version (an ISO time in the JSON) in the page's one time format."""
        return [(label, _snapshot_value(key, self.snapshot[key]))
                for key, label in SNAPSHOT_LABELS if key in self.snapshot]  # fmt: skip


def _snapshot_value(key: str, value):
    if key != "class_updated_at" or not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # shown as stored rather than not at all
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return date_format(timezone.localtime(moment), "Y-m-d H:i:s T")


def worker_detail(*, user, worker_id) -> WorkerDetail | None:
    """The expanded panel; the template redacts what it prints."""
    worker = (
        visible_workers(user=user)
        .select_related("owner", "project", "resource_class", "workspace")
        .filter(pk=worker_id)
        .first()
    )
    if worker is None:
        return None
    live = worker.resource_class
    return WorkerDetail(
        worker=worker,
        events=_timeline(worker),
        error_detail=worker.error_detail,
        gateway_metadata=worker.gateway_metadata or {},
        runtime_ref=worker.runtime_ref or {},
        launch=_launch_summary(worker),
        repository_scope=worker.repository_scope or [],
        snapshot=worker.resource_snapshot or {},
        class_changed=bool(live and live.differs_from(worker.resource_snapshot or {})),
        class_missing=live is None and bool(worker.resource_snapshot),
        endpoint=worker.endpoint,
        may_probe=worker.can_probe and can_manage_workers(user),
    )


def _timeline(worker: Worker) -> list[WorkerEvent]:
    """The newest events, shown oldest first."""
    recent = (
        WorkerEvent.objects.filter(worker=worker)
        .select_related("actor")
        .order_by("-at", "-id")[:TIMELINE_LENGTH]
    )
    return list(recent)[::-1]


def _launch_summary(worker: Worker) -> dict:
    spec = worker.launch_spec or {}
    keys = ("image", "ide_kind", "base_url", "queue_name", "root_shell", "port")
    return {k: spec[k] for k in keys if k in spec}
