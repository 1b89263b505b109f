"""Idle deadlines: when a ready worker will be stopped for inactivity, and
the warning window before that which the user's page shows as a banner."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from workers import states


def idle_timeout_seconds(snapshot: dict | None) -> int:
    """The resource class override frozen at start, else the default."""
    override = (snapshot or {}).get("idle_timeout_seconds")
    return int(override or settings.NOTEBOOK_RUNTIME_IDLE_TIMEOUT_SECONDS)


def idle_stop_at(worker, *, last_activity: datetime | None = None) -> datetime | None:
    """When ``worker`` is stopped for inactivity if nothing happens; None if
    it has no activity to count from."""
    since = last_activity or worker.last_activity_at or worker.ready_at
    if since is None:
        return None
    return since + timedelta(seconds=idle_timeout_seconds(worker.resource_snapshot))


def idle_next_action(
    worker, *, status: str = states.READY, last_activity: datetime | None = None
) -> tuple[str, datetime | None]:
    """The next automated action for a worker about to be in ``status``:
    an idle stop for ready workers (busy kernels keep a worker active), kept
    behind an earlier plan-window stop that ``reap_plan_windows`` set."""
    plan_stop = (
        (worker.next_action, worker.next_action_at)
        if worker.next_action == states.NEXT_PLAN_WINDOW_STOP and worker.next_action_at
        else None
    )
    idle_at = idle_stop_at(worker, last_activity=last_activity)
    if status != states.READY or idle_at is None:
        return plan_stop or ("", None)
    if plan_stop and plan_stop[1] <= idle_at:
        return plan_stop
    return states.NEXT_IDLE_STOP, idle_at


def idle_warning_starts_at(stop_at: datetime) -> datetime:
    return stop_at - timedelta(seconds=settings.NOTEBOOK_RUNTIME_IDLE_WARNING_SECONDS)
