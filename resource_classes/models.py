import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from resource_classes import quantities

# An extended resource name: "<dns-subdomain>/<name>", e.g. nvidia.com/gpu.
QUALIFIED_RESOURCE_NAME = re.compile(
    r"^(?=.{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+"
    r"/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


class ResourceClassQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def default(self) -> "ResourceClass | None":
        return self.filter(enabled=True, is_default=True).first()


class ResourceClass(models.Model):
    """The CPU, memory, GPU and storage offered to a worker.

    Workers copy ``snapshot()`` at start, so editing a class never rewrites
    what an existing worker was started with.
    """

    id = models.SlugField(
        primary_key=True,
        max_length=63,
        help_text="Stable identifier, e.g. 'gpu-a100'. Cannot be changed later.",
    )
    display_name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(
        "default",
        default=False,
        help_text="Preselected in the worker picker. Exactly one enabled class is the default.",
    )
    cpu_request = models.CharField(max_length=32, help_text="e.g. 500m or 2")
    cpu_limit = models.CharField(max_length=32)
    memory_request = models.CharField(max_length=32, help_text="e.g. 512Mi or 4Gi")
    memory_limit = models.CharField(max_length=32)
    gpu_count = models.PositiveSmallIntegerField("GPU count", default=0)
    gpu_resource_name = models.CharField(
        "GPU resource",
        max_length=253,
        blank=True,
        help_text="Qualified resource name, e.g. nvidia.com/gpu. Required when GPU count > 0.",
    )
    workspace_storage = models.CharField(max_length=32, default="10Gi")
    temp_storage = models.CharField(max_length=32, default="1Gi")
    idle_timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Idle stop after this many seconds; empty uses the platform default.",
    )

    # Canonical values, derived from the quantities above in clean().
    cpu_request_millicores = models.PositiveIntegerField(editable=False)
    cpu_limit_millicores = models.PositiveIntegerField(editable=False)
    memory_request_bytes = models.PositiveBigIntegerField(editable=False)
    memory_limit_bytes = models.PositiveBigIntegerField(editable=False)
    workspace_storage_bytes = models.PositiveBigIntegerField(editable=False)
    temp_storage_bytes = models.PositiveBigIntegerField(editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ResourceClassQuerySet.as_manager()

    class Meta:
        ordering = ["-is_default", "display_name"]
        verbose_name_plural = "resource classes"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="resource_class_single_default",
                violation_error_message="Another resource class is already the default.",
            ),
            models.CheckConstraint(
                condition=~Q(is_default=True, enabled=False),
                name="resource_class_default_enabled",
                violation_error_message="The default resource class must be enabled.",
            ),
            models.CheckConstraint(
                condition=Q(cpu_request_millicores__gt=0)
                & Q(cpu_request_millicores__lte=F("cpu_limit_millicores")),
                name="resource_class_cpu_request_within_limit",
                violation_error_message="CPU request must be positive and at most the limit.",
            ),
            models.CheckConstraint(
                condition=Q(memory_request_bytes__gt=0)
                & Q(memory_request_bytes__lte=F("memory_limit_bytes")),
                name="resource_class_memory_request_within_limit",
                violation_error_message="Memory request must be positive and at most the limit.",
            ),
            models.CheckConstraint(
                condition=Q(gpu_count=0) | Q(gpu_resource_name__contains="/"),
                name="resource_class_gpu_qualified",
                violation_error_message="A GPU class needs a qualified resource name.",
            ),
            models.CheckConstraint(
                condition=Q(workspace_storage_bytes__gt=0)
                & Q(temp_storage_bytes__gt=0),
                name="resource_class_storage_positive",
                violation_error_message="Storage sizes must be positive.",
            ),
        ]

    def __str__(self) -> str:
        gpu = f", {self.gpu_count}× {self.gpu_resource_name}" if self.gpu_count else ""
        return f"{self.display_name} ({self.cpu_limit} CPU, {self.memory_limit}{gpu})"

    def save(self, *args, **kwargs) -> None:
        # Code paths that skip clean() (fixtures, shell) still get canonical
        # values; invalid quantities then raise instead of writing garbage.
        errors: dict[str, list[str]] = {}
        self._derive_canonical(errors)
        if errors:
            raise ValidationError(errors)
        super().save(*args, **kwargs)

    def validate_constraints(self, exclude=None) -> None:
        # The default moves between classes inside resource_class_save, which
        # also checks the default rules; the database constraint stays the
        # last word against races.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        self._derive_canonical(errors)
        self._check_gpu(errors)
        self._check_storage_minimums(errors)
        if errors:
            raise ValidationError(errors)

    def _derive_canonical(self, errors: dict[str, list[str]]) -> None:
        fields = [
            ("cpu_request", "cpu_request_millicores", quantities.cpu_millicores),
            ("cpu_limit", "cpu_limit_millicores", quantities.cpu_millicores),
            ("memory_request", "memory_request_bytes", quantities.to_bytes),
            ("memory_limit", "memory_limit_bytes", quantities.to_bytes),
            ("workspace_storage", "workspace_storage_bytes", quantities.to_bytes),
            ("temp_storage", "temp_storage_bytes", quantities.to_bytes),
        ]
        for text_field, canonical_field, parse in fields:
            label = self._meta.get_field(text_field).verbose_name.capitalize()
            try:
                setattr(
                    self, canonical_field, parse(getattr(self, text_field), what=label)
                )
            except quantities.QuantityError as exc:
                errors.setdefault(text_field, []).append(str(exc))
        if not errors:
            if self.cpu_request_millicores > self.cpu_limit_millicores:
                errors["cpu_request"] = ["CPU request must not exceed the CPU limit."]
            if self.memory_request_bytes > self.memory_limit_bytes:
                errors["memory_request"] = [
                    "Memory request must not exceed the memory limit."
                ]

    def _check_gpu(self, errors: dict[str, list[str]]) -> None:
        name = self.gpu_resource_name.strip()
        if self.gpu_count and not name:
            errors["gpu_resource_name"] = [
                "A GPU count needs a resource name, e.g. nvidia.com/gpu."
            ]
        elif name and not QUALIFIED_RESOURCE_NAME.match(name):
            errors["gpu_resource_name"] = [
                f"{name!r} is not a qualified resource name; use <vendor-domain>/<name>, "
                "e.g. nvidia.com/gpu or amd.com/gpu."
            ]
        elif name and not self.gpu_count:
            errors["gpu_count"] = [
                "Set a GPU count above 0, or clear the GPU resource."
            ]

    def _check_storage_minimums(self, errors: dict[str, list[str]]) -> None:
        minimums = [
            ("workspace_storage", settings.NOTEBOOK_RUNTIME_MIN_WORKSPACE_STORAGE),
            ("temp_storage", settings.NOTEBOOK_RUNTIME_MIN_TEMP_STORAGE),
        ]
        for field, minimum in minimums:
            value = getattr(self, f"{field}_bytes", None)
            if field in errors or value is None:
                continue
            if value < quantities.to_bytes(minimum, what=field):
                errors[field] = [f"Must be at least {minimum} (platform minimum)."]

    def snapshot(self) -> dict:
        """Everything a worker needs to know about its limits, frozen as JSON."""
        return {
            "id": self.id,
            "display_name": self.display_name,
            "cpu_request": self.cpu_request,
            "cpu_limit": self.cpu_limit,
            "cpu_request_millicores": self.cpu_request_millicores,
            "cpu_limit_millicores": self.cpu_limit_millicores,
            "memory_request": self.memory_request,
            "memory_limit": self.memory_limit,
            "memory_request_bytes": self.memory_request_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
            "gpu_count": self.gpu_count,
            "gpu_resource_name": self.gpu_resource_name,
            "workspace_storage": self.workspace_storage,
            "workspace_storage_bytes": self.workspace_storage_bytes,
            "temp_storage": self.temp_storage,
            "temp_storage_bytes": self.temp_storage_bytes,
            "idle_timeout_seconds": self.idle_timeout_seconds,
            "class_updated_at": self.updated_at.isoformat()
            if self.updated_at
            else None,
        }

    def differs_from(self, snapshot: dict) -> bool:
        """True when the live class no longer matches a worker's snapshot."""
        ignore = {"class_updated_at"}
        live = self.snapshot()
        return any(live.get(k) != v for k, v in snapshot.items() if k not in ignore)
