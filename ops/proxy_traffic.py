"""Traffic of the embedded /w/ proxy, counted around it.

``ProxyTraffic`` wraps the platform's ASGI application (outside
``proxy.asgi.WorkspaceProxy``) and watches the ASGI messages of every
``/w/`` scope: the requests by kind and status class, the body bytes each
way, and the WebSockets open now. It sees what a client sees: requests the
proxy forwarded to a runtime and the ones it answered itself (the login
redirect, the Starting / Stopped pages, a refusal, the 502 page), so a
runtime that stops answering shows up as 5xx. Nothing here reads or changes
a message; counting never breaks a request.

Behind nginx (``deploy/nginx``) the runtimes' traffic does not pass through
this process: nginx's own metrics count it.
"""

from __future__ import annotations

from ops.process_metrics import (
    proxy_bytes_moved,
    proxy_request_done,
    proxy_socket_closed,
    proxy_socket_opened,
)
from proxy.paths import is_proxy_path

# A WebSocket closed before it was accepted is refused with HTTP 403 (ASGI).
REFUSED_SOCKET = 403
ACCEPTED_SOCKET = 101


class ProxyTraffic:
    """ASGI middleware: ``app`` with its ``/w/`` traffic counted."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind not in ("http", "websocket") or not is_proxy_path(scope["path"]):
            return await self.app(scope, receive, send)
        exchange = _Exchange(kind)
        try:
            await self.app(scope, exchange.receiving(receive), exchange.sending(send))
        finally:
            exchange.socket_gone()


class _Exchange:
    """The counts of one ``/w/`` request or socket."""

    def __init__(self, kind: str):
        self.kind = kind
        self.socket_open = False
        self.answered = False

    def receiving(self, receive):
        async def counted():
            message = await receive()
            proxy_bytes_moved(direction="upstream", amount=_size(message))
            if message["type"] == "websocket.disconnect":
                self.socket_gone()
            return message

        return counted

    def sending(self, send):
        async def counted(message):
            self._saw(message)
            await send(message)

        return counted

    def _saw(self, message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            proxy_request_done(kind="http", status=message["status"])
        elif kind == "websocket.accept":
            proxy_request_done(kind="websocket", status=ACCEPTED_SOCKET)
            self.answered = self.socket_open = True
            proxy_socket_opened()
        elif kind == "websocket.close":
            if not self.answered:
                proxy_request_done(kind="websocket", status=REFUSED_SOCKET)
                self.answered = True
            self.socket_gone()
        else:
            proxy_bytes_moved(direction="downstream", amount=_size(message))

    def socket_gone(self) -> None:
        """The socket ended (closed by either side, or the app returned or
        raised); idempotent."""
        if self.socket_open:
            self.socket_open = False
            proxy_socket_closed()


def _size(message) -> int:
    """Body bytes of an HTTP message, payload bytes of a WebSocket one."""
    if "body" in message:
        return len(message["body"])
    if message.get("bytes") is not None:
        return len(message["bytes"])
    if message.get("text") is not None:
        return len(message["text"].encode())
    return 0
