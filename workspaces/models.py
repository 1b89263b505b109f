import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from resource_classes import quantities
from workspaces import plan_windows
from workspaces.validators import (
    dns_label,
    git_hosts,
    image_reference,
    mount_path,
    split_git_hosts,
    workspace_repository_url,
)
from workspaces.validators import repository_ref as valid_ref
from workspaces.validators import requirements_path as valid_requirements_path


class Group(models.Model):
    """A team that owns group projects; may allow root containers."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=63, unique=True)
    allow_root = models.BooleanField("allow root containers", default=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="teams"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "team group"

    def __str__(self) -> str:
        return self.name


class SchedulingQueue(models.Model):
    name = models.SlugField(max_length=63, unique=True)
    display_name = models.CharField(max_length=100, blank=True)
    priority = models.IntegerField(
        default=0, help_text="Higher runs first when GPUs are scarce."
    )
    preemptible = models.BooleanField(default=False)
    deserved_gpu_limit = models.DecimalField(
        "deserved GPU limit",
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Effective GPU units this queue may hold at once; empty = no limit.",
    )
    is_default = models.BooleanField(
        "default queue",
        default=False,
        help_text="Always available, no priority guarantees.",
    )

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="single_default_queue",
            ),
            models.CheckConstraint(
                condition=Q(deserved_gpu_limit__isnull=True)
                | Q(deserved_gpu_limit__gte=0),
                name="queue_deserved_gpu_nonneg",
            ),
        ]

    def __str__(self) -> str:
        label = self.display_name or self.name
        return (
            f"{label} (default)"
            if self.is_default
            else f"{label} (priority {self.priority})"
        )

    @classmethod
    def default(cls) -> "SchedulingQueue":
        queue, _ = cls.objects.get_or_create(
            is_default=True, defaults={"name": "default", "display_name": "Default"}
        )
        return queue


class Plan(models.Model):
    class WindowKind(models.TextChoices):
        NONE = "none", "Always open"
        WEEKLY = "weekly", "Weekly rules"
        ONE_OFF = "one_off", "One-off start and end"

    name = models.CharField(max_length=100, unique=True)
    allowed_gpu_models = models.JSONField(
        default=list,
        blank=True,
        help_text='e.g. ["RTX 5090", "RTX 6000 Pro"]; empty = none.',
    )
    default_cpu_limit = models.CharField(max_length=32, default="2")
    default_memory_limit = models.CharField(max_length=32, default="4Gi")
    queues = models.ManyToManyField(SchedulingQueue, blank=True, related_name="plans")
    window_kind = models.CharField(
        max_length=8, choices=WindowKind.choices, default="none"
    )
    window_timezone = models.CharField(max_length=64, default="UTC")
    window_rules = models.JSONField(
        default=list,
        blank=True,
        help_text='Weekly: [{"days": [0,1,2,3,4], "start": "08:00", "end": "20:00"}], Monday = 0.',
    )
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(window_kind="one_off")
                | Q(
                    window_start__isnull=False,
                    window_end__isnull=False,
                    window_start__lt=models.F("window_end"),
                ),
                name="plan_one_off_window_ordered",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        for field in ("default_cpu_limit", "default_memory_limit"):
            try:
                quantities.parse(
                    getattr(self, field), what=self._meta.get_field(field).verbose_name
                )
            except quantities.QuantityError as exc:
                errors[field] = str(exc)
        if not isinstance(self.allowed_gpu_models, list) or not all(
            isinstance(m, str) and m.strip() for m in self.allowed_gpu_models
        ):
            errors["allowed_gpu_models"] = "A list of GPU model names."
        try:
            plan_windows.zone(self.window_timezone)
            if self.window_kind == self.WindowKind.WEEKLY:
                if not isinstance(self.window_rules, list) or not self.window_rules:
                    raise plan_windows.WindowRuleError(
                        "Weekly windows need at least one rule."
                    )
                for rule in self.window_rules:
                    plan_windows.parse_rule(rule)
        except plan_windows.WindowRuleError as exc:
            errors["window_rules"] = str(exc)
        if self.window_kind == self.WindowKind.ONE_OFF and not (
            self.window_start
            and self.window_end
            and self.window_start < self.window_end
        ):
            errors["window_end"] = "A one-off window needs a start before its end."
        if errors:
            raise ValidationError(errors)

    def window_state(self, now=None) -> plan_windows.WindowState:
        return plan_windows.window_state(
            kind=self.window_kind,
            now=now or timezone.now(),
            tz_name=self.window_timezone,
            rules=self.window_rules,
            start=self.window_start,
            end=self.window_end,
        )


class FetchPolicy(models.TextChoices):
    """Where a workspace's setup step may fetch packages from."""

    ONLINE = "online", "Online (the configured indexes)"
    MIRROR = "mirror", "Mirror (only the project's private index)"
    OFFLINE = "offline", "Offline (the dependency cache only)"


