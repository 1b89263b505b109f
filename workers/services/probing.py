"""Health probes: ``probe_workers`` (periodic, batched) and ``worker_probe_now``.

A probe updates health and last activity; busy kernels keep a worker active
(ready <-> busy). A probe never fails a worker: an unreachable runtime is
recorded as such, and ``cleanup_stale`` / ``reconcile_workers`` decide with
the backend whether it is dead.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from workers import states
from workers.models import Actor, Worker
from workers.probe import Health
from workers.services import runtime
from workers.services.idle import idle_next_action
from workers.services.runtime import HealthReport
from workers.services.transitions import workers_transition

HEALTH_FIELDS = [
    "health",
    "health_checked_at",
    "health_latency_ms",
    "last_activity_at",
    "next_action",
    "next_action_at",
]


def probe_endpoints(workers: Sequence[Worker]) -> list[HealthReport]:
    """The default prober: ``workers.probe.probe_many``, all concurrently."""
    import asyncio

    from django.conf import settings

    from workers import probe

    targets = [probe.target_for_worker(w) for w in workers]
    timeout = settings.NOTEBOOK_RUNTIME_PROBE_TIMEOUT_SECONDS
    results = asyncio.run(probe.probe_many(targets, timeout))
    return [
        HealthReport(
            health=r.health,
            latency_ms=r.latency_ms,
            last_activity=r.last_activity,
            busy=r.busy,
            message=r.message,
        )
        for r in results
    ]


def workers_probe(*, workers: Sequence[Worker] | None = None) -> dict:
    """Probe ready/busy workers (all of them by default) and write the
    results in bulk. Returns counts for the task log."""
    if workers is None:
        workers = list(Worker.objects.filter(status__in=states.PROBED_STATUSES))
    if not workers:
        return {"probed": 0, "busy": 0, "ready": 0}
    reports = runtime.probe(workers)
    now = timezone.now()
    to_busy, to_ready = [], []
    for worker, report in zip(workers, reports, strict=True):
        status = _status_after(worker, report)
        if status != worker.status:
            (to_busy if status == states.BUSY else to_ready).append(worker)
        _apply(worker, report, status, now)
    _flip(to_busy, states.READY, states.BUSY, "Kernels busy")
    _flip(to_ready, states.BUSY, states.READY, "Kernels idle")
    Worker.objects.filter(status__in=states.PROBED_STATUSES).bulk_update(
        workers, HEALTH_FIELDS, batch_size=500
    )
    return {"probed": len(workers), "busy": len(to_busy), "ready": len(to_ready)}


def _status_after(worker: Worker, report: HealthReport) -> str:
    if report.health != Health.READY:
        return worker.status
    return states.BUSY if report.busy else states.READY


def _apply(worker: Worker, report: HealthReport, status: str, now) -> None:
    worker.health = report.health
    worker.health_checked_at = now
    worker.health_latency_ms = report.latency_ms
    activity = now if report.busy else report.last_activity
    if activity and (
        worker.last_activity_at is None or activity > worker.last_activity_at
    ):
        worker.last_activity_at = activity
    # ``status`` is what the probe saw; the row's status moves only through
    # ``_flip`` (the transition service), never by this bulk update.
    worker.next_action, worker.next_action_at = idle_next_action(worker, status=status)


def _flip(workers: list[Worker], expected: str, to: str, reason: str) -> None:
    if workers:
        workers_transition(
            worker_ids=[w.id for w in workers],
            expected=expected,
            to=to,
            actor_type=Actor.SYSTEM,
            actor_label="probe_workers",
            reason=reason,
        )


def worker_probe_now(*, worker: Worker, actor) -> Worker:
    """Probe one worker now (an admin's button); returns the fresh row.
    Workers that are not ready/busy are returned unchanged."""
    if worker.status in states.PROBED_STATUSES:
        workers_probe(workers=[worker])
    return Worker.objects.get(id=worker.id)
