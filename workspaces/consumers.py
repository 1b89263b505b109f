"""Live rows for the user's workspace pages.

A socket belongs to one logged-in user and joins only that user's group
(``workers.realtime.user_group``): it hears about the user's own workers.
Messages carry worker ids; the consumer re-reads the workspace as that user
through the page's selectors and sends the same partial the page renders,
marked for an htmx out-of-band swap: the list row, or with
``?workspace=<id>`` (the detail page) that workspace's detail panel.
"""

import asyncio
import contextlib
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import CSRF_SESSION_KEY, get_token
from django.template.loader import render_to_string

from workers.models import Worker
from workers.realtime import (
    SessionEnded,
    WorkerChanged,
    session_group,
    session_user,
    user_group,
)
from workspaces.page_selectors import (
    can_manage,
    visible_workspaces,
    workspace_detail_for,
    workspace_rows,
)

REFUSED = 4403
SIGNED_OUT = 4401  # the session that opened the socket has ended
COALESCE_SECONDS = 0.05


def csrf_token_for(scope) -> str:
    """A masked CSRF token for the socket's browser, so the forms in pushed
    partials post like the page's own (the secret is the CSRF cookie, or the
    session's with CSRF_USE_SESSIONS)."""
    if settings.CSRF_USE_SESSIONS:
        secret = (scope.get("session") or {}).get(CSRF_SESSION_KEY, "")
    else:
        secret = (scope.get("cookies") or {}).get(settings.CSRF_COOKIE_NAME, "")
    if not secret:
        return ""
    request = HttpRequest()
    request.META["CSRF_COOKIE"] = secret
    return get_token(request)


def render_update(
    *, user, worker_ids, detail_of: UUID | None, csrf_token: str = ""
) -> str:
    """The partials for the workspaces of ``worker_ids`` that ``user`` owns."""
    workspace_ids = set(
        Worker.objects.filter(
            id__in=worker_ids, owner=user, workspace__isnull=False
        ).values_list("workspace_id", flat=True)
    )
    if detail_of is not None:
        if detail_of not in workspace_ids:
            return ""
        detail = workspace_detail_for(user=user, workspace_id=detail_of)
        if detail is None:
            return ""
        context = {"detail": detail, "row": detail.row, "oob": True}
        context["csrf_token"] = csrf_token
        return render_to_string("workspaces/detail.html#detail_body", context).strip()
    rows = workspace_rows(user=user, workspace_ids=workspace_ids)
    manager = can_manage(user)
    return "".join(
        render_to_string(
            "workspaces/list.html#row",
            {"row": r, "oob": True, "manager": manager, "csrf_token": csrf_token},
        ).strip()
        for r in rows
        if r.own
    )


def _detail_of(scope) -> UUID | None | bool:
    """The ``workspace`` query parameter: a UUID, None, or False if bad."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    raw = (query.get("workspace") or [""])[0]
    if not raw:
        return None
    try:
        return UUID(raw)
    except ValueError:
        return False


def _may_watch(user, workspace_id: UUID) -> bool:
    return visible_workspaces(user=user).filter(pk=workspace_id).exists()


class WorkspacesConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.pending: set[str] = set()
        self.flush_task: asyncio.Task | None = None
        self.detail_of = _detail_of(self.scope)
        if not (self.user and self.user.is_authenticated) or self.detail_of is False:
            await self.close(code=REFUSED)
            return
        if self.detail_of is not None and not await database_sync_to_async(_may_watch)(
            self.user, self.detail_of
        ):
            await self.close(code=REFUSED)
            return
        # The user's workers, and the login session (logout closes us).
        self.session_key = self.scope["session"].session_key
        self.groups_joined = [
            user_group(self.user.pk),
            session_group(self.session_key),
        ]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "flush_task", None):
            self.flush_task.cancel()

    async def session_ended(self, event: SessionEnded) -> None:
        await self.close(code=SIGNED_OUT)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The page sends nothing; anything received is ignored."""

    async def worker_changed(self, event: WorkerChanged) -> None:
        self.pending.add(str(event["worker_id"]))
        if self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        """Bursts (progress events, a stop and its transition) go out as one
        read and one message."""
        await asyncio.sleep(COALESCE_SECONDS)
        ids, self.pending, self.flush_task = list(self.pending), set(), None
        # Read again before every push: a session ended or a user
        # deactivated in another process gets nothing more.
        current = await database_sync_to_async(session_user)(self.session_key)
        if current is None or current.pk != self.user.pk:
            await self.close(code=SIGNED_OUT)
            return
        html = await database_sync_to_async(render_update)(
            user=self.user,
            worker_ids=ids,
            detail_of=self.detail_of,
            csrf_token=csrf_token_for(self.scope),
        )
        if html.strip():
            # An OSError is ASGI's word for a client already gone (its
            # disconnect message follows).
            with contextlib.suppress(OSError):
                await self.send(text_data=html)
