from django import forms
from django.contrib import admin

from workers.secret_box import seal
from workspaces.models import (
    Group,
    Plan,
    Project,
    SchedulingQueue,
    Volume,
    Workspace,
    WorkspaceMount,
)
from workspaces.validators import git_hosts


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


class ProjectAdminForm(forms.ModelForm):
    """Project secrets are write-only: a blank field keeps the stored one,
    "clear" removes it, and the stored value is never rendered back. The git
    secret is kept only with the host(s) it is for (shown: not secret)."""

    package_mirror_url = forms.URLField(
        label="Package mirror index URL",
        required=False,
        assume_scheme="https",
        help_text=Project._meta.get_field("package_mirror_url").help_text,
    )
    git_secret = forms.CharField(
        label="Git credentials",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="A token (or user:token) for https, or an SSH deploy key, "
        "for the git host(s) above. Stored encrypted; leave blank to keep the "
        "current one.",
    )
    clear_git_secret = forms.BooleanField(required=False)
    mirror_secret = forms.CharField(
        label="Mirror credentials",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="user:password for the package mirror. Stored encrypted; "
        "leave blank to keep the current one.",
    )
    clear_mirror_secret = forms.BooleanField(required=False)

    class Meta:
        model = Project
        fields = [
            "name",
            "slug",
            "personal_owner",
            "group",
            "members",
            "image_allowlist",
            "allow_root",
            "gpu_quota",
            "plan",
            "fetch_policy",
            "package_mirror_url",
            "git_secret_hosts",
        ]

    def clean_git_secret_hosts(self) -> str:
        return ", ".join(git_hosts(self.cleaned_data["git_secret_hosts"]))

    def clean(self):
        data = super().clean()
        keeps_secret = not data.get("clear_git_secret") and (
            data.get("git_secret") or self.instance.git_secret_sealed
        )
        # A refused entry already has its own message.
        named = data.get("git_secret_hosts") or "git_secret_hosts" in self.errors
        if keeps_secret and not named:
            self.add_error(
                "git_secret_hosts",
                "Name the git host(s) the git credentials are for, e.g. "
                "github.com: git gets them only for repositories on those "
                "hosts. Or clear the credentials.",
            )
        return data

    def save(self, commit=True):
        project = super().save(commit=False)
        for name in ("git_secret", "mirror_secret"):
            if self.cleaned_data.get(f"clear_{name}"):
                setattr(project, f"{name}_sealed", "")
            elif self.cleaned_data.get(name):
                setattr(project, f"{name}_sealed", seal(self.cleaned_data[name]))
        if commit:
            project.save()
            self.save_m2m()
        return project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = (
        "name",
        "id",
        "personal_owner",
        "group",
        "gpu_quota",
        "plan",
        "allow_root",
        "fetch_policy",
    )
    list_filter = ("allow_root", "plan", "fetch_policy")
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
