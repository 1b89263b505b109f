"""Enqueue worker tasks once the transaction that asked for them commits.

Design choice for a broker outage: the request's transaction has committed
(the worker row exists) when the enqueue fails, so the enqueue failure is
written down instead of lost: a start becomes ``failed`` with "Task queue
unavailable" (the user sees Error and can start again), a stop stays
``stopping`` with the error recorded ("stop failed", retried by
``reconcile_workers``). Nothing waits for a task that was never sent.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from workers import states
from workers.models import Actor

log = logging.getLogger(__name__)

QUEUE_UNAVAILABLE = "task_queue_unavailable"


def _send(task: Any, worker_id: str) -> None:
    """The one place that talks to the broker (tests replace it)."""
    task.apply_async(kwargs={"worker_id": worker_id})


def enqueue_on_commit(
    task: Any, worker_id, *, on_failure: Callable[[Exception], None]
) -> None:
    """Send the Celery ``task(worker_id=...)`` after commit; a send that
    fails calls ``on_failure(exc)`` instead of raising."""
    worker_id = str(worker_id)

    def send() -> None:
        try:
            _send(task, worker_id)
        except Exception as exc:  # noqa: BLE001 - any broker failure
            log.warning(
                "could not enqueue %s for %s", task.name, worker_id, exc_info=True
            )
            on_failure(exc)

    transaction.on_commit(send)


def enqueue_start(worker_id) -> None:
    """Enqueue ``start_worker``; if the broker is down the worker fails."""
    from workers.services.transitions import worker_transition

    def failed(exc: Exception) -> None:
        worker_transition(
            worker_id=worker_id,
            expected=states.STARTING,
            to=states.FAILED,
            actor_type=Actor.SYSTEM,
            actor_label="enqueue",
            reason="Task queue unavailable; start the workspace again shortly.",
            fields={
                "error_code": QUEUE_UNAVAILABLE,
                "error_detail": f"Task queue unavailable: {exc}",
            },
        )

    # Imported here: workers.tasks imports the services that import this module.
    from workers.tasks import start_worker

    enqueue_on_commit(start_worker, worker_id, on_failure=failed)


def enqueue_stop(worker_id) -> None:
    """Enqueue ``stop_worker``; if the broker is down the stop is recorded as
    failed (still ``stopping``) and ``reconcile_workers`` retries it."""

    def failed(exc: Exception) -> None:
        from workers.models import Worker
        from workers.services.stopping import stop_failed

        worker = Worker.objects.filter(id=worker_id, status=states.STOPPING).first()
        if worker is not None:
            message = f"Task queue unavailable: {exc}"
            stop_failed(worker, message, "enqueue", code=QUEUE_UNAVAILABLE)

    from workers.tasks import stop_worker

    enqueue_on_commit(stop_worker, worker_id, on_failure=failed)
