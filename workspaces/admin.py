from django.contrib import admin

from workspaces.models import (
    Group,
    Plan,
    Project,
    SchedulingQueue,
    Volume,
    Workspace,
    WorkspaceMount,
)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "allow_root")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)


@admin.register(SchedulingQueue)
class SchedulingQueueAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "display_name",
        "priority",
        "preemptible",
        "deserved_gpu_limit",
        "is_default",
    )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "window_kind",
        "window_timezone",
        "default_cpu_limit",
        "default_memory_limit",
    )
    filter_horizontal = ("queues",)


class VolumeInline(admin.TabularInline):
    model = Volume
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "id",
        "personal_owner",
        "group",
        "gpu_quota",
        "plan",
        "allow_root",
    )
    list_filter = ("allow_root", "plan")
    search_fields = ("name", "slug", "id")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("id",)
    filter_horizontal = ("members",)
    inlines = [VolumeInline]


class WorkspaceMountInline(admin.TabularInline):
    model = WorkspaceMount
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "project",
        "owner",
        "ide_kind",
        "image",
        "gpu_count",
        "queue",
    )
    list_filter = ("ide_kind", "queue")
    search_fields = ("name", "id", "owner__username")
    list_select_related = ("project", "owner", "queue")
    readonly_fields = ("id",)
    inlines = [WorkspaceMountInline]


admin.site.register(Volume)
