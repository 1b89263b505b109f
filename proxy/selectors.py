"""Who may reach which worker right now. Reads only; every call asks the
database, so a route never outlives the worker's status or the user's rights.

The owner of a workspace reaches its current worker. Anyone else needs
``workers.access_server`` *and* an Access server grant for that very worker
in their session (``proxy.services.access_grant_create``): a grant names a
worker id, so it dies with the worker and never carries over to the next
start of the same workspace.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError, close_old_connections

from workers import states
from workers.models import Worker, WorkerEvent
from workspaces.models import Workspace

ACCESS_PERMISSION = "workers.access_server"
GRANTS_SESSION_KEY = "proxy.access_grants"  # {worker_id: expiry epoch seconds}
OPEN_STATUSES = frozenset({states.READY, states.BUSY})
ROUTE_FIELDS = (
    "id",
    "status",
    "endpoint",
    "access_token",
    "error_detail",
    "workspace__id",
    "workspace__owner_id",
    "workspace__name",
    "workspace__ide_kind",
)


class Access(StrEnum):
    OPEN = "open"  # proxy it
    LOGIN = "login"  # anonymous: log in first
    NOT_FOUND = "not_found"  # no such workspace, or not yours
    STARTING = "starting"
    STOPPING = "stopping"
    STOPPED = "stopped"  # never started, or its last worker stopped
    FAILED = "failed"


@dataclass(frozen=True)
class Route:
    access: Access
    workspace_id: uuid.UUID | None = None
    workspace_name: str = ""
    worker_id: uuid.UUID | None = None
    endpoint: str = ""
    token: str = field(default="", repr=False)
    ide_kind: str = "jupyterlab"
    user_id: int | None = None
    via_grant: bool = False  # an admin through Access server
    error: str = ""  # the worker's sanitized error, for a failed one


def user_for_session(session_key: str):
    """The user a session cookie belongs to (``AnonymousUser`` when none),
    with Django's own checks (session auth hash, active backend)."""
    if not session_key:
        return AnonymousUser(), {}
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=session))
    return user, session


def route_for_session(*, session_key: str, workspace_id: uuid.UUID) -> Route:
    """``route_for`` from a session cookie; for the ASGI proxy, which runs
    outside Django's request cycle (so it tidies connections itself). The
    proxy asks ``proxy.owner_route`` first and comes here for the rest
    (anonymous, other users, Access server grants, SQLite)."""
    _tidy_connections()
    try:
        return _lookup(session_key, workspace_id)
    except (InterfaceError, OperationalError):
        # A connection that broke since the last tidy: once more, fresh.
        _tidied.at = 0.0
        _tidy_connections()
        return _lookup(session_key, workspace_id)


def _lookup(session_key: str, workspace_id: uuid.UUID) -> Route:
    user, session = user_for_session(session_key)
    return route_for(user=user, workspace_id=workspace_id, session=session)


_tidied = threading.local()
TIDY_SECONDS = 10.0


def _tidy_connections() -> None:
    """What Django does at each request's start (drop broken or expired
    connections), at most every ``TIDY_SECONDS`` per thread: with health
    checks on, every call costs a ``SELECT 1`` round trip."""
    now = time.monotonic()
    if now - getattr(_tidied, "at", 0.0) >= TIDY_SECONDS:
        close_old_connections()
        _tidied.at = now


def route_for(*, user, workspace_id: uuid.UUID, session) -> Route:
    """Where ``user`` may go for ``workspace_id`` at this moment."""
    if not user.is_authenticated or not user.is_active:
        return Route(Access.LOGIN, workspace_id)
    worker = (
        Worker.objects.filter(workspace_id=workspace_id)
        .select_related("workspace")
        .only(*ROUTE_FIELDS)
        .order_by("-created_at", "-id")
        .first()
    )
    workspace = worker.workspace if worker else _workspace(workspace_id)
    if workspace is None:
        return Route(Access.NOT_FOUND, workspace_id, user_id=user.pk)
    via_grant = workspace.owner_id != user.pk
    if via_grant and not has_grant(user, session, worker):
        return Route(Access.NOT_FOUND, workspace_id, user_id=user.pk)
    return _route(workspace, worker, user, via_grant)


def _workspace(workspace_id) -> Workspace | None:
    return Workspace.objects.filter(pk=workspace_id).first()


def _route(workspace: Workspace, worker: Worker | None, user, via_grant) -> Route:
    fields = (worker.id, worker.status, worker.endpoint) if worker else (None,) * 3
    token, error = (worker.access_token, worker.error_detail) if worker else ("", "")
    return _make_route(
        (workspace.id, user.pk, workspace.name, workspace.ide_kind),
        (*fields, token, error),
        via_grant=via_grant,
    )


def route_from_rows(*, workspace: tuple, worker: list) -> Route:
    """The owner's route from raw columns: the workspace's (id, owner id,
    name, IDE kind) and its newest worker's (id, status, endpoint, token,
    error), all None when it has none."""
    return _make_route(tuple(workspace), tuple(worker), via_grant=False)


def _make_route(workspace: tuple, worker: tuple, *, via_grant: bool) -> Route:
    workspace_id, user_id, name, ide_kind = workspace
    worker_id, status, endpoint, token, error = worker
    common = dict(
        workspace_id=workspace_id,
        workspace_name=name,
        ide_kind=ide_kind,
        user_id=user_id,
        via_grant=via_grant,
    )
    if worker_id is None:
        return Route(Access.STOPPED, **common)
    common["worker_id"] = worker_id
    if status in OPEN_STATUSES and endpoint:
        return Route(Access.OPEN, endpoint=endpoint, token=token, **common)
    access = {
        states.STARTING: Access.STARTING,
        states.READY: Access.STARTING,  # ready without an endpoint yet
        states.BUSY: Access.STARTING,
        states.STOPPING: Access.STOPPING,
        states.FAILED: Access.FAILED,
    }.get(status, Access.STOPPED)
    return Route(access, error=error, **common)


def has_grant(user, session, worker: Worker | None) -> bool:
    """An unexpired Access server grant for this worker, and the permission
    still held (re-read: an admin whose permission was revoked loses the
    grant at once)."""
    if worker is None or not user.has_perm(ACCESS_PERMISSION):
        return False
    grants = session.get(GRANTS_SESSION_KEY, {}) if session else {}
    return grants.get(str(worker.id), 0) > time.time()


def start_progress(worker_id, limit: int = 8) -> list[WorkerEvent]:
    """The latest events of a starting worker, oldest first, for the
    Starting page."""
    events = WorkerEvent.objects.filter(worker_id=worker_id).order_by("-at", "-id")
    return list(reversed(events[:limit]))
