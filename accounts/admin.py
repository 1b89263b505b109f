from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "id", "email", "is_staff", "is_active")
    readonly_fields = ("id",)
    search_fields = ("username", "email", "id")
