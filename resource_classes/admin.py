from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q

from resource_classes.models import ResourceClass
from resource_classes.services import resource_class_default_errors, resource_class_save


class ResourceClassForm(forms.ModelForm):
    class Meta:
        model = ResourceClass
        fields = (
            "id",
            "display_name",
            "enabled",
            "is_default",
            "cpu_request",
            "cpu_limit",
            "memory_request",
            "memory_limit",
            "gpu_count",
            "gpu_resource_name",
            "workspace_storage",
            "temp_storage",
            "idle_timeout_seconds",
        )

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            rules = resource_class_default_errors(
                pk=cleaned.get("id", self.instance.pk),
                is_default=cleaned.get("is_default", False),
                enabled=cleaned.get("enabled", False),
            )
            for field, field_errors in rules.items():
                for error in field_errors:
                    self.add_error(field, error)
        return cleaned


@admin.register(ResourceClass)
class ResourceClassAdmin(admin.ModelAdmin):
    form = ResourceClassForm
    list_display = (
        "id",
        "display_name",
        "enabled",
        "is_default",
        "cpu_request",
        "cpu_limit",
        "memory_request",
        "memory_limit",
        "gpu_count",
        "gpu_resource_name",
        "workspace_storage",
        "temp_storage",
        "active_workers",
    )
    list_filter = ("enabled", "is_default")
    search_fields = ("id", "display_name")
    fieldsets = (
        (None, {"fields": ("id", "display_name", "enabled", "is_default")}),
        (
            "CPU and memory",
            {"fields": ("cpu_request", "cpu_limit", "memory_request", "memory_limit")},
        ),
        ("GPU", {"fields": ("gpu_count", "gpu_resource_name")}),
        (
            "Storage and idle policy",
            {"fields": ("workspace_storage", "temp_storage", "idle_timeout_seconds")},
        ),
    )

    def get_queryset(self, request):
        from workers.states import ACTIVE_STATUSES

        return (
            super()
            .get_queryset(request)
            .annotate(
                _active_workers=Count(
                    "workers", filter=Q(workers__status__in=ACTIVE_STATUSES)
                )
            )
        )

    @admin.display(description="Active workers", ordering="_active_workers")
    def active_workers(self, obj):
        return obj._active_workers

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj else ()

    def save_model(self, request, obj, form, change):
        previous = (
            ResourceClass.objects.filter(is_default=True).exclude(pk=obj.pk).first()
        )
        resource_class_save(obj)
        if obj.is_default and previous:
            self.message_user(
                request,
                f"“{obj.display_name}” is now the default; “{previous.display_name}” no longer is.",
                messages.INFO,
            )

    def has_delete_permission(self, request, obj=None):
        # Deleting the default would leave the platform with none.
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset.exclude(is_default=True))
