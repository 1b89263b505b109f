"""Stopping workers: the request (-> ``stopping``, enqueue) and the run
(terminate, then ``stopped`` only once the backend confirms the runtime is
gone).

A stop that fails leaves the worker ``stopping`` with the error recorded
(``Worker.stop_failed``), a ``stop retry`` as its next action and the task
retried with backoff; ``reconcile_workers`` keeps retrying after the task
gives up, so a failed stop is never dropped. Attempts are counted from the
worker's own events, not by whichever task or pass made them, so the
backoff grows whoever retries (the task, reconcile, an admin's "retry
stop"). Nothing here blocks deleting a workspace: deletion only asks for a
stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from workers import states
from workers.backends.base import Phase, RuntimeRef
from workers.models import Actor, EventKind, Worker, WorkerEvent
from workers.sanitize import sanitize
from workers.services import runtime
from workers.services.queueing import enqueue_stop
from workers.services.transitions import (
    worker_record_event,
    worker_transition,
    workers_transition,
)

GONE = (Phase.NOT_FOUND, Phase.SUCCEEDED, Phase.FAILED)
# A runtime in its termination grace period is checked again this soon:
# the delete was accepted, so this is no failed stop.
TERMINATING_RECHECK_SECONDS = 5
STOP_ATTEMPT = "stop_attempt"  # event data key of a failed stop attempt


@dataclass(frozen=True)
class StopOutcome:
    done: bool
    retry_in: int = 0  # seconds; > 0 asks the task to retry


def _label(actor, actor_type: str) -> str:
    return getattr(actor, "username", "") or actor_type


def worker_request_stop(
    *,
    worker: Worker,
    actor_type: str,
    reason: str,
    actor=None,
    actor_label: str = "",
    data: dict | None = None,
) -> None:
    """Move an allocated worker to ``stopping`` and enqueue ``stop_worker``.
    A worker already stopping or terminal is left alone (idempotent)."""
    workers_request_stop(
        worker_ids=[worker.id],
        actor_type=actor_type,
        reason=reason,
        actor=actor,
        actor_label=actor_label,
        data=data,
    )


def workers_request_stop(
    *,
    worker_ids,
    actor_type: str,
    reason: str,
    actor=None,
    actor_label: str = "",
    data: dict | None = None,
) -> list:
    """``worker_request_stop`` for many workers (reapers, preemption, plan
    windows): the one way to ask for a stop. The transition clears any
    planned next action (an idle stop is moot once stopping). Returns the
    ids that moved to ``stopping``."""
    moved = workers_transition(
        worker_ids=worker_ids,
        expected=states.ALLOCATED_STATUSES,
        to=states.STOPPING,
        actor_type=actor_type,
        actor=actor,
        actor_label=actor_label or _label(actor, actor_type),
        reason=reason,
        data=data,
    )
    for worker_id in moved:
        enqueue_stop(worker_id)
    return moved


def worker_retry_stop(*, worker: Worker, actor) -> None:
    """Ask again for the stop of a ``stopping`` (usually stop-failed) worker."""
    if worker.status != states.STOPPING:
        return
    worker_record_event(
        worker_id=worker.id,
        kind=EventKind.ACTION,
        actor_type=Actor.ADMIN,
        actor=actor,
        actor_label=_label(actor, "admin"),
        reason="Stop retried",
        publish_owner_id=worker.owner_id,
    )
    enqueue_stop(worker.id)


def stop_backoff_seconds(attempt: int) -> int:
    """The wait after failed attempt ``attempt`` (1, 2, 3...): the base,
    doubled after each further failure, up to the cap."""
    base = settings.NOTEBOOK_RUNTIME_STOP_RETRY_BASE_SECONDS
    return min(
        base * 2 ** max(attempt - 1, 0),
        settings.NOTEBOOK_RUNTIME_STOP_RETRY_MAX_SECONDS,
    )


def stop_attempts_failed(worker: Worker) -> int:
    """How many attempts of this stop failed so far: the ``stop failed``
    events since the worker became ``stopping``."""
    return WorkerEvent.objects.filter(
        worker_id=worker.id,
        kind=EventKind.ERROR,
        at__gte=worker.status_changed_at,
        data__has_key=STOP_ATTEMPT,
    ).count()


def worker_stop_run(*, worker_id, actor_label: str = "stop_worker") -> StopOutcome:
    """Terminate a worker's runtime and end its stop. Idempotent: a worker
    already terminal is done; an allocated one is moved to ``stopping``
    first (a stop task that arrives without a request)."""
    worker = Worker.objects.filter(id=worker_id).first()
    if worker is None or worker.status in states.TERMINAL_STATUSES:
        return StopOutcome(done=True)
    if worker.status != states.STOPPING:
        worker_transition(
            worker_id=worker.id,
            expected=states.ALLOCATED_STATUSES,
            to=states.STOPPING,
            actor_type=Actor.SYSTEM,
            actor_label=actor_label,
            reason="Stop task received",
        )
    if not worker.runtime_ref:
        return _confirm_stopped(worker, "No runtime was created", actor_label)
    return _terminate(worker, actor_label)


def _terminate(worker: Worker, actor_label: str) -> StopOutcome:
    backend = runtime.backend_for(worker.backend)
    ref = RuntimeRef.from_json(worker.runtime_ref)
    try:
        backend.terminate(ref)
    except Exception as raised:  # noqa: BLE001 - see as_backend_error
        return stop_failed(worker, runtime.as_backend_error(raised), actor_label)
    observation = runtime.observe_safely(backend, ref)
    if observation.phase == Phase.TERMINATING:
        worker_record_event(
            worker_id=worker.id,
            kind=EventKind.PROGRESS,
            actor_type=Actor.BACKEND,
            actor_label=actor_label,
            reason="Runtime terminating (grace period); confirming shortly",
            publish_owner_id=worker.owner_id,
        )
        return StopOutcome(done=False, retry_in=TERMINATING_RECHECK_SECONDS)
    if observation.phase not in GONE:
        message = f"Runtime still {observation.phase} after terminate"
        return stop_failed(worker, message, actor_label, code="stop_unconfirmed")
    return _confirm_stopped(worker, "Runtime removed", actor_label)


def _confirm_stopped(worker: Worker, reason: str, actor_label: str) -> StopOutcome:
    worker_transition(
        worker_id=worker.id,
        expected=states.STOPPING,
        to=states.STOPPED,
        actor_type=Actor.BACKEND,
        actor_label=actor_label,
        reason=reason,
        fields={"error_code": "", "error_detail": "", "health": ""},
    )
    return StopOutcome(done=True)


def stop_failed(
    worker: Worker, error, actor_label: str, *, code: str = ""
) -> StopOutcome:
    """Record a failed stop attempt on a ``stopping`` worker (numbered, in
    its events) and when it is retried: later each time it fails again."""
    worker.refresh_from_db(fields=["status_changed_at"])
    attempt = stop_attempts_failed(worker) + 1
    retry_in = stop_backoff_seconds(attempt)
    code = code or f"stop_{getattr(error, 'code', 'failed')}"
    detail = sanitize(str(error), extra_secrets=(worker.access_token,))
    Worker.objects.filter(id=worker.id, status=states.STOPPING).update(
        error_code=code[:40],
        error_detail=detail,
        next_action=states.NEXT_STOP_RETRY,
        next_action_at=timezone.now() + timedelta(seconds=retry_in),
    )
    worker_record_event(
        worker_id=worker.id,
        kind=EventKind.ERROR,
        actor_type=Actor.SYSTEM,
        actor_label=actor_label,
        reason=f"Stop failed (attempt {attempt}; next in {retry_in} s): {detail}",
        data={STOP_ATTEMPT: attempt, "retry_in": retry_in, "error_code": code[:40]},
        publish_owner_id=worker.owner_id,
    )
    return StopOutcome(done=False, retry_in=retry_in)
