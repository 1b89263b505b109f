from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiToken, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "id", "email", "is_staff", "is_active")
    readonly_fields = ("id",)
    search_fields = ("username", "email", "id")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Admins may see and revoke tokens; only their owners create them (the
    token is shown to its owner once)."""

    list_display = (
        "name",
        "prefix",
        "user",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "key_id", "user__username")
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    fields = (*readonly_fields, "revoked_at")

    def has_add_permission(self, request) -> bool:
        return False
