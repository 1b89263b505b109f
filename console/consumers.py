"""Live rows for the Notebook Workers console.

A socket belongs to one user allowed to view the console (others are refused
at the handshake) and to the login session it was opened with. Logging out
closes it at once (it joins ``workers.realtime.session_group``), and before
every push the session and the user are read again: a deactivated user, a
deleted or expired session or a withdrawn permission closes the socket at
its next push instead of receiving rows.

Channel messages carry worker ids only; the consumer re-reads those rows
through the same selector the page uses and sends the same row partial,
marked for an htmx out-of-band swap by id.

Bursts are coalesced: ids arriving within ``COALESCE_SECONDS`` go out as one
message. Reads are shared by the sockets of a process (``_Shared``): one
read+render per set of ids for users who see the same rows, and one re-check
per login session, whatever the number of its sockets.

Any error closes the socket with a code and takes its channel out of its
groups: a dead channel left in a group is sent every change until the group
expires (a day).
"""

import asyncio
import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Hashable

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.selectors import can_view_console, visibility_scope, worker_rows
from workers.realtime import (
    STAFF_GROUP,
    SessionEnded,
    WorkerChanged,
    session_group,
    session_user,
)
from workers.sanitize import sanitize

log = logging.getLogger(__name__)
COALESCE_SECONDS = 0.02
SIGNED_OUT = 4401  # the session that opened the socket has ended
REFUSED = 4403  # may not view the console (any more)
TRY_AGAIN = 1013  # the channel layer refused (e.g. out of connections)
INTERNAL_ERROR = 1011
MAX_SHARED = 256  # keys whose newest read is kept for late sockets


def render_rows(*, user, worker_ids) -> str:
    """The row partial for each visible worker, ready for an OOB swap."""
    rows = worker_rows(user=user, worker_ids=worker_ids)
    return "".join(
        render_to_string("console/console.html#row", {"worker": w, "oob": True}).strip()
        for w in rows
    )


def console_standing(session_key: str) -> tuple[object | None, bool]:
    """The session's user read again (None once the session signs no one in)
    and whether that user may still view the console."""
    user = session_user(session_key)
    return user, user is not None and can_view_console(user, fresh=True)


class _Shared:
    """The newest read per key, shared by the sockets of one process.

    A socket may use a read (running or finished) that started after its
    own message arrived: the change was committed before it was published,
    so such a read already shows it.
    """

    def __init__(self) -> None:
        self._latest: dict[Hashable, tuple[float, asyncio.Future]] = {}

    async def get(
        self, key: Hashable, newer_than: float, read: Callable[[], Awaitable]
    ):
        entry = self._latest.get(key)
        if entry is None or entry[0] < newer_than:
            entry = (time.monotonic(), asyncio.ensure_future(read()))
            self._latest.pop(key, None)  # re-inserted last: evicted last
            self._latest[key] = entry
            if len(self._latest) > MAX_SHARED:
                del self._latest[next(iter(self._latest))]
        return await asyncio.shield(entry[1])


# Renders are shared only between users who see the same rows
# (``visibility_scope``); re-checks only between sockets of one session.
shared_render = _Shared()
shared_standing = _Shared()


class WorkersConsoleConsumer(AsyncWebsocketConsumer):
    groups: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.joined: list[str] = []
        self.closed = False
        self.pending: set[str] = set()
        self.last_received = 0.0
        self.flush_task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        """An error in a handler or in the channel layer's receive (Redis
        gone, a timeout) closes the socket with 1011 and leaves the groups;
        otherwise the server drops the connection and the channel stays."""
        try:
            await super().__call__(scope, receive, send)
        except Exception:  # noqa: BLE001 - every failure ends the same way
            await self._fail()

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not await database_sync_to_async(can_view_console)(self.user):
            await self.close(code=REFUSED)
            return
        self.session_group = session_group(self.scope["session"].session_key)
        if not await self._join(self.session_group, STAFF_GROUP):
            await self._end(TRY_AGAIN)
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self.closed = True
        await self._leave()
        if self.flush_task:
            self.flush_task.cancel()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The page sends nothing; anything received is ignored."""

    async def session_ended(self, event: SessionEnded) -> None:
        await self._end(SIGNED_OUT)

    async def worker_changed(self, event: WorkerChanged) -> None:
        if self.closed:
            return
        self.pending.add(str(event["worker_id"]))
        self.last_received = time.monotonic()
        if self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        ids, self.pending = frozenset(self.pending), set()
        newer_than, self.flush_task = self.last_received, None
        try:
            await self._push(ids, newer_than)
        except Exception:  # noqa: BLE001 - this task is nobody's to await
            await self._fail()

    async def _push(self, ids: frozenset[str], newer_than: float) -> None:
        if code := await self._recheck(newer_than):
            await self._end(code)
            return
        user = self.user
        html = await shared_render.get(
            (visibility_scope(user), ids),
            newer_than,
            lambda: database_sync_to_async(render_rows)(user=user, worker_ids=ids),
        )
        if html and not self.closed:
            await self.send(text_data=html)

    async def _recheck(self, newer_than: float) -> int | None:
        """Read the session and its user again; the close code if this
        socket may no longer receive rows. One read per session per push."""
        key = self.scope["session"].session_key
        user, allowed = await shared_standing.get(
            self.session_group,
            newer_than,
            lambda: database_sync_to_async(console_standing)(key),
        )
        if user is None or user.pk != self.user.pk:
            return SIGNED_OUT
        if not allowed:
            return REFUSED
        self.user = user  # permissions read just now, for visibility_scope
        return None

    async def _join(self, *groups: str) -> bool:
        """Join ``groups``; False if the channel layer refused (its pool of
        connections exhausted by a burst of handshakes, or Redis down)."""
        try:
            for group in groups:
                self.joined.append(group)  # first: a half-done add is undone
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:  # noqa: BLE001 - any layer failure refuses
            log.warning("console socket refused: %s", sanitize(repr(exc)))
            return False
        return True

    async def _leave(self) -> None:
        groups, self.joined = self.joined, []
        for group in groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:  # noqa: BLE001 - the group expires anyway
                log.warning("console socket left a group: %s", sanitize(repr(exc)))

    async def _end(self, code: int) -> None:
        """Leave the groups, then close with ``code``. Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self._leave()
        with contextlib.suppress(Exception):  # the client may be gone already
            await self.close(code=code)

    async def _fail(self) -> None:
        """Called in an ``except`` block: log it (sanitized), close with 1011.
        After the socket was closed (refused, signed out) it is only noted."""
        if self.closed:
            error = sanitize(repr(sys.exc_info()[1]))
            log.info("console socket: %s after it was closed", error)
            return
        detail = sanitize(traceback.format_exc(), max_chars=None)
        log.error("console socket closed after an error:\n%s", detail)
        await self._end(INTERNAL_ERROR)
