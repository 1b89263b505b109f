"""Bring the database and the backends into agreement.

Per backend: read the workers that may have a runtime, then one
``list_runtimes()`` call (in that order, so a runtime created after the read
is never mistaken for a vanished one), then:

* runtimes no active worker claims are orphans: terminated once their
  worker has been terminal for the grace period (or has no row at all);
  a backend lists a runtime whose leftovers outlived it (Kubernetes: a
  Secret or claim of a half-finished launch) as NOT_FOUND, so these are
  removed the same way, and count as "not listed" for active workers;
* active workers whose runtime is not listed: ``stopping`` ones are
  ``stopped`` (the backend confirms it is gone), started ones ``failed``;
* workers that should run (starting, ready, busy) whose runtime is listed
  as stopped, whatever its exit code: ``failed`` as vanished, with the exit
  code, and the runtime removed;
* ``starting`` workers past their start deadline (their start task was
  lost, e.g. with its Celery worker): ``failed`` (start timeout) and the
  runtime removed, without waiting for the broker to redeliver the task;
* ``stopping`` workers whose runtime is still listed and whose stop failed
  or stalled: terminate retried.

A backend whose list fails is skipped and reported: an outage never reads
as "nothing runs". Bulk reads and writes only: no per-worker query.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from workers import states
from workers.backends.base import BackendError, ListedRuntime, Phase
from workers.models import Actor, EventKind, Worker, WorkerEvent
from workers.services import runtime
from workers.services.starting import (
    start_deadline,
    start_timeout_message,
    worker_fail,
)
from workers.services.stopping import worker_stop_run
from workers.services.transitions import workers_transition

log = logging.getLogger(__name__)
VANISHED = "Runtime vanished: the backend no longer lists it"
STOPPED = "Runtime stopped while the worker should run"


def reconcile_backend_names(now) -> set[str]:
    """Backends with active workers or recently ended ones (their runtimes
    may be orphans), plus the default backend."""
    recent = now - timedelta(days=1)
    names = set(
        Worker.objects.filter(
            Q(status__in=states.ACTIVE_STATUSES) | Q(stopped_at__gte=recent)
        )
        .values_list("backend", flat=True)
        .distinct()
    )
    return names | {settings.NOTEBOOK_RUNTIME_DEFAULT_BACKEND}


def workers_reconcile(*, now=None, backends: list[str] | None = None) -> dict:
    """One reconcile pass; returns per-backend counts of what it did."""
    now = now or timezone.now()
    report = {}
    for name in sorted(backends or reconcile_backend_names(now)):
        try:
            report[name] = _reconcile_backend(name, now)
        except BackendError as exc:
            # An unreachable backend is an expected outage: one line per
            # pass, not a traceback. One that is not configured in this
            # installation (history rows from another) is no outage at all.
            level = (
                logging.INFO
                if runtime.backend_unavailable_reason(name)
                else logging.WARNING
            )
            log.log(level, "reconcile of %s skipped: %s", name, exc)
            report[name] = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one backend must not stop the rest
            log.exception("reconcile of %s failed", name)
            report[name] = {"error": str(exc)}
    log.info("reconcile_workers: %s", report)
    return report


def _reconcile_backend(name: str, now) -> dict:
    active = list(
        Worker.objects.filter(backend=name, status__in=states.ACTIVE_STATUSES).values(
            "id",
            "status",
            "runtime_ref",
            "status_changed_at",
            "error_code",
            "next_action_at",
            "created_at",
        )
    )
    backend = runtime.backend_for(name)
    listed = {item.ref.worker_id: item for item in backend.list_runtimes()}
    claimed = {str(w["id"]) for w in active}
    refs = {worker_id: item.ref for worker_id, item in listed.items()}
    done = {
        "listed": len(listed),
        "active": len(active),
        "orphans_terminated": _terminate_orphans(backend, refs, claimed, now),
    }
    done.update(_settle_active(active, listed, now))
    return done


@dataclass
class _Todo:
    """What one pass does to a backend's active workers."""

    gone_stopping: list = field(default_factory=list)  # stop confirmed
    stuck: list = field(default_factory=list)  # stop to retry
    vanished: list = field(default_factory=list)  # rows: runtime not listed
    ended: dict = field(default_factory=dict)  # id -> ListedRuntime, stopped
    late: dict = field(default_factory=dict)  # id -> ListedRuntime | None


def _sort_active(active: list[dict], listed: dict, now) -> _Todo:
    todo = _Todo()
    for row in active:
        item = listed.get(str(row["id"]))
        if item is not None and item.phase == Phase.NOT_FOUND:
            item = None  # only leftovers (a Secret...) of a runtime that is gone
        if row["status"] == states.STOPPING:
            if item is None:
                todo.gone_stopping.append(row["id"])
            elif _stop_stuck(row, now):
                todo.stuck.append(row["id"])
        elif item is not None and item.stopped:
            todo.ended[row["id"]] = item
        elif item is None and row["runtime_ref"]:
            todo.vanished.append(row)
        elif row["status"] == states.STARTING and (
            start_deadline(row["created_at"]) <= now
        ):
            todo.late[row["id"]] = item
    return todo


