"""Access server: an admin's short-lived grant to one worker's IDE."""

from __future__ import annotations

import time

from django.conf import settings

from proxy.selectors import GRANTS_SESSION_KEY
from workers.models import Actor, EventKind
from workers.services import worker_record_event


def access_grant_create(*, worker, user, session, address: str) -> None:
    """Let ``user`` through the proxy to ``worker`` for
    ``NOTEBOOK_PROXY_GRANT_SECONDS``, and record the access in the worker's
    timeline (who, from where), which its owner sees. The grant lives in
    the user's server-side session and names the worker, so it ends with
    the session, the time limit or the worker, whichever comes first.
    The caller checks ``workers.access_server``; the proxy checks it again
    on every request."""
    now = time.time()
    grants = {
        key: expiry
        for key, expiry in session.get(GRANTS_SESSION_KEY, {}).items()
        if expiry > now
    }
    grants[str(worker.id)] = now + settings.NOTEBOOK_PROXY_GRANT_SECONDS
    session[GRANTS_SESSION_KEY] = grants
    name = user.get_username()
    worker_record_event(
        worker_id=worker.id,
        kind=EventKind.ACTION,
        actor_type=Actor.ADMIN,
        actor=user,
        actor_label=name,
        reason=f"Access server: {name} opened this workspace from {address}",
        data={"address": address},
        publish_owner_id=worker.owner_id,
    )
