from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from workers.models import Worker, WorkerEvent


class WorkerEventInline(admin.TabularInline):
    model = WorkerEvent
    extra = 0
    can_delete = False
    fields = (
        "at",
        "kind",
        "actor_type",
        "actor_label",
        "from_status",
        "to_status",
        "reason",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    """Raw rows for registering external workers; the console is the
    Notebook Workers page. The access token is never shown."""

    list_display = (
        "short_id",
        "name",
        "owner",
        "space",
        "backend",
        "status",
        "health",
        "created_at",
    )
    list_filter = ("status", "backend", "health")
    search_fields = ("id", "name", "owner__username")
    list_select_related = ("owner", "space")
    exclude = ("access_token",)
    readonly_fields = ("id", "created_at", "status_changed_at", "console_link")
    raw_id_fields = ("owner", "workspace", "space", "resource_class")
    inlines = [WorkerEventInline]
    show_full_result_count = False

    @admin.display(description="Console")
    def console_link(self, obj):
        return format_html(
            '<a href="{}">Notebook Workers</a>', reverse("console:console")
        )


@admin.register(WorkerEvent)
class WorkerEventAdmin(admin.ModelAdmin):
    list_display = (
        "at",
        "worker",
        "kind",
        "actor_label",
        "from_status",
        "to_status",
        "reason",
    )
    list_filter = ("kind", "actor_type")
    raw_id_fields = ("worker", "actor")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
