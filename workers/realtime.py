"""Live-update group names and payloads. Payloads carry ids only: the
receiving side re-reads the row as its connected user and renders it."""

import logging
from importlib import import_module
from types import SimpleNamespace
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.utils.crypto import salted_hmac

log = logging.getLogger(__name__)

STAFF_GROUP = "workers.staff"


def user_group(user_id) -> str:
    return f"workers.user.{user_id}"


def worker_group(worker_id) -> str:
    """One worker's changes: the proxy closes sockets through it on these."""
    return f"workers.worker.{worker_id}"


class WorkerChanged(TypedDict):
    type: str  # "worker.changed": the consumer method worker_changed
    worker_id: str


def publish_worker_changed(worker_id, owner_id) -> None:
    """Tell open pages that a worker changed. Best effort: a down channel
    layer must never fail the state change that already committed."""
    layer = get_channel_layer()
    if layer is None:
        return
    message: WorkerChanged = {"type": "worker.changed", "worker_id": str(worker_id)}
    groups = (STAFF_GROUP, user_group(owner_id), worker_group(worker_id))
    try:
        async_to_sync(_send_to_groups)(layer, groups, message)
    except Exception:  # noqa: BLE001 - e.g. called from inside an event loop
        log.warning("live update of worker %s failed", worker_id, exc_info=True)


async def _send_to_groups(layer, groups, message) -> None:
    """One event loop for all of a change's groups: from sync code each
    ``async_to_sync`` call runs a new loop, and the Redis layer opens its
    connections per loop."""
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception:  # noqa: BLE001 - live updates are advisory
            log.warning("live update to %s failed", group, exc_info=True)


# --- Login sessions ----------------------------------------------------------
# Every socket also joins its login session's group, so that logging out
# closes the sockets that session opened, in every process, at once.


def session_group(session_key: str) -> str:
    """The group of the sockets opened with one login session.

    Named by a keyed hash, never the key itself: a session key is a bearer
    credential, and group names are stored in Redis and may be logged.
    """
    digest = salted_hmac("workers.realtime.session_group", session_key).hexdigest()
    return f"session.{digest[:32]}"


class SessionEnded(TypedDict):
    type: str  # "session.ended": the consumer method session_ended


def publish_session_ended(session_key: str) -> None:
    """Close the sockets of a session that ended. Best effort, like updates:
    the next push re-checks the session anyway."""
    layer = get_channel_layer()
    if layer is None or not session_key:
        return
    message: SessionEnded = {"type": "session.ended"}
    try:
        async_to_sync(layer.group_send)(session_group(session_key), message)
    except Exception:  # noqa: BLE001 - logout itself must still succeed
        log.warning("closing a signed-out session's sockets failed", exc_info=True)


def end_session_sockets(sender, request=None, **kwargs) -> None:
    """``user_logged_out`` receiver (connected in ``WorkersConfig.ready``).
    Django sends it before it flushes the session, so the key is still set."""
    session = getattr(request, "session", None)
    publish_session_ended(getattr(session, "session_key", None) or "")


class _ReadOnlySession(dict):
    """Session data for ``auth.get_user``, which flushes a session whose
    password hash no longer matches or cycles one verified by an old secret
    key: the HTTP side does that, where the browser gets the new cookie."""

    def flush(self) -> None:
        pass

    def cycle_key(self) -> None:
        pass


def session_user(session_key: str):
    """The user ``session_key`` still signs in, read again, or None.

    Django's own rule (``django.contrib.auth.get_user``): the session exists
    and has not expired, names a user of a configured backend, and carries
    that user's current password hash. Two queries; writes nothing.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    request = SimpleNamespace(session=_ReadOnlySession(store.load()))
    user = auth.get_user(request)
    return user if user.is_authenticated else None
