"""Launching a worker: limits and quotas checked under locks, one row
written, the start task enqueued once the row is committed.

Callers (``workspaces.services``) check the workspace policy (allowlists,
root shell, plan window) and describe the launch as a ``LaunchRequest``; this
module owns what is counted over workers: the per-user limit, the project GPU
quota, the queue's deserved GPU limit and the GPU capacity per model (with
preemption of lower-priority preemptible workers).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from workers import states
from workers.backends.base import LaunchSpec
from workers.models import Actor, EventKind, Worker
from workers.services import preemption
from workers.services.errors import LaunchRefused, gpu_text
from workers.services.queueing import enqueue_start
from workers.services.transitions import worker_record_event

ZERO = Decimal("0")


@dataclass(frozen=True)
class LaunchLimits:
    """The limits that apply to one launch, read by the caller."""

    project_label: str = ""
    gpu_quota: Decimal | None = None  # None = no project quota applies
    queue_deserved_gpu_limit: Decimal | None = None


@dataclass(frozen=True)
class LaunchRequest:
    """One launch: the spec (``worker_id`` and ``access_token`` are filled in
    here) plus what the worker row records for reapers and accounting."""

    spec: LaunchSpec
    owner_id: object
    name: str
    backend: str
    workspace_id: object = None
    project_id: object = None
    resource_class_id: str | None = None
    resource_snapshot: dict = field(default_factory=dict)
    gpu_units: Decimal = ZERO
    gpu_model: str = ""
    plan_bound: bool = False
    limits: LaunchLimits = field(default_factory=LaunchLimits)


def worker_launch(
    *, request: LaunchRequest, actor=None, actor_type: str = Actor.USER
) -> Worker:
    """Create a ``starting`` worker if every limit allows it, and enqueue its
    start on commit. Raises ``LaunchRefused`` naming the limit; writes
    nothing then. Safe under concurrency: the owner's row and per-project,
    per-queue and per-GPU-model locks serialise competing launches."""
    with transaction.atomic():
        _lock_for(request)
        victims = _check_limits(request)
        worker = _create_worker(request)
        preemption.preempt(victims=victims, by_worker=worker)
        worker_record_event(
            worker_id=worker.id,
            kind=EventKind.ACTION,
            actor_type=actor_type,
            actor=actor,
            actor_label=getattr(actor, "username", "") or actor_type,
            reason="Start requested",
            publish_owner_id=worker.owner_id,
        )
        enqueue_start(worker.id)
    return worker


def _lock_for(request: LaunchRequest) -> None:
    """Owner row lock, then advisory locks in a fixed order (no deadlocks).
    SQLite (embedded mode) serialises writers with IMMEDIATE transactions."""
    get_user_model().objects.select_for_update().filter(pk=request.owner_id).exists()
    if connection.vendor != "postgresql":
        return
    keys = [f"project:{request.project_id}", f"queue:{request.spec.queue_name}"]
    if request.gpu_units > 0:
        keys.append(f"gpu:{request.gpu_model}")
    with connection.cursor() as cursor:
        for key in sorted(keys):
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key]
            )


def _usage(request: LaunchRequest) -> dict:
    allocated = Worker.objects.filter(status__in=states.ALLOCATED_STATUSES)
    return allocated.aggregate(
        user_workers=Count("id", filter=Q(owner_id=request.owner_id)),
        project_units=Sum(
            "gpu_units", filter=Q(project_id=request.project_id), default=ZERO
        ),
        queue_units=Sum(
            "gpu_units", filter=Q(queue_name=request.spec.queue_name), default=ZERO
        ),
        model_units=Sum(
            "gpu_units", filter=Q(gpu_model=request.gpu_model), default=ZERO
        ),
    )


def _check_limits(request: LaunchRequest) -> list:
    """Raise ``LaunchRefused`` for the first limit hit; return the workers
    to preempt to make GPU capacity (usually none)."""
    usage = _usage(request)
    limit = settings.NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER
    if usage["user_workers"] >= limit:
        raise LaunchRefused(
            "max_workers_per_user",
            f"You have {usage['user_workers']} of {limit} workers running; stop a "
            "workspace before starting another (NOTEBOOK_RUNTIME_MAX_WORKERS_PER_USER).",
        )
    if request.gpu_units <= 0:
        return []
    _check_project_quota(request, usage["project_units"])
    _check_queue_limit(request, usage["queue_units"])
    return preemption.victims_for(request, usage["model_units"])


def _check_project_quota(request: LaunchRequest, used: Decimal) -> None:
    quota = request.limits.gpu_quota
    if quota is not None and used + request.gpu_units > quota:
        raise LaunchRefused(
            "project_gpu_quota",
            f"Project {request.limits.project_label} has {gpu_text(used)} of "
            f"{gpu_text(quota)} GPUs in use and this workspace needs "
            f"{gpu_text(request.gpu_units)}; stop a workspace or ask a project "
            "manager to raise the quota",
        )


def _check_queue_limit(request: LaunchRequest, used: Decimal) -> None:
    limit = request.limits.queue_deserved_gpu_limit
    if limit is not None and used + request.gpu_units > limit:
        raise LaunchRefused(
            "queue_deserved_gpu_limit",
            f"Queue {request.spec.queue_name} has {gpu_text(used)} of its deserved "
            f"{gpu_text(limit)} GPUs in use and this workspace needs "
            f"{gpu_text(request.gpu_units)}; try later, pick another queue or ask "
            "an admin to raise the queue's deserved GPU limit",
        )


def _create_worker(request: LaunchRequest) -> Worker:
    worker_id = uuid.uuid4()
    spec = replace(request.spec, worker_id=str(worker_id), access_token="")
    worker = Worker.objects.create(
        id=worker_id,
        workspace_id=request.workspace_id,
        name=request.name,
        owner_id=request.owner_id,
        project_id=request.project_id,
        backend=request.backend,
        status=states.STARTING,
        resource_class_id=request.resource_class_id,
        resource_snapshot=request.resource_snapshot,
        launch_spec=spec.to_json(),
        gpu_units=request.gpu_units,
        gpu_model=request.gpu_model,
        queue_name=spec.queue_name,
        queue_priority=spec.queue_priority,
        preemptible=spec.preemptible,
        plan_bound=request.plan_bound,
        access_token=secrets.token_urlsafe(32),
        next_action=states.NEXT_START_TIMEOUT,
        next_action_at=timezone.now()
        + timedelta(seconds=settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS),
    )
    return worker
