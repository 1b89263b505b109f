"""Workers in the Django admin: read-only rows plus actions that call the
worker services.

A worker's lifecycle has one writer, the transition service
(``workers.services.transitions``): an admin form that saved ``status`` (or
any other column, since a form save writes the whole row back) would skip
the ``WorkerEvent``, the live update and the bookkeeping (``stopped_at``)
that reconcile relies on. So nothing here is editable, nothing can be added
or deleted (rows are the history; a worker is born from the launch
service), and "stop", "retry stop" and "probe now" are admin actions that
call the same services as the console. Everything that may hold a secret is
shown through ``workers.sanitize.redact`` with the worker's own token, the
display path every page uses; the token itself is never shown.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.urls import reverse
from django.utils.html import format_html

from workers import states
from workers.models import Actor, Worker, WorkerEvent
from workers.sanitize import redact, redact_json
from workers.services import worker_retry_stop, workers_probe, workers_request_stop

MANAGE_PERMISSION = "workers.manage_worker"


def _pre(text: str):
    return format_html('<pre class="readonly-json">{}</pre>', text)


def _redacted_json(column: str, label: str):
    """A read-only admin column: JSON data through the display path."""

    @admin.display(description=label)
    def show(self, obj):
        return _pre(redact_json(getattr(obj, column), secret=obj.access_token))

    return show


class NoWrites:
    """Rows are never added, changed or deleted here (a view permission is
    enough to read them); every field shown is read-only."""

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.fieldsets) if self.fieldsets else self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WorkerEventInline(NoWrites, admin.TabularInline):
    model = WorkerEvent
    extra = 0
    fields = (
        "at",
        "kind",
        "actor_type",
        "actor_label",
        "from_status",
        "to_status",
        "shown_reason",
    )

    @admin.display(description="reason")
    def shown_reason(self, event):
        return redact(event.reason, secret=event.worker.access_token)


@admin.register(Worker)
class WorkerAdmin(NoWrites, admin.ModelAdmin):
    """Raw rows for operators; the console is the Notebook Workers page."""

    list_display = (
        "short_id",
        "name",
        "owner",
        "project",
        "backend",
        "status",
        "health",
        "created_at",
    )
    list_filter = ("status", "backend", "health")
    search_fields = ("id", "name", "owner__username")
    list_select_related = ("owner", "project")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "console_link",
                    "name",
                    "owner",
                    "workspace",
                    "project",
                    "backend",
                    "resource_class",
                )
            },
        ),
        (
            "Lifecycle",
            {
                "fields": (
                    "status",
                    "status_changed_at",
                    "health",
                    "health_checked_at",
                    "health_latency_ms",
                    "next_action",
                    "next_action_at",
                    "created_at",
                    "started_at",
                    "ready_at",
                    "last_activity_at",
                    "stopped_at",
                    "error_code",
                    "shown_error_detail",
                )
            },
        ),
        (
            "Runtime",
            {
                "fields": (
                    "shown_endpoint",
                    "shown_runtime_ref",
                    "shown_gateway_metadata",
                    "shown_launch_spec",
                    "shown_repository_scope",
                    "shown_resource_snapshot",
                )
            },
        ),
        (
            "Scheduling",
            {
                "fields": (
                    "gpu_units",
                    "gpu_model",
                    "queue_name",
                    "queue_priority",
                    "preemptible",
                    "plan_bound",
                )
            },
        ),
    )
    inlines = [WorkerEventInline]
    actions = ["stop_workers", "retry_stops", "probe_workers"]
    show_full_result_count = False

    def has_manage_permission(self, request) -> bool:
        """The console's rule for acting on workers."""
        return request.user.has_perm(MANAGE_PERMISSION)

    @admin.display(description="Console")
    def console_link(self, obj):
        return format_html(
            '<a href="{}">Notebook Workers</a>', reverse("console:console")
        )

    @admin.display(description="error detail")
    def shown_error_detail(self, obj):
        if not obj.error_detail:
            return "—"
        return _pre(redact(obj.error_detail, secret=obj.access_token))

    @admin.display(description="endpoint")
    def shown_endpoint(self, obj):
        return redact(obj.endpoint, secret=obj.access_token)

    shown_runtime_ref = _redacted_json("runtime_ref", "runtime ref")
    shown_gateway_metadata = _redacted_json("gateway_metadata", "gateway metadata")
    shown_launch_spec = _redacted_json("launch_spec", "launch spec")
    shown_repository_scope = _redacted_json("repository_scope", "repository scope")
    shown_resource_snapshot = _redacted_json(
        "resource_snapshot", "resource class at start"
    )

    @admin.action(description="Stop selected workers", permissions=["manage"])
    def stop_workers(self, request, queryset):
        username = request.user.get_username()
        moved = workers_request_stop(
            worker_ids=list(queryset.values_list("id", flat=True)),
            actor_type=Actor.ADMIN,
            actor=request.user,
            reason=f"Stopped from the Django admin by {username}",
        )
        self._report(request, "Asked %d to stop", len(moved), queryset.count())

    @admin.action(
        description="Retry the stop of selected workers", permissions=["manage"]
    )
    def retry_stops(self, request, queryset):
        stopping = list(queryset.filter(status=states.STOPPING))
        for worker in stopping:
            worker_retry_stop(worker=worker, actor=request.user)
        self._report(request, "Retried %d stops", len(stopping), queryset.count())

    @admin.action(description="Probe selected workers now", permissions=["manage"])
    def probe_workers(self, request, queryset):
        # The plural of worker_probe_now: one concurrent batch, not one
        # probe timeout after another.
        probed = list(queryset.filter(status__in=states.PROBED_STATUSES))
        if probed:
            workers_probe(workers=probed)
        self._report(request, "Probed %d", len(probed), queryset.count())

    def _report(self, request, done: str, count: int, selected: int) -> None:
        message = (done % count) + f" of {selected} selected workers."
        skipped = selected - count
        if skipped:
            message += f" {skipped} were not in a status that allows it."
        level = messages.SUCCESS if count else messages.WARNING
        self.message_user(request, message, level)


@admin.register(WorkerEvent)
class WorkerEventAdmin(NoWrites, admin.ModelAdmin):
    """The append-only log, reasons and data shown sanitized."""

    list_display = (
        "at",
        "worker",
        "kind",
        "actor_label",
        "from_status",
        "to_status",
        "shown_reason",
    )
    list_filter = ("kind", "actor_type")
    list_select_related = ("worker",)
    fields = (
        "worker",
        "at",
        "kind",
        "actor_type",
        "actor",
        "actor_label",
        "from_status",
        "to_status",
        "shown_reason",
        "shown_data",
    )
    show_full_result_count = False

    @admin.display(description="reason")
    def shown_reason(self, event):
        return redact(event.reason, secret=event.worker.access_token)

    @admin.display(description="data")
    def shown_data(self, event):
        return _pre(redact_json(event.data, secret=event.worker.access_token))
