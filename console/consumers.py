"""Live rows for the Notebook Workers console.

A socket belongs to one active staff user (others are refused at the
handshake). Channel messages carry worker ids only; the consumer re-reads
those rows through the same selector the page uses and sends the same row
partial, marked for an htmx out-of-band swap by id.

Bursts are coalesced: ids arriving within ``COALESCE_SECONDS`` go out as one
message. And because every staff socket in a process wants the same rows at
the same moment, one read+render is shared by the sockets whose messages
arrived before it started (it is then at least as new as their commits).
"""

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.selectors import can_view_console, visibility_scope, worker_rows
from workers.realtime import STAFF_GROUP, WorkerChanged

COALESCE_SECONDS = 0.02
# How long a socket trusts the staff flag it read; then it reads the user again.
REVALIDATE_SECONDS = 30.0
REFUSED = 4403
MAX_SHARED = 256  # id sets whose newest render is kept for late sockets


def render_rows(*, user, worker_ids) -> str:
    """The row partial for each visible worker, ready for an OOB swap."""
    rows = worker_rows(user=user, worker_ids=worker_ids)
    return "".join(
        render_to_string("console/console.html#row", {"worker": w, "oob": True}).strip()
        for w in rows
    )


class _SharedRender:
    """Shared read+render per (visibility scope, set of ids), in one process.

    A socket may use a render (running or finished) that started after its
    own message arrived: the change was committed before it was published,
    so such a render already shows it. Renders are shared only between users
    who see the same rows (``visibility_scope``); the newest is kept.
    """

    def __init__(self) -> None:
        self._latest: dict[tuple, tuple[float, asyncio.Future]] = {}

    async def rows(self, user, ids: frozenset[str], newer_than: float) -> str:
        key = (visibility_scope(user), ids)
        entry = self._latest.get(key)
        if entry is None or entry[0] < newer_than:
            read = database_sync_to_async(render_rows)(user=user, worker_ids=ids)
            entry = (time.monotonic(), asyncio.ensure_future(read))
            self._latest[key] = entry
            if len(self._latest) > MAX_SHARED:
                del self._latest[next(iter(self._latest))]
        return await asyncio.shield(entry[1])


shared_render = _SharedRender()


class WorkersConsoleConsumer(AsyncWebsocketConsumer):
    groups: list[str] = []

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.pending: set[str] = set()
        self.last_received = 0.0
        self.flush_task: asyncio.Task | None = None
        if not can_view_console(self.user):
            await self.close(code=REFUSED)
            return
        self.checked_at = time.monotonic()
        await self.channel_layer.group_add(STAFF_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(STAFF_GROUP, self.channel_name)
        if getattr(self, "flush_task", None):
            self.flush_task.cancel()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The page sends nothing; anything received is ignored."""

    async def worker_changed(self, event: WorkerChanged) -> None:
        self.pending.add(str(event["worker_id"]))
        self.last_received = time.monotonic()
        if self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        ids, self.pending = frozenset(self.pending), set()
        newer_than, self.flush_task = self.last_received, None
        if not await self._still_allowed():
            await self.close(code=REFUSED)
            return
        html = await shared_render.rows(self.user, ids, newer_than)
        if html:
            await self.send(text_data=html)

    async def _still_allowed(self) -> bool:
        if time.monotonic() - self.checked_at > REVALIDATE_SECONDS:
            try:
                await database_sync_to_async(self.user.refresh_from_db)()
            except self.user.DoesNotExist:
                return False
            self.checked_at = time.monotonic()
        return can_view_console(self.user)
