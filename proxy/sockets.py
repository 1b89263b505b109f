"""WebSocket half of the proxy: one upstream socket per client socket.

The client socket is closed as soon as its route is gone: the worker
stopped, failed or was replaced, the session ended, or an Access server
grant expired. Changes arrive on the worker's channel-layer group
(``workers.realtime.worker_group``); a re-check every
``NOTEBOOK_PROXY_RECHECK_SECONDS`` covers what publishes nothing (a
logout, a grant running out) and a channel layer that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from proxy import headers as hdr
from proxy.selectors import Access, Route
from workers.realtime import session_group, worker_group

log = logging.getLogger(__name__)
GOING_AWAY = 1001
TRY_AGAIN_LATER = 1013


def _ws_url(route: Route, rest: str, query: bytes) -> str:
    from proxy.asgi import upstream_url

    return "ws" + upstream_url(route, rest, query).removeprefix("http")


async def proxy_websocket(scope, receive, send, route, target, incoming) -> None:
    """Open the runtime's socket, accept the client's with the same
    subprotocol, then pump both ways until either side or the watch ends."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    headers = hdr.upstream_request_headers(
        scope["headers"], incoming, token=route.token, upstream_host="", websocket=True
    )
    try:
        runtime = await connect(
            _ws_url(route, target.rest, scope.get("query_string", b"")),
            additional_headers=headers,
            subprotocols=scope.get("subprotocols") or None,
            max_size=None,
            compression=None,
            open_timeout=10,
            ping_interval=None,
            user_agent_header=None,
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        status = exc.response.status_code if isinstance(exc, InvalidStatus) else 0
        log.warning(
            "runtime socket for worker %s refused: %s", route.worker_id, status or exc
        )
        return await send({"type": "websocket.close", "code": 1011})
    await send({"type": "websocket.accept", "subprotocol": runtime.subprotocol})
    await _pump(scope, receive, send, runtime, route)


async def _pump(scope, receive, send, runtime, route: Route) -> None:
    tasks = {
        asyncio.create_task(_client_to_runtime(receive, runtime)),
        asyncio.create_task(_runtime_to_client(runtime, send)),
        asyncio.create_task(_watch(scope, route)),
    }
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(iter(done), None)
    ended_cleanly = (
        first is not None and not first.cancelled() and not first.exception()
    )
    code = first.result() if ended_cleanly else GOING_AWAY
    await runtime.close()
    with contextlib.suppress(Exception):  # the client may be gone already
        await send({"type": "websocket.close", "code": code or GOING_AWAY})


async def _client_to_runtime(receive, runtime) -> int | None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("bytes")
        try:
            await runtime.send(data if data is not None else message.get("text", ""))
        except ConnectionClosed:
            return GOING_AWAY


async def _runtime_to_client(runtime, send) -> int:
    try:
        async for data in runtime:
            key = "bytes" if isinstance(data, bytes) else "text"
            await send({"type": "websocket.send", key: data})
    except ConnectionClosed:
        pass
    code = runtime.close_code
    return code if code and code not in (1005, 1006) else GOING_AWAY


async def _watch(scope, route: Route) -> int:
    """Returns once the route this socket was opened on is no longer valid."""
    from channels.layers import get_channel_layer

    from proxy.asgi import resolve, session_key

    layer = get_channel_layer()
    # The worker's changes, and the login session's end (a logout elsewhere).
    groups = (worker_group(route.worker_id), session_group(session_key(scope)))
    channel = await _subscribe(layer, groups)
    try:
        while True:
            await _next_change(layer, channel)
            fresh = await resolve(scope, route.workspace_id)
            if fresh.access is not Access.OPEN or fresh.worker_id != route.worker_id:
                log.info(
                    "closing socket to worker %s: %s", route.worker_id, fresh.access
                )
                return GOING_AWAY
    finally:
        if channel:
            with contextlib.suppress(Exception):
                for group in groups:
                    await layer.group_discard(group, channel)


async def _subscribe(layer, groups: tuple[str, ...]) -> str:
    if layer is None:
        return ""
    try:
        channel = await layer.new_channel()
        for group in groups:
            await layer.group_add(group, channel)
        return channel
    except Exception:  # noqa: BLE001 - fall back to re-checking on a timer
        log.warning("channel layer unavailable; re-checking on a timer", exc_info=True)
        return ""


async def _next_change(layer, channel: str) -> None:
    """A message on the worker's group, or the re-check interval, whichever
    comes first."""
    seconds = settings.NOTEBOOK_PROXY_RECHECK_SECONDS
    if not channel:
        return await asyncio.sleep(seconds)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await layer.receive(channel)
