"""Bringing a ``starting`` worker to ``ready`` (the body of ``start_worker``).

Launch, then wait until the backend says running and the probe says ready,
recording progress. The deadline counts from the worker's creation, so a
redelivered task never extends it; every step is safe to repeat (backends
launch idempotently by worker id). A start that cannot finish ends in
``failed`` with the sanitized reason, after removing what it created.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from workers import states
from workers.backends.base import LaunchSpec, Phase, RuntimeRef
from workers.models import Actor, EventKind, Worker
from workers.sanitize import sanitize
from workers.services import runtime
from workers.services.idle import idle_next_action
from workers.services.transitions import worker_record_event, worker_transition

log = logging.getLogger(__name__)
sleep = time.sleep  # tests replace this to run the wait loop without waiting
GONE = (Phase.FAILED, Phase.SUCCEEDED, Phase.NOT_FOUND, Phase.TERMINATING)


def start_deadline(created_at):
    """When a start created at ``created_at`` has failed: enforced by the
    start task and, should that task be lost, by ``reconcile_workers``."""
    return created_at + timedelta(
        seconds=settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS
    )


def start_timeout_message() -> str:
    return f"Start timed out after {settings.NOTEBOOK_RUNTIME_START_TIMEOUT_SECONDS} s"


def worker_start_run(*, worker_id) -> str:
    """Drive one worker from ``starting`` to ``ready`` or ``failed``.

    Returns the worker's status when done. A worker no longer ``starting``
    (stopped meanwhile, or a redelivery after success) is left alone.
    """
    worker = Worker.objects.filter(id=worker_id).first()
    if worker is None or worker.status != states.STARTING:
        return worker.status if worker else ""
    ref = _launch(worker)
    if ref is None:
        return _status(worker_id)
    _wait_until_ready(worker, ref)
    return _status(worker_id)


def _status(worker_id) -> str:
    return Worker.objects.filter(id=worker_id).values_list("status", flat=True).first()


def _spec(worker: Worker) -> LaunchSpec:
    spec = LaunchSpec.from_json(worker.launch_spec)
    return replace(spec, worker_id=str(worker.id), access_token=worker.access_token)


def _launch(worker: Worker) -> RuntimeRef | None:
    """Launch (or find again) the runtime and store its ref. None when the
    start ended here (failed, or the worker left ``starting``)."""
    backend = runtime.backend_for(worker.backend)
    while True:
        try:
            ref = backend.launch(_spec(worker))
            break
        except Exception as raised:  # noqa: BLE001 - see as_backend_error
            exc = runtime.as_backend_error(raised)
            if not exc.retryable or timezone.now() >= start_deadline(worker.created_at):
                fail_start(worker, code=str(exc.code), message=f"Launch failed: {exc}")
                return None
            _progress(worker, f"Launch retrying: {exc.message}")
            sleep(settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS)
    return _store_ref(worker, ref, backend)


def _store_ref(worker: Worker, ref: RuntimeRef, backend) -> RuntimeRef | None:
    now = timezone.now()
    updated = Worker.objects.filter(id=worker.id, status=states.STARTING).update(
        runtime_ref=ref.to_json(), started_at=now
    )
    if not updated:
        # Stopped or failed while we launched: remove what we just created.
        _terminate_quietly(backend, ref)
        Worker.objects.filter(id=worker.id).update(runtime_ref=ref.to_json())
        return None
    worker.runtime_ref = ref.to_json()
    _progress(worker, f"Runtime {ref.name} created")
    return ref


def _wait_until_ready(worker: Worker, ref: RuntimeRef) -> None:
    backend = runtime.backend_for(worker.backend)
    last_message = ""
    setup_seen = 0
    while _status(worker.id) == states.STARTING:
        if timezone.now() >= start_deadline(worker.created_at):
            fail_start(worker, code="timeout", message=start_timeout_message(), ref=ref)
            return
        observation = runtime.observe_safely(backend, ref)
        if observation.phase in GONE:
            detail = (
                observation.message or f"Runtime {observation.phase} while starting"
            )
            code = observation.error_code or "runtime_exited"
            fail_start(worker, code=code, message=detail, ref=ref)
            return
        setup_seen = _setup_progress(worker, observation, setup_seen)
        message = _observation_text(observation)
        if message != last_message and not message.startswith(SETUP_TEXT):
            _progress(worker, message)
            last_message = message
        if observation.phase == Phase.RUNNING and _ready(worker, observation.endpoint):
            return
        sleep(settings.NOTEBOOK_RUNTIME_START_POLL_SECONDS)


def _setup_progress(worker: Worker, observation, seen: int) -> int:
    """Record each setup-step line (cloning, installing N packages, cache
    hit) once, in order, however fast the step printed them; returns how
    many were recorded so far."""
    lines = [e for e in observation.events if e.startswith("setup: ")]
    for line in lines[seen:]:
        _progress(worker, line.replace("setup: ", "Setup: ", 1))
        if match := _CHECKED_OUT.match(line):
            _record_repository_scope(worker, *match.groups())
    return max(seen, len(lines))


_CHECKED_OUT = re.compile(r"^setup: checked out ([0-9a-f]{7,64}) of (\S+)$")


def _record_repository_scope(worker: Worker, commit: str, url: str) -> None:
    """The worker's repository scope: the URL (credentials redacted) and
    the commit the setup step checked out."""
    scope = [f"{sanitize(url)} @ {commit}"]
    Worker.objects.filter(id=worker.id).update(repository_scope=scope)


SETUP_TEXT = "Runtime pending: setup: "


def _observation_text(observation) -> str:
    text = f"Runtime {observation.phase}"
    return f"{text}: {observation.message}" if observation.message else text


def _ready(worker: Worker, endpoint: str) -> bool:
    return mark_ready_if_answering(
        worker,
        endpoint,
        actor_type=Actor.BACKEND,
        actor_label="start_worker",
        reason="Runtime running and answering",
    )


def mark_ready_if_answering(
    worker: Worker, endpoint: str, *, actor_type: str, actor_label: str, reason: str
) -> bool:
    """Probe the starting ``worker`` at ``endpoint``; when its runtime
    answers ready, move it to ``ready`` with its idle stop scheduled."""
    worker.endpoint = endpoint or worker.endpoint
    report = runtime.probe([worker])[0]
    if report.health != "ready":
        return False
    now = timezone.now()
    activity = report.last_activity or now
    action, action_at = idle_next_action(worker, last_activity=activity)
    return worker_transition(
        worker_id=worker.id,
        expected=states.STARTING,
        to=states.READY,
        actor_type=actor_type,
        actor_label=actor_label,
        reason=reason,
        fields={
            "endpoint": worker.endpoint,
            "ready_at": now,
            "last_activity_at": activity,
            "health": "ready",
            "health_checked_at": now,
            "health_latency_ms": report.latency_ms,
            "next_action": action,
            "next_action_at": action_at,
        },
    )


def fail_start(worker: Worker, *, code: str, message: str, ref=None) -> bool:
    """End a start in ``failed`` (see ``worker_fail``)."""
    return worker_fail(
        worker,
        expected=states.STARTING,
        code=code,
        message=message,
        ref=ref,
        actor_label="start_worker",
    )


def worker_fail(
    worker: Worker,
    *,
    expected,
    code: str,
    message: str,
    ref=None,
    actor_label: str,
    data: dict | None = None,
) -> bool:
    """Move a worker to ``failed`` with a sanitized reason (``data`` goes
    on its event), first removing its runtime (best effort:
    ``reconcile_workers`` removes what is left as an orphan). False when the
    worker was no longer in ``expected``."""
    data = dict(data or {})
    log.warning(
        "worker failed (%s): %s",
        code,
        sanitize(message, extra_secrets=(worker.access_token,)),
        extra={"worker_id": str(worker.id)},
    )
    if ref is not None:
        backend = runtime.backend_for(worker.backend)
        if not _terminate_quietly(backend, ref):
            data["cleanup"] = "failed; reconcile_workers removes the runtime"
    return worker_transition(
        worker_id=worker.id,
        expected=expected,
        to=states.FAILED,
        actor_type=Actor.SYSTEM,
        actor_label=actor_label,
        reason=message,
        fields={"error_code": code[:40], "error_detail": message},
        data=data,
    )


def _terminate_quietly(backend, ref: RuntimeRef) -> bool:
    try:
        backend.terminate(ref)
    except Exception:  # noqa: BLE001 - cleanup is best effort, reconcile follows
        return False
    return True


def _progress(worker: Worker, message: str) -> None:
    worker_record_event(
        worker_id=worker.id,
        kind=EventKind.PROGRESS,
        actor_type=Actor.BACKEND,
        actor_label=worker.backend,
        reason=message,
        publish_owner_id=worker.owner_id,
    )