class Project(models.Model):
    """A space: the unit of quota. Its UUID is the *Space ID*."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=63, unique=True)
    personal_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="personal_projects",
    )
    group = models.ForeignKey(
        Group, on_delete=models.PROTECT, null=True, blank=True, related_name="projects"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="projects"
    )
    image_allowlist = models.JSONField(
        default=list,
        blank=True,
        help_text='Images users may pick, e.g. ["jupyter/base:4.2"].',
    )
    allow_root = models.BooleanField("allow root containers", default=False)
    gpu_quota = models.DecimalField(
        "GPU quota",
        max_digits=8,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Effective GPU units (GPU count × SM% / 100) active at once.",
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="projects"
    )
    fetch_policy = models.CharField(
        "package fetch policy",
        max_length=8,
        choices=FetchPolicy.choices,
        default=FetchPolicy.ONLINE,
    )
    package_mirror_url = models.URLField(
        "package mirror index URL",
        blank=True,
        help_text="Simple index (PEP 503) used under the mirror policy, without "
        "credentials, e.g. https://pypi.example.org/simple.",
    )
    # Fernet ciphertexts (workers.secret_box); written through the admin's
    # write-only fields, never shown back.
    git_secret_sealed = models.TextField(blank=True, editable=False)
    mirror_secret_sealed = models.TextField(blank=True, editable=False)
    # Not secret: the hosts the git secret may go to. A workspace's URL is
    # its user's to choose; without this binding any member could point one
    # at their own server and receive the project's token.
    git_secret_hosts = models.CharField(
        "git credentials hosts",
        max_length=500,
        blank=True,
        validators=[git_hosts],
        help_text="The git host(s) the git credentials are for, e.g. github.com "
        "or git.example.org:8443 (commas between several). Git gets the "
        "credentials only for a repository on one of these hosts (exact name; "
        "without a port, the standard one: 443 for https, 22 for ssh); other "
        "repositories are cloned without them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(personal_owner__isnull=True, group__isnull=False)
                | Q(personal_owner__isnull=False, group__isnull=True),
                name="project_personal_xor_group",
                violation_error_message="A project is either personal (an owner) or a group's.",
            ),
            models.CheckConstraint(
                condition=Q(gpu_quota__gte=0), name="project_gpu_quota_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_personal(self) -> bool:
        return self.personal_owner_id is not None

    @property
    def git_hosts(self) -> tuple[str, ...]:
        """``git_secret_hosts`` as a tuple; empty: the git secret goes nowhere."""
        return tuple(split_git_hosts(self.git_secret_hosts))

    @property
    def root_allowed(self) -> bool:
        """Personal: the project allows root. Group: the project and its group do."""
        if self.group_id is not None:
            return self.allow_root and self.group.allow_root
        return self.allow_root

    def clean(self) -> None:
        if self.fetch_policy == FetchPolicy.MIRROR and not self.package_mirror_url:
            raise ValidationError(
                {"package_mirror_url": "The mirror policy needs the mirror's URL."}
            )
        if not isinstance(self.image_allowlist, list):
            raise ValidationError({"image_allowlist": "A list of image references."})
        for image in self.image_allowlist:
            try:
                image_reference(image)
            except ValidationError as exc:
                raise ValidationError({"image_allowlist": exc.messages}) from exc


class Volume(models.Model):
    """A persistent volume claim that belongs to a project."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="volumes"
    )
    name = models.CharField(max_length=63, validators=[dns_label])
    size = models.CharField(max_length=32, default="10Gi")
    storage_class = models.CharField(
        max_length=253,
        blank=True,
        help_text="Kubernetes StorageClass of the volume's PVC; empty = the "
        "cluster's default.",
    )

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], name="volume_name_per_project"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.size}, {self.project})"

    def clean(self) -> None:
        try:
            quantities.to_bytes(self.size, what="Size")
        except quantities.QuantityError as exc:
            raise ValidationError({"size": str(exc)}) from exc


