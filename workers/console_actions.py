"""The console's row actions, mapped onto the lifecycle services.

The services write and audit (a ``WorkerEvent`` with the admin as actor);
this module only names the actions, calls the service as the admin and turns
a refusal into a message for the row. Nothing here changes a worker itself.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from workers.models import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    message: str = ""
    ok: bool = True
    http_status: int = 200
    new_worker: Worker | None = None


def _services():
    """The lifecycle services module (imported late: another app layer)."""
    from workers import services

    return services


def _stop(worker: Worker, actor) -> Outcome:
    _services().worker_request_stop(
        worker=worker,
        actor_type="admin",
        actor=actor,
        reason=f"Stopped from Notebook Workers by {actor.get_username()}",
    )
    return Outcome("Stop requested.")


def _retry_stop(worker: Worker, actor) -> Outcome:
    _services().worker_retry_stop(worker=worker, actor=actor)
    return Outcome("Stop retried.")


def _probe_now(worker: Worker, actor) -> Outcome:
    probed = _services().worker_probe_now(worker=worker, actor=actor)
    return Outcome(f"Probed: {probed.health or 'unknown'}.")


def _start_again(worker: Worker, actor) -> Outcome:
    services = _services()
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
    """Run action ``name`` on ``worker`` as ``actor`` (a staff user).

    A service that refuses (wrong status, limits) answers 409 with its
    message; a missing service answers 503 rather than a 500.
    """
    handler = ACTIONS[name]
    try:
        return handler(worker, actor)
    except (ImportError, AttributeError) as exc:
        log.error("console action %s unavailable: %s", name, exc)
        return Outcome("This action is not available on this server.", False, 503)
    except ValueError as exc:
        return Outcome(str(exc), ok=False, http_status=409)
