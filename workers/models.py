import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from workers import states
from workers.probe import Health


class WorkerQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=states.ACTIVE_STATUSES)

    def terminal(self):
        return self.filter(status__in=states.TERMINAL_STATUSES)

    def stale(self, now: datetime | None = None):
        return self.filter(stale_q(now))


def stale_q(now: datetime | None = None) -> Q:
    """Starting or busy for longer than the configured thresholds.

    A busy worker counts from its last observed activity, since the probe
    refreshes that while kernels really run.
    """
    now = now or timezone.now()
    starting_before = now - timedelta(
        seconds=settings.NOTEBOOK_RUNTIME_STALE_STARTING_SECONDS
    )
    busy_before = now - timedelta(seconds=settings.NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS)
    return Q(status=states.STARTING, status_changed_at__lt=starting_before) | Q(
        status=states.BUSY, status_changed_at__lt=busy_before
    ) & (Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=busy_before))


class Worker(models.Model):
    """One start of a runtime. Rows are never deleted: they are the history."""

    class Status(models.TextChoices):
        STARTING = states.STARTING
        READY = states.READY
        BUSY = states.BUSY
        STOPPING = states.STOPPING
        STOPPED = states.STOPPED
        FAILED = states.FAILED

    class Backend(models.TextChoices):
        LOCAL = "local"
        DOCKER = "docker"
        KUBERNETES = "kubernetes"
        EXTERNAL = "external"

    # The probe's Health is the one enumeration; "" = never probed.
    HEALTH_CHOICES = [("", "unknown"), *((h.value, h.value.title()) for h in Health)]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="workers",
        help_text="Empty for external workers an admin registered by hand.",
    )
    name = models.CharField(max_length=120, help_text="Workspace name at start time.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workers"
    )
    project = models.ForeignKey(
        "workspaces.Project",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="workers",
        help_text="The project whose quota it counts against (its Space ID).",
    )
    backend = models.CharField(max_length=16, choices=Backend.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.STARTING
    )
    health = models.CharField(
        max_length=16, choices=HEALTH_CHOICES, blank=True, default=""
    )
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_latency_ms = models.PositiveIntegerField(null=True, blank=True)

    resource_class = models.ForeignKey(
        "resource_classes.ResourceClass",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="workers",
    )
    resource_snapshot = models.JSONField(default=dict, blank=True)
    # What the reapers, quota checks and a relaunch need, copied at start so
    # the workers app never reads the workspaces app's tables.
    launch_spec = models.JSONField(default=dict, blank=True)
    gpu_units = models.DecimalField(
        "effective GPU units", max_digits=8, decimal_places=2, default=0
    )
    gpu_model = models.CharField(max_length=100, blank=True)
    queue_name = models.CharField(max_length=63, blank=True)
    queue_priority = models.IntegerField(default=0)
    preemptible = models.BooleanField(default=False)
    plan_bound = models.BooleanField(
        default=False,
        help_text="Runs in a queue bound to a plan with a schedule window.",
    )
    repository_scope = models.JSONField(
        default=list,
        blank=True,
        help_text="Repositories or paths this worker may access.",
    )

    runtime_ref = models.JSONField(default=dict, blank=True)
    gateway_metadata = models.JSONField(default=dict, blank=True)
    endpoint = models.CharField(max_length=500, blank=True)
    access_token = models.CharField(max_length=128, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    error_code = models.CharField(max_length=40, blank=True)
    error_detail = models.TextField(
        blank=True, help_text="Sanitized before it is stored."
    )

    next_action = models.CharField(max_length=40, blank=True)
    next_action_at = models.DateTimeField(null=True, blank=True)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # view_worker (Django's default) opens the console; these gate what
        # a console user may do beyond reading.
        permissions = [
            ("manage_worker", "Can stop, retry, probe and start workers again"),
            ("access_server", "Can open a worker's notebook server"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="worker_recent"),
            models.Index(
                fields=["status", "-created_at", "-id"], name="worker_status_recent"
            ),
            models.Index(
                fields=["backend", "-created_at", "-id"], name="worker_backend_recent"
            ),
            models.Index(
                fields=["owner", "-created_at", "-id"], name="worker_owner_recent"
            ),
            models.Index(
                fields=["project", "-created_at", "-id"], name="worker_project_recent"
            ),
            models.Index(
                fields=["status", "status_changed_at"], name="worker_status_changed"
            ),
            models.Index(
                fields=["backend", "status"],
                condition=Q(status__in=sorted(states.ACTIVE_STATUSES)),
                name="worker_active_by_backend",
            ),
            # The console's resource-class usage: an index-only count of each
            # class's active workers. Both columns are indexed already, so
            # it costs updates no HOT.
            models.Index(
                fields=["resource_class", "status"],
                condition=Q(status__in=sorted(states.ACTIVE_STATUSES)),
                name="worker_active_by_class",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=states.STATUSES), name="worker_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(backend__in=states.BACKENDS), name="worker_backend_valid"
            ),
            models.CheckConstraint(
                condition=Q(gpu_units__gte=0), name="worker_gpu_units_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or 'worker'} [{self.short_id}] {self.status}"

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    @property
    def is_active(self) -> bool:
        return self.status in states.ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in states.TERMINAL_STATUSES

    @property
    def stop_failed(self) -> bool:
        """A stop that errored: still stopping, with the error recorded."""
        return self.status == states.STOPPING and bool(self.error_code)

    @property
    def can_stop(self) -> bool:
        """A stop may be requested: active and not already stopping."""
        return self.status in states.ALLOCATED_STATUSES

    @property
    def can_probe(self) -> bool:
        """The runtime should answer a health probe now."""
        return self.status in states.PROBED_STATUSES

    @property
    def can_start_again(self) -> bool:
        """Ended, and its workspace still exists to start from."""
        return self.is_terminal and self.workspace_id is not None

    @property
    def can_access_server(self) -> bool:
        """Its IDE is up, so an admin may open it through the proxy."""
        return self.workspace_id is not None and self.can_probe

    def is_stale(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        if self.status == states.STARTING:
            limit = settings.NOTEBOOK_RUNTIME_STALE_STARTING_SECONDS
            return self.status_changed_at < now - timedelta(seconds=limit)
        if self.status == states.BUSY:
            since = max(
                self.status_changed_at, self.last_activity_at or self.status_changed_at
            )
            return since < now - timedelta(
                seconds=settings.NOTEBOOK_RUNTIME_STALE_BUSY_SECONDS
            )
        return False


class WorkerStatusCount(models.Model):
    """How many workers have each (status, backend): the console's summary
    without counting rows, so it costs the same at any fleet size.

    Kept on PostgreSQL by statement triggers on ``workers_worker`` (migration
    0004) in the writer's own transaction: every writer keeps it exact (the
    transition service, launch, the seeds, test factories, ``bulk_create``,
    raw SQL) and no Python code writes it. Elsewhere (SQLite, dev only) it is
    not kept and readers count rows instead (``counts_kept``).
    """

    status = models.CharField(max_length=16, choices=Worker.Status.choices)
    backend = models.CharField(max_length=16, choices=Worker.Backend.choices)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["status", "backend"], name="worker_status_count_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.status}/{self.backend}: {self.n}"


def counts_kept(connection) -> bool:
    """Whether ``WorkerStatusCount`` is maintained on this database."""
    return connection.vendor == "postgresql"


class EventKind(models.TextChoices):
    """What a ``WorkerEvent`` records."""

    TRANSITION = "transition"
    ACTION = "action"
    PROGRESS = "progress"
    AUTOMATION = "automation"
    ERROR = "error"


class Actor(models.TextChoices):
    """Who caused a ``WorkerEvent``."""

    USER = "user"
    ADMIN = "admin"
    SYSTEM = "system"
    BACKEND = "backend"


class WorkerEvent(models.Model):
    """Append-only log of every transition and action on a worker."""

    id = models.BigAutoField(primary_key=True)
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    actor_type = models.CharField(max_length=16, choices=Actor.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="e.g. reap_idle, alice"
    )
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["worker", "at"], name="worker_event_timeline"),
            # The console's fleet-health charts read one time window of the
            # log: transitions (starts, statuses) by kind, reaper actions by
            # who acted (a small share of the log); any kind by time alone.
            models.Index(fields=["at"], name="worker_event_at"),
            models.Index(fields=["kind", "at"], name="worker_event_kind_at"),
            models.Index(fields=["actor_label", "at"], name="worker_event_actor_at"),
        ]

    def __str__(self) -> str:
        change = (
            f"{self.from_status} → {self.to_status}" if self.to_status else self.kind
        )
        return f"{self.at:%Y-%m-%d %H:%M:%S} {change} by {self.actor_label or self.actor_type}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("Worker events are append-only.")
        super().save(*args, **kwargs)