class Workspace(models.Model):
    class IdeKind(models.TextChoices):
        JUPYTERLAB = "jupyterlab", "JupyterLab"
        CODE_SERVER = "code-server", "VS Code (code-server)"
        CUSTOM = "custom", "Custom image"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="workspaces"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workspaces"
    )
    name = models.CharField(max_length=63, validators=[dns_label])
    ide_kind = models.CharField(
        max_length=16, choices=IdeKind.choices, default="jupyterlab"
    )
    proxy_path = models.CharField(
        max_length=200,
        blank=True,
        help_text="Custom images: the path Open goes to, e.g. /app/.",
    )
    image = models.CharField(max_length=255, validators=[image_reference])
    root_shell = models.BooleanField(default=False)
    queue = models.ForeignKey(
        SchedulingQueue, on_delete=models.PROTECT, related_name="workspaces"
    )
    resource_class = models.ForeignKey(
        "resource_classes.ResourceClass",
        on_delete=models.PROTECT,
        related_name="workspaces",
    )
    gpu_count = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(16)]
    )
    gpu_model = models.CharField(max_length=100, blank=True)
    gpu_sm_percentage = models.PositiveSmallIntegerField(
        "SM percentage",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    cpu_limit = models.CharField(
        max_length=32, blank=True, help_text="Override; empty = plan default."
    )
    memory_limit = models.CharField(max_length=32, blank=True)
    repository_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[workspace_repository_url],
        help_text="https:// or ssh git URL, cloned into the workspace at start.",
    )
    repository_ref = models.CharField(
        max_length=200,
        blank=True,
        validators=[valid_ref],
        help_text="Branch, tag or commit; empty = the default branch.",
    )
    requirements_path = models.CharField(
        max_length=200,
        blank=True,
        validators=[valid_requirements_path],
        help_text="Empty = the first of requirements.txt, pyproject.toml, "
        "environment.yml.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("manage_ide", "Can manage every workspace (IDE_MANAGE)")]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], name="workspace_name_per_project"
            ),
            models.CheckConstraint(
                condition=Q(gpu_sm_percentage__gte=1) & Q(gpu_sm_percentage__lte=100),
                name="workspace_sm_percentage_range",
            ),
            models.CheckConstraint(
                condition=Q(gpu_count=0) | ~Q(gpu_model=""),
                name="workspace_gpu_needs_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.project})"

    @property
    def effective_gpu_units(self) -> Decimal:
        return (Decimal(self.gpu_count) * self.gpu_sm_percentage / 100).quantize(
            Decimal("0.01")
        )

    @property
    def base_url(self) -> str:
        return f"/w/{self.id}/"

    @property
    def open_url(self) -> str:
        """Where Open goes: the proxy seam ``/w/<id>/`` plus the IDE's path
        (JupyterLab ``lab``, code-server its root, a custom image its own)."""
        paths = {self.IdeKind.JUPYTERLAB: "lab", self.IdeKind.CODE_SERVER: ""}
        return self.base_url + paths.get(self.ide_kind, self.proxy_path.lstrip("/"))

    def clean(self) -> None:
        errors = {}
        for field in ("cpu_limit", "memory_limit"):
            value = getattr(self, field)
            if value:
                try:
                    quantities.parse(value, what=field.replace("_", " ").capitalize())
                except quantities.QuantityError as exc:
                    errors[field] = str(exc)
        if self.gpu_count and not self.gpu_model:
            errors["gpu_model"] = "Pick a GPU model for a GPU workspace."
        if (self.repository_ref or self.requirements_path) and not self.repository_url:
            errors["repository_url"] = "Give the repository the ref or path is for."
        if (
            self.ide_kind == self.IdeKind.CUSTOM
            and self.proxy_path
            and not self.proxy_path.startswith("/")
        ):
            errors["proxy_path"] = "The proxy path starts with '/'."
        if errors:
            raise ValidationError(errors)


class WorkspaceMount(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="mounts"
    )
    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="mounts")
    mount_path = models.CharField(max_length=200, validators=[mount_path])
    read_only = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "mount_path"], name="mount_path_per_workspace"
            )
        ]

    def __str__(self) -> str:
        return f"{self.volume.name} → {self.mount_path}"
