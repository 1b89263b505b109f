"""Live rows for the Notebook Workers console.

A socket belongs to one user allowed to view the console (others are refused
at the handshake) and to the login session it was opened with. Logging out
closes it at once (it joins ``workers.realtime.session_group``), and before
every push the session and the user are read again: a deactivated user, a
deleted or expired session or a withdrawn permission closes the socket at
its next push instead of receiving rows.

Channel messages carry worker ids only; the rows are read again through the
same selector the page uses and sent as the same row partial, marked for an
htmx out-of-band swap by id.

The sockets of a process share one subscription to the staff group
(``_Hub``): a change reaches the process once, and changes arriving within
``COALESCE_SECONDS`` are flushed together by one hop to the database
thread that re-checks each login session once and renders the rows once
per visibility scope, then sent to every socket. At 1,000 sockets a
receive, a read and a sync-thread hop per socket took seconds per change
(bench/ws_latency_bench.py).

Any error closes the socket with a code and takes its channel out of its
groups: a dead channel left in a group is sent every change until the group
expires (a day).
"""

import asyncio
import contextlib
import logging
import time
import traceback
import weakref
from dataclasses import dataclass, field

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.selectors import can_view_console, visibility_scope, worker_rows
from workers.realtime import (
    STAFF_GROUP,
    SessionEnded,
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
CLIENT_GONE = 1006  # closed without a close frame
REJOIN_SECONDS = 3600  # well inside the Redis layer's group_expiry


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


@dataclass
class Batch:
    """What one flush reads: the login sessions of the sockets to push to
    and the changed worker ids; filled in with each session's standing and
    one render per visibility scope. A failed read is stored as its
    exception, for the sockets it concerns."""

    sessions: set[str]
    ids: frozenset[str]
    standing: dict[str, tuple | BaseException] = field(default_factory=dict)
    html: dict[str, str | BaseException] = field(default_factory=dict)


def read_batch(batch: Batch) -> Batch:
    """Re-check each session and render the rows once per scope. Sync: one
    hop to the database thread for the whole batch."""
    for key in batch.sessions:
        try:
            user, allowed = console_standing(key)
            scope = visibility_scope(user) if allowed else None
        except Exception as exc:  # noqa: BLE001 - closes that session's sockets
            batch.standing[key] = exc
            continue
        batch.standing[key] = (user, allowed, scope)
        if allowed and scope not in batch.html:
            try:
                batch.html[scope] = render_rows(user=user, worker_ids=batch.ids)
            except Exception as exc:  # noqa: BLE001 - as above
                batch.html[scope] = exc
    return batch


class _Hub:
    """The console sockets of one process (event loop) and their one
    subscription to ``STAFF_GROUP``.

    A change reaches the process once, on the hub's channel, instead of
    once per socket (each a receive, a dispatch and a task). Changes within
    ``COALESCE_SECONDS`` are flushed together; one flush runs at a time, so
    a socket never gets an older row after a newer one, and changes
    arriving meanwhile wait for the next flush, whose reads start after
    they arrived (each was published after its commit), so show them.
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: set[WorkersConsoleConsumer] = set()
        self.channel: str | None = None
        self.listener: asyncio.Task | None = None
        self.lock = asyncio.Lock()  # one start or stop at a time
        self.ids: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.flushing: asyncio.Task | None = None

    async def join(self, consumer: "WorkersConsoleConsumer") -> None:
        """Raises what the channel layer raises (Redis down, no connection)."""
        async with self.lock:
            if self.channel is None:
                channel = await self.layer.new_channel()
                await self.layer.group_add(STAFF_GROUP, channel)
                self.channel = channel
                self.listener = asyncio.ensure_future(self._listen(channel))
            self.members.add(consumer)

    async def leave(self, consumer: "WorkersConsoleConsumer") -> None:
        async with self.lock:
            self.members.discard(consumer)
            if self.members or self.channel is None:
                return
            channel, self.channel = self.channel, None
            self.listener.cancel()
            await self.layer.group_discard(STAFF_GROUP, channel)

    async def _listen(self, channel: str) -> None:
        """Receive changes until cancelled. Re-joins the group now and then:
        the Redis layer drops a member after ``group_expiry`` (a day). An
        error closes every socket (1011: the page reconnects and reloads)."""
        joined = time.monotonic()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REJOIN_SECONDS):
                        message = await self.layer.receive(channel)
                        if message.get("type") == "worker.changed":
                            self.ids.add(str(message["worker_id"]))
                            self._schedule()
                if time.monotonic() - joined > REJOIN_SECONDS:
                    await self.layer.group_add(STAFF_GROUP, channel)
                    joined = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - every socket ends the same way
            async with self.lock:
                members, self.members, self.channel = self.members, set(), None
            with contextlib.suppress(Exception):
                await self.layer.group_discard(STAFF_GROUP, channel)
            await asyncio.gather(*(c.fail(exc) for c in members))

    def _schedule(self) -> None:
        if self.timer is None and self.flushing is None and self.ids:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(COALESCE_SECONDS, self._start)

    def _start(self) -> None:
        self.timer = None
        self.flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        ids, self.ids = frozenset(self.ids), set()
        targets = [c for c in self.members if c.accepted and not c.closed]
        try:
            await push(targets, ids)
        except Exception as exc:  # noqa: BLE001 - e.g. the read itself failed
            await asyncio.gather(*(c.fail(exc) for c in targets))
        finally:
            self.flushing = None
            self._schedule()


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub]" = (
    weakref.WeakKeyDictionary()
)


def hub(layer) -> _Hub:
    """This event loop's hub on ``layer`` (tests run a loop per test and
    may swap the layer)."""
    loop = asyncio.get_running_loop()
    current = _hubs.get(loop)
    if current is None or (current.layer is not layer and not current.members):
        current = _hubs[loop] = _Hub(layer)
    return current


async def push(targets: list["WorkersConsoleConsumer"], ids: frozenset[str]) -> None:
    """Read once for ``targets``, then send each socket the rows of ``ids``,
    or close it if its session or permission is gone."""
    if not targets:
        return
    sessions = {consumer.session_key for consumer in targets}
    batch = await database_sync_to_async(read_batch)(Batch(sessions, ids))
    endings = []
    for consumer in targets:
        outcome = consumer.outcome(batch)
        if isinstance(outcome, str):
            if outcome and not consumer.closed:
                try:
                    await consumer.send(text_data=outcome)
                except OSError:
                    # ASGI's word for a client already gone (its disconnect
                    # message follows): not an error of ours.
                    endings.append(consumer.disconnect(CLIENT_GONE))
                except Exception as exc:  # noqa: BLE001 - that socket only
                    endings.append(consumer.fail(exc))
        elif isinstance(outcome, BaseException):
            endings.append(consumer.fail(outcome))
        else:
            endings.append(consumer.end(outcome))
    await asyncio.gather(*endings)


class WorkersConsoleConsumer(AsyncWebsocketConsumer):
    groups: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.joined: list[str] = []
        self.hub: _Hub | None = None
        self.accepted = False  # rows only after the handshake's answer
        self.closed = False

    async def __call__(self, scope, receive, send) -> None:
        """An error in a handler or in the channel layer's receive (Redis
        gone, a timeout) closes the socket with 1011 and leaves the groups;
        otherwise the server drops the connection and the channel stays."""
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - every failure ends the same way
            await self.fail(exc)

    async def dispatch(self, message) -> None:
        """Channels' dispatch without its ``aclose_old_connections()`` before
        every message: a hop to the one sync thread per socket per change,
        which at 1,000 sockets queued each change behind a second of hops.
        No handler here touches the ORM outside ``database_sync_to_async``,
        which closes old connections around each call itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not await database_sync_to_async(can_view_console)(self.user):
            await self.close(code=REFUSED)
            return
        self.session_key = self.scope["session"].session_key
        if not await self._join(session_group(self.session_key)):
            await self.end(TRY_AGAIN)
            return
        await self.accept()
        self.accepted = True

    async def disconnect(self, code: int) -> None:
        self.closed = True
        await self._leave()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The page sends nothing; anything received is ignored."""

    async def session_ended(self, event: SessionEnded) -> None:
        await self.end(SIGNED_OUT)

    def outcome(self, batch: Batch):
        """From a read batch: this socket's rows (str), the close code
        (int) if it may no longer receive rows, or the read's exception."""
        standing = batch.standing[self.session_key]
        if isinstance(standing, BaseException):
            return standing
        user, allowed, scope = standing
        if user is None or user.pk != self.user.pk:
            return SIGNED_OUT
        if not allowed:
            return REFUSED
        return batch.html[scope]

    async def _join(self, session: str) -> bool:
        """Join the session's group and the process's hub; False if the
        channel layer refused (its pool of connections exhausted by a burst
        of handshakes, or Redis down)."""
        try:
            self.joined.append(session)  # first: a half-done add is undone
            await self.channel_layer.group_add(session, self.channel_name)
            self.hub = hub(self.channel_layer)
            await self.hub.join(self)
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
        staff, self.hub = self.hub, None
        if staff is not None:
            try:
                await staff.leave(self)
            except Exception as exc:  # noqa: BLE001 - as above
                log.warning("console socket left the hub: %s", sanitize(repr(exc)))

    async def end(self, code: int) -> None:
        """Leave the groups, then close with ``code``. Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self._leave()
        with contextlib.suppress(Exception):  # the client may be gone already
            await self.close(code=code)

    async def fail(self, exc: BaseException) -> None:
        """Log ``exc`` (sanitized) and close with 1011. After the socket was
        closed (refused, signed out) it is only noted."""
        if self.closed:
            log.info("console socket: %s after it was closed", sanitize(repr(exc)))
            return
        detail = sanitize("".join(traceback.format_exception(exc)), max_chars=None)
        log.error("console socket closed after an error:\n%s", detail)
        await self.end(INTERNAL_ERROR)
