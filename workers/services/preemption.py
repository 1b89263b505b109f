"""Preemption: a launch in a higher-priority queue that does not fit the GPU
capacity of its model stops preemptible workers of lower-priority queues.
Never a non-preemptible one, never one of equal or higher priority, and
only when stopping them makes the launch fit; otherwise nothing is stopped
and the launch is refused."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from workers import states
from workers.models import Actor, Worker
from workers.services.errors import LaunchRefused, gpu_text
from workers.services.stopping import workers_request_stop

PREEMPTED = "Preempted by higher-priority workload"


def gpu_capacity(model: str) -> Decimal | None:
    """Configured GPU units for ``model``; None = not limited."""
    capacity = settings.NOTEBOOK_RUNTIME_GPU_CAPACITY.get(model)
    return None if capacity is None else Decimal(str(capacity))


def victims_for(request, model_units: Decimal) -> list:
    """Ids of workers to preempt so ``request`` fits its model's capacity;
    [] when it fits already. Raises ``LaunchRefused`` when it cannot fit."""
    capacity = gpu_capacity(request.gpu_model)
    if capacity is None or model_units + request.gpu_units <= capacity:
        return []
    needed = model_units + request.gpu_units - capacity
    candidates = (
        Worker.objects.filter(
            status__in=states.ALLOCATED_STATUSES,
            gpu_model=request.gpu_model,
            preemptible=True,
            queue_priority__lt=request.spec.queue_priority,
        )
        .order_by("queue_priority", "-created_at")
        .values_list("id", "gpu_units")
    )
    chosen, freed = [], Decimal(0)
    for worker_id, units in candidates:
        if freed >= needed:
            break
        chosen.append(worker_id)
        freed += units
    if freed < needed:
        raise LaunchRefused(
            "gpu_capacity",
            f"{gpu_text(model_units)} of {gpu_text(capacity)} {request.gpu_model} GPUs "
            f"are in use and this workspace needs {gpu_text(request.gpu_units)}; "
            "stop a workspace, pick another GPU model or try again later",
        )
    return chosen


def preempt(*, victims: list, by_worker: Worker) -> list:
    """Ask for the stop of ``victims`` with the preemption reason, through
    the one stop service. Returns the ids that moved to ``stopping``."""
    if not victims:
        return []
    return workers_request_stop(
        worker_ids=victims,
        actor_type=Actor.SYSTEM,
        actor_label="preemption",
        reason=PREEMPTED,
        data={"preempted_by": str(by_worker.id), "queue": by_worker.queue_name},
    )
