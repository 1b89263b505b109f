"""Celery signal receivers: the request id travels with each task (a
message header) and is bound in the worker with the task's worker id;
every task's outcome and duration, and each reconcile pass, are counted in
the shared counters (``ops.shared_counters``)."""

from __future__ import annotations

import threading
import time

from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
)

from ops import log_context, shared_counters
from ops.metric_defs import (
    CELERY_TASK_DURATION,
    CELERY_TASKS,
    RECONCILE_DURATION,
    RECONCILE_LAST_SUCCESS,
    RECONCILE_RUNS,
    histogram_updates,
)

REQUEST_ID_HEADER = "request_id"
RECONCILE_TASK = "workers.tasks.reconcile_workers"
_running: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


@before_task_publish.connect
def _add_request_id(headers=None, **kwargs) -> None:
    request_id = log_context.get("request_id")
    if headers is not None and request_id:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _worker_id(args, kwargs) -> str:
    if kwargs and kwargs.get("worker_id"):
        return str(kwargs["worker_id"])
    return str(args[0]) if args and len(args) == 1 else ""


def _header(request, name: str) -> str:
    """A custom message header: a request attribute in a worker (protocol
    2 merges headers into the request), under ``headers`` in an eager
    ``apply(headers=...)``."""
    return getattr(request, name, None) or (request.headers or {}).get(name, "")


@task_prerun.connect
def _task_started(task_id=None, task=None, args=None, kwargs=None, **_) -> None:
    request_id = _header(task.request, REQUEST_ID_HEADER) or task_id
    tokens = log_context.bind(request_id=request_id, worker_id=_worker_id(args, kwargs))
    with _lock:
        _running[task_id] = (time.monotonic(), tokens)


@task_retry.connect
def _task_retried(sender=None, **_) -> None:
    _count(sender.name, "retry")


@task_failure.connect
def _task_failed(sender=None, **_) -> None:
    _count(sender.name, "failure")


@task_postrun.connect
def _task_finished(task_id=None, task=None, retval=None, state=None, **_) -> None:
    with _lock:
        started, tokens = _running.pop(task_id, (None, {}))
    log_context.unbind(tokens)
    seconds = time.monotonic() - started if started is not None else 0.0
    updates = histogram_updates(CELERY_TASK_DURATION, {"task": task.name}, seconds)
    if state == "SUCCESS":
        updates.append(
            (CELERY_TASKS.name, {"task": task.name, "outcome": "success"}, 1)
        )
    shared_counters.add(updates)
    if task.name == RECONCILE_TASK:
        _reconciled(state, retval, seconds)


def _count(task_name: str, outcome: str) -> None:
    shared_counters.add(
        [(CELERY_TASKS.name, {"task": task_name, "outcome": outcome}, 1)]
    )


def _reconciled(state: str, report, seconds: float) -> None:
    """One reconcile pass: "success", "partial" (a backend could not be
    listed; the others were reconciled) or "failure" (the task raised)."""
    outcome = "failure"
    if state == "SUCCESS":
        errors = [
            v for v in (report or {}).values() if isinstance(v, dict) and "error" in v
        ]
        outcome = "partial" if errors else "success"
    updates = histogram_updates(RECONCILE_DURATION, {}, seconds)
    updates.append((RECONCILE_RUNS.name, {"outcome": outcome}, 1))
    shared_counters.add(updates)
    if outcome == "success":
        shared_counters.set_max(RECONCILE_LAST_SUCCESS.name, {}, time.time())