def _settle_active(active: list[dict], listed: dict, now) -> dict:
    todo = _sort_active(active, listed, now)
    stopped = workers_transition(
        worker_ids=todo.gone_stopping,
        expected=states.STOPPING,
        to=states.STOPPED,
        actor_type=Actor.SYSTEM,
        actor_label="reconcile_workers",
        reason="Runtime gone: stop confirmed by the backend's list",
    )
    failed = len(_fail_vanished(todo.vanished)) + _fail_stopped(todo.ended)
    for worker_id in todo.stuck:
        worker_stop_run(worker_id=worker_id, actor_label="reconcile_workers")
    return {
        "stopped": len(stopped),
        "failed": failed,
        "start_timed_out": _fail_late_starts(todo.late),
        "stop_retried": len(todo.stuck),
    }


def _stop_stuck(row: dict, now) -> bool:
    """A failed stop whose retry is due, or a stop that has not finished
    within a retry period (its task was lost)."""
    if row["error_code"]:
        return row["next_action_at"] is None or row["next_action_at"] <= now
    retry = timedelta(seconds=settings.NOTEBOOK_RUNTIME_STOP_RETRY_BASE_SECONDS)
    return row["status_changed_at"] < now - retry


def _fail_vanished(rows: list[dict]) -> list:
    by_status = defaultdict(list)
    for row in rows:
        by_status[row["status"]].append(row["id"])
    failed = []
    for status, ids in by_status.items():
        failed += workers_transition(
            worker_ids=ids,
            expected=status,
            to=states.FAILED,
            actor_type=Actor.SYSTEM,
            actor_label="reconcile_workers",
            reason=VANISHED,
            fields={"error_code": "runtime_vanished", "error_detail": VANISHED},
        )
    return failed


def _fail_stopped(ended: dict) -> int:
    """Fail each worker whose runtime stopped (with how it ended), removing
    the runtime's leftovers (record, stopped container, finished pod)."""
    count = 0
    should_run = states.ALLOCATED_STATUSES
    for worker in Worker.objects.filter(id__in=list(ended), status__in=should_run):
        item: ListedRuntime = ended[worker.id]
        message = f"{STOPPED}: {item.message or item.phase}"
        count += worker_fail(
            worker,
            expected=should_run,
            code="runtime_vanished",
            message=message,
            ref=item.ref,
            actor_label="reconcile_workers",
            data={"phase": str(item.phase), "exit_code": item.exit_code},
        )
    return count


def _fail_late_starts(late: dict) -> int:
    """Fail ``starting`` workers past their start deadline and remove the
    runtime their lost start task may have left."""
    count = 0
    for worker in Worker.objects.filter(id__in=list(late), status=states.STARTING):
        item: ListedRuntime | None = late[worker.id]
        count += worker_fail(
            worker,
            expected=states.STARTING,
            code="timeout",
            message=start_timeout_message(),
            ref=item.ref if item else None,
            actor_label="reconcile_workers",
        )
    return count


def _terminate_orphans(backend, listed: dict, claimed: set[str], now) -> int:
    """Terminate listed runtimes that no active worker claims, re-checked
    against the database (a worker may have started since the first read)."""
    candidates = {wid: ref for wid, ref in listed.items() if wid not in claimed}
    if not candidates:
        return 0
    grace = now - timedelta(seconds=settings.NOTEBOOK_RUNTIME_ORPHAN_GRACE_SECONDS)
    rows = {
        str(worker_id): (status, stopped_at)
        for worker_id, status, stopped_at in Worker.objects.filter(
            id__in=_uuids(candidates)
        ).values_list("id", "status", "stopped_at")
    }
    events, count = [], 0
    for wid, ref in candidates.items():
        if wid in rows and _within_grace(*rows[wid], grace):
            continue
        try:
            backend.terminate(ref)
        except Exception:  # noqa: BLE001 - retried on the next pass
            log.warning("orphan %s not terminated", ref.name, exc_info=True)
            continue
        count += 1
        if wid in rows:
            events.append(_orphan_event(wid, ref))
    WorkerEvent.objects.bulk_create(events)
    return count


def _within_grace(status: str, stopped_at, grace) -> bool:
    """Still claimed (active since the first read) or ended too recently."""
    return status in states.ACTIVE_STATUSES or stopped_at is None or stopped_at > grace


def _uuids(worker_ids) -> list:
    import uuid

    out = []
    for value in worker_ids:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return out


def _orphan_event(worker_id: str, ref) -> WorkerEvent:
    return WorkerEvent(
        worker_id=worker_id,
        kind=EventKind.AUTOMATION,
        actor_type=Actor.SYSTEM,
        actor_label="reconcile_workers",
        reason=f"Orphaned runtime {ref.name} terminated",
    )
