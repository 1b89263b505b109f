"""Periodic clean-ups on the worker table: idle stops and stale workers.

Each one records why it acted (a transition reason, an automation event)
and keeps ``Worker.next_action`` current so the admin page reads it as is.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from workers import states
from workers.backends.base import Phase, RuntimeRef
from workers.models import Actor, EventKind, Worker
from workers.services import runtime
from workers.services.idle import idle_next_action, idle_stop_at, idle_timeout_seconds
from workers.services.probing import workers_probe
from workers.services.starting import GONE, mark_ready_if_answering, worker_fail
from workers.services.stopping import workers_request_stop
from workers.services.transitions import worker_record_event

IDLE_FIELDS = ["next_action", "next_action_at"]


def workers_reap_idle(*, now=None) -> dict:
    """Stop ready workers idle past their idle timeout (the resource class
    override frozen in the snapshot, else the platform default); refresh
    the idle-stop time of the others."""
    now = now or timezone.now()
    expired: dict[int, list] = defaultdict(list)
    changed = []
    for worker in Worker.objects.filter(status=states.READY).only(
        "id",
        "status",
        "last_activity_at",
        "ready_at",
        "resource_snapshot",
        "next_action",
        "next_action_at",
    ):
        stop_at = idle_stop_at(worker)
        if stop_at is not None and stop_at <= now:
            expired[idle_timeout_seconds(worker.resource_snapshot)].append(worker.id)
            continue
        action = idle_next_action(worker)
        if action != (worker.next_action, worker.next_action_at):
            worker.next_action, worker.next_action_at = action
            changed.append(worker)
    Worker.objects.filter(status=states.READY).bulk_update(
        changed, IDLE_FIELDS, batch_size=500
    )
    stopped = []
    for timeout, ids in expired.items():
        stopped += workers_request_stop(
            worker_ids=ids,
            actor_type=Actor.SYSTEM,
            actor_label="reap_idle",
            reason=f"Idle for {timeout // 60} minutes (idle timeout)",
        )
    return {"stopped": len(stopped), "rescheduled": len(changed)}


def workers_cleanup_stale(*, now=None) -> dict:
    """Observe workers stuck in starting or busy past their thresholds and
    fix them: failed when the runtime is dead, corrected when it is alive."""
    outcome: dict[str, int] = defaultdict(int)
    for worker in Worker.objects.stale(now or timezone.now()):
        if worker.status == states.STARTING:
            outcome[_fix_starting(worker)] += 1
        else:
            outcome[_fix_busy(worker)] += 1
    return dict(outcome)


def _observe(worker: Worker):
    ref = RuntimeRef.from_json(worker.runtime_ref)
    backend = runtime.backend_for(worker.backend)
    return ref, runtime.observe_safely(backend, ref)


def _fix_starting(worker: Worker) -> str:
    """Past the stale threshold a start task has given up or was lost."""
    if not worker.runtime_ref:
        _fail(worker, "start_lost", "Start did not finish: its task was lost", None)
        return "failed"
    ref, observation = _observe(worker)
    if observation.phase == Phase.UNKNOWN:
        _note(worker, f"Stale start: backend could not tell ({observation.message})")
        return "unknown"
    if observation.phase == Phase.RUNNING and _answers(worker, observation.endpoint):
        return "corrected"
    message = f"Start stuck: runtime {observation.phase} past the stale threshold"
    _fail(worker, "start_stale", message, ref)
    return "failed"


def _answers(worker: Worker, endpoint: str) -> bool:
    return mark_ready_if_answering(
        worker,
        endpoint,
        actor_type=Actor.SYSTEM,
        actor_label="cleanup_stale",
        reason="Corrected: runtime running and answering (start was stuck)",
    )


def _fix_busy(worker: Worker) -> str:
    if not worker.runtime_ref:
        _fail(worker, "runtime_missing", "Busy worker without a runtime", None)
        return "failed"
    ref, observation = _observe(worker)
    if observation.phase in GONE:
        _fail(worker, "runtime_dead", f"Runtime {observation.phase} while busy", ref)
        return "failed"
    _note(worker, f"Stale busy worker checked: runtime {observation.phase}")
    workers_probe(workers=[worker])
    return "checked"


def _fail(worker: Worker, code: str, message: str, ref) -> None:
    worker_fail(
        worker,
        expected=worker.status,
        code=code,
        message=message,
        ref=ref,
        actor_label="cleanup_stale",
    )


def _note(worker: Worker, message: str) -> None:
    worker_record_event(
        worker_id=worker.id,
        kind=EventKind.AUTOMATION,
        actor_type=Actor.SYSTEM,
        actor_label="cleanup_stale",
        reason=message,
    )
