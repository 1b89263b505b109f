"""WebSocket routes; each app contributes its own list."""

from workers.routing import websocket_urlpatterns as worker_routes

websocket_urlpatterns = [*worker_routes]
