"""Bring the database and the backends into agreement.

Per backend: read the workers that may have a runtime, then one
``list_managed()`` call (in that order, so a runtime created after the read
is never mistaken for a vanished one), then:

* runtimes no active worker claims are orphans: terminated once their
  worker has been terminal for the grace period (or has no row at all);
* active workers whose runtime is not listed: ``stopping`` ones are
  ``stopped`` (the backend confirms it is gone), started ones ``failed``;
* ``stopping`` workers whose runtime is still listed and whose stop failed
  or stalled: terminate retried.

A backend whose list fails is skipped and reported: an outage never reads
as "nothing runs". Bulk reads and writes only: no per-worker query.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from workers import states
from workers.backends.base import BackendError
from workers.models import Worker, WorkerEvent
from workers.services import runtime
from workers.services.stopping import worker_stop_run
from workers.services.transitions import workers_transition

log = logging.getLogger(__name__)
VANISHED = "Runtime vanished: the backend no longer lists it"


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
            # An unreachable or unconfigured backend is an expected outage:
            # one line per pass, not a traceback.
            log.warning("reconcile of %s skipped: %s", name, exc)
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
        )
    )
    backend = runtime.backend_for(name)
    listed = {ref.worker_id: ref for ref in backend.list_managed()}
    claimed = {str(w["id"]) for w in active}
    done = {
        "listed": len(listed),
        "active": len(active),
        "orphans_terminated": _terminate_orphans(backend, listed, claimed, now),
    }
    done.update(_settle_active(active, listed, now))
    return done


def _settle_active(active: list[dict], listed: dict, now) -> dict:
    gone_stopping, vanished, stuck = [], [], []
    for row in active:
        present = str(row["id"]) in listed
        if row["status"] == states.STOPPING:
            if not present:
                gone_stopping.append(row["id"])
            elif _stop_stuck(row, now):
                stuck.append(row["id"])
        elif not present and row["runtime_ref"]:
            vanished.append(row)
    stopped = workers_transition(
        worker_ids=gone_stopping,
        expected=states.STOPPING,
        to=states.STOPPED,
        actor_type="system",
        actor_label="reconcile_workers",
        reason="Runtime gone: stop confirmed by the backend's list",
    )
    failed = _fail_vanished(vanished)
    for worker_id in stuck:
        worker_stop_run(worker_id=worker_id, actor_label="reconcile_workers")
    return {"stopped": len(stopped), "failed": len(failed), "stop_retried": len(stuck)}


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
            actor_type="system",
            actor_label="reconcile_workers",
            reason=VANISHED,
            fields={"error_code": "runtime_vanished", "error_detail": VANISHED},
        )
    return failed


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
        kind=WorkerEvent.Kind.AUTOMATION,
        actor_type=WorkerEvent.Actor.SYSTEM,
        actor_label="reconcile_workers",
        reason=f"Orphaned runtime {ref.name} terminated",
    )
