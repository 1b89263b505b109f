"""The console's row actions, mapped onto the lifecycle services.

The services write and audit (a ``WorkerEvent`` with the admin as actor);
this module only names the actions, calls the service as the admin and turns
a refusal into a message for the row. Nothing here changes a worker itself.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied

from console.selectors import can_manage_workers
from workers import services
from workers.models import Actor, Worker


@dataclass(frozen=True)
class Outcome:
    message: str = ""
    ok: bool = True
    http_status: int = 200
    new_worker: Worker | None = None


def _stop(worker: Worker, actor) -> Outcome:
    services.worker_request_stop(
        worker=worker,
        actor_type=Actor.ADMIN,
        actor=actor,
        reason=f"Stopped from Notebook Workers by {actor.get_username()}",
    )
    return Outcome("Stop requested.")


def _retry_stop(worker: Worker, actor) -> Outcome:
    services.worker_retry_stop(worker=worker, actor=actor)
    return Outcome("Stop retried.")


def _probe_now(worker: Worker, actor) -> Outcome:
    probed = services.worker_probe_now(worker=worker, actor=actor)
    return Outcome(f"Probed: {probed.health or 'unknown'}.")


def _start_again(worker: Worker, actor) -> Outcome:
    try:
        new = services.worker_start_again(worker=worker, actor=actor)
    except services.LaunchRefused as refused:
        return Outcome(refused.message, ok=False, http_status=409)
    return Outcome(f"Started again as worker {new.short_id}.", new_worker=new)


ACTIONS: dict[str, Callable[[Worker, object], Outcome]] = {
    "stop": _stop,
    "retry-stop": _retry_stop,
    "probe": _probe_now,
    "start-again": _start_again,
}


def run(name: str, *, worker: Worker, actor) -> Outcome:
    """Run action ``name`` on ``worker`` as ``actor``.

    The permission is read again here, when the action runs, not taken from
    the page the button was on. Raises ``PermissionDenied`` without it. A
    move the transition table forbids (the row was stale) answers 409 with
    the reason instead of a 500.
    """
    if not can_manage_workers(actor, fresh=True):
        raise PermissionDenied("You may no longer act on workers.")
    try:
        return ACTIONS[name](worker, actor)
    except services.InvalidTransition as exc:
        return Outcome(str(exc), ok=False, http_status=409)
