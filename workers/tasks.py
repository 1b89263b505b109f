"""Celery tasks for workers: thin. Ids in, one service call, retry and time
limit policy here; every decision is in ``workers.services``.

All of them are idempotent, so they run with ``acks_late`` and
``reject_on_worker_lost``: a Celery worker killed mid-task leaves the message
on the broker and another worker runs it again to the same end, once the
broker's visibility timeout has passed (it exceeds every time limit here,
see ``CELERY_BROKER_TRANSPORT_OPTIONS``). Nothing waits for that: a lost
start fails at its start deadline through ``reconcile_workers``, a lost stop
is retried by it.
"""

from celery import shared_task
from django.conf import settings

from workers import services

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(**IDEMPOTENT, time_limit=600, soft_time_limit=540)
def start_worker(worker_id: str) -> str:
    """Launch and wait until ready (or failed; the start timeout is in
    the service and below these limits)."""
    return services.worker_start_run(worker_id=worker_id)


@shared_task(
    bind=True, **IDEMPOTENT, time_limit=180, soft_time_limit=150, max_retries=8
)
def stop_worker(self, worker_id: str) -> bool:
    """Terminate; retried after the service's growing backoff while the stop
    fails. A wait longer than the broker can hold a message unacked (an ETA
    task is held so) is left to ``reconcile_workers``, which retries when
    the worker's ``next_action_at`` is due: a stop is never dropped."""
    outcome = services.worker_stop_run(worker_id=worker_id)
    if (
        not outcome.done
        and self.request.retries < self.max_retries
        and outcome.retry_in < broker_visibility_timeout()
    ):
        raise self.retry(countdown=outcome.retry_in)
    return outcome.done


def broker_visibility_timeout() -> float:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
    return options.get("visibility_timeout", settings.CELERY_TASK_TIME_LIMIT)


@shared_task(**IDEMPOTENT, time_limit=300, soft_time_limit=270)
def reconcile_workers() -> dict:
    return services.workers_reconcile()


@shared_task(**IDEMPOTENT, time_limit=120, soft_time_limit=100)
def probe_workers() -> dict:
    return services.workers_probe()


@shared_task(**IDEMPOTENT, time_limit=120, soft_time_limit=100)
def reap_idle() -> dict:
    return services.workers_reap_idle()


@shared_task(**IDEMPOTENT, time_limit=300, soft_time_limit=270)
def cleanup_stale() -> dict:
    return services.workers_cleanup_stale()
