"""WebSocket routes; each app contributes its own list.

A handshake to a path no app serves is refused by ``UnknownPathConsumer``,
the last route: without it Channels' URLRouter raises, and the server logs a
traceback and answers 500 for what is only a wrong address.
"""

import logging

from channels.generic.websocket import WebsocketConsumer
from django.urls import re_path

from console.routing import websocket_urlpatterns as console_routes
from workers.sanitize import sanitize
from workspaces.routing import websocket_urlpatterns as workspace_routes

log = logging.getLogger(__name__)
NOT_FOUND = 4404


class UnknownPathConsumer(WebsocketConsumer):
    """Refuses the handshake (an HTTP 403 to the client) and logs at INFO."""

    def connect(self) -> None:
        path = sanitize(self.scope.get("path", ""))[:200]
        log.info("websocket refused: no route for %r", path)
        self.close(code=NOT_FOUND)


# The catch-all stays last: a route listed after it is never reached.
websocket_urlpatterns = [
    *console_routes,
    *workspace_routes,
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
