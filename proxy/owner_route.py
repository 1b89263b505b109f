"""The owner's route in one query: the hot path of every proxied request.

Django's own way (session row, then user row, then worker row, through the
ORM on a worker thread) cost about 8 ms a request on the benchmark machine,
four times what the proxy may add. This reads the session, the workspace's
owner and its newest worker in one round trip, on the event loop
(``proxy.dbpool``), and answers only the common case (a valid session of
the workspace's owner, signed in with ModelBackend, password hash
unchanged: ``accounts.middleware.session_signed_in``, the pages' rule too);
anything else returns None and goes the full way
(``selectors.route_for_session``), which also does the session upkeep
(flushing a session whose password hash no longer matches).
"""

from __future__ import annotations

import uuid
from functools import cache, lru_cache
from importlib import import_module
from types import MappingProxyType

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.middleware import session_signed_in
from workers.models import Worker
from workspaces.models import Workspace

# Engines that keep sessions in Django's session table, which the query reads.
DB_SESSIONS = ("django.contrib.sessions.backends.db", "accounts.sessions")


@cache
def _sql() -> str:
    user = get_user_model()
    return f"""
        SELECT s.session_data, ws.name, ws.ide_kind, u.id, u.password, u.is_active,
               w.id, w.status, w.endpoint, w.access_token, w.error_detail
        FROM {Workspace._meta.db_table} ws
        JOIN {user._meta.db_table} u ON u.id = ws.owner_id
        JOIN {Session._meta.db_table} s
          ON s.session_key = %s AND s.expire_date > %s
        LEFT JOIN LATERAL (
            SELECT id, status, endpoint, access_token, error_detail
            FROM {Worker._meta.db_table}
            WHERE workspace_id = ws.id
            ORDER BY created_at DESC, id DESC LIMIT 1
        ) w ON true
        WHERE ws.id = %s
    """  # noqa: S608 - table names from model metadata, values bound


async def owner_route(*, session_key: str, workspace_id: uuid.UUID):
    """The owner's ``Route``, or None when the full lookup must decide."""
    from proxy import dbpool
    from proxy.selectors import route_from_rows

    if not session_key or settings.SESSION_ENGINE not in DB_SESSIONS:
        return None
    if not _on_postgresql():  # LATERAL, psycopg
        return None
    row = await dbpool.fetchone(_sql(), [session_key, timezone.now(), workspace_id])
    if row is None:
        return None
    session_data, name, ide_kind, owner_id, password, is_active, *worker = row
    if not (is_active and _signed_in_as(session_data, owner_id, password)):
        return None
    return route_from_rows(
        workspace=(workspace_id, owner_id, name, ide_kind), worker=worker
    )


def _on_postgresql() -> bool:
    # From settings, not ``connections``: under ASGI each task would build a
    # fresh connection wrapper just to be asked its vendor.
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def _signed_in_as(session_data: str, user_id, password: str) -> bool:
    return session_signed_in(_session_payload(session_data), user_id, password)


# A pure function of its argument (and SECRET_KEY), kept for the sessions in
# use, as the password's session hash is (``session_auth_hash``): verifying
# the signed session blob and hashing the password cost about a fifth of
# what the proxy adds to a request (bench/proxy_bench.py). The session row,
# the user's password hash and is_active are still read from the database
# on every request.
@lru_cache(maxsize=4096)
def _session_payload(session_data: str) -> MappingProxyType:
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    return MappingProxyType(store.decode(session_data))
